/**
 * Runs a job kind in-process, the way coordinator and workers would over NATS: plan → split →
 * map (each task, in order) → reduce (once per task) → finalize. For kind unit tests only.
 */
import type { JobKind, MapContext, Plan, Task } from '../../shared/kinds/kind.js';
import type { Json } from '../../shared/json.js';

export interface LocalRun<Result> {
  plan: Plan;
  tasks: Task[];
  result: Result;
  /** How many times map called context.working(). */
  workingCalls: number;
}

/** Max body size handed to split; number kinds carry no body. */
const MAX_BODY_BYTES = 1024 * 1024;

/**
 * Runs `kind` with `options` end to end in this process. Tasks' specs go through a JSON round
 * trip, as they would on the wire.
 */
export async function runKindLocally<Options extends Json, Acc, Result extends Json>(
  kind: JobKind<Options, Acc, Result>,
  options: Options,
  job = 'test-job',
): Promise<LocalRun<Result>> {
  const plan = await kind.plan(options);
  const tasks: Task[] = [];
  for await (const task of kind.split(options, { maxBodyBytes: MAX_BODY_BYTES })) tasks.push(task);
  let workingCalls = 0;
  const context: MapContext = { working: () => void workingCalls++ };
  let acc = kind.init(options);
  for (const [index, task] of tasks.entries()) {
    const spec: unknown = JSON.parse(JSON.stringify(task.spec));
    const partial = await kind.map(spec, task.body ?? new Uint8Array(0), context);
    acc = kind.reduce(acc, partial, index);
  }
  const result = await kind.finalize(acc, { job, tasks: tasks.length }, options);
  return { plan, tasks, result: JSON.parse(JSON.stringify(result)) as Result, workingCalls };
}
