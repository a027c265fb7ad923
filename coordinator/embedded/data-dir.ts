/** The embedded server's data directory and the files it keeps there. */
import { join } from 'node:path';
import { setting } from '../../shared/settings.js';

/** $TALLY_DATA_DIR, else $XDG_DATA_HOME/tally, else ~/.local/share/tally. */
export function dataDirectory(): string {
  return setting('TALLY_DATA_DIR');
}

/** The files of the embedded server in the data directory. */
export interface StorePaths {
  dir: string;
  /** Names the owner: the process that started the server and stops it. */
  lock: string;
  /** How to reach the server (ServerFile), written by the owner once it is up. */
  server: string;
  /** The server's configuration with its token. */
  config: string;
  /** The JetStream store directory. */
  store: string;
}

export function storePaths(dir: string): StorePaths {
  return { dir, lock: join(dir, 'server.lock'), server: join(dir, 'server.json'), config: join(dir, 'embedded.conf'), store: join(dir, 'jetstream') };
}
