/**
 * Imported first by process-main.ts, so that it runs before the NATS client's modules load:
 * their compiled code comes from the worker's code cache (see shared/code-cache.ts).
 */
import { installCodeCache } from '../shared/code-cache.js';

installCodeCache('worker');
