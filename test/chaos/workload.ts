/**
 * The mixed workload of the chaos tests: orchestrations of six shapes (activity chains, fan-out,
 * timers, sub-orchestrations, queued events, continue-as-new) whose outputs are a pure function
 * of the instance number, so a driver can check every output after any number of crashes.
 *
 * Activities sleep a little (10-60 ms) so that a kill often lands while one is running, and
 * report their start and end on `trace` (the worker process prints them) so the driver can tell
 * how many kills hit an activity in flight.
 */
import type { Runtime } from '../e2e/helpers';

/** Shapes, chosen by instance number modulo their count. */
export const SHAPES = ['Chain', 'FanOut', 'Timed', 'Parent', 'Eternal', 'Mailbox'] as const;
export type Shape = (typeof SHAPES)[number];

/** The shape of instance number `n`. */
export function shapeOf(n: number): Shape {
  return SHAPES[n % SHAPES.length];
}

/** Instance id of number `n` in a run tagged `run`. */
export function instanceIdOf(run: string, n: number): string {
  return `${run}-${shapeOf(n).toLowerCase()}-${n}`;
}

/** The output (as a JS value) the orchestration of number `n` must complete with. */
export function expectedOutput(n: number): number {
  switch (shapeOf(n)) {
    case 'Chain':
      return n + 1 + 2 + 3;
    case 'FanOut':
      return 4 * n + 1 + 2 + 3 + 4;
    case 'Timed':
      return n + 100;
    case 'Parent':
      return n * 2 + 1;
    case 'Eternal':
      return n + 3 * 7;
    case 'Mailbox':
      return n + 1000 + 2000;
  }
}

/** Queue messages the driver sends to instance `n` after starting it (Mailbox only). */
export function messagesFor(n: number): number[] {
  return shapeOf(n) === 'Mailbox' ? [1000, 2000] : [];
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Registers the workload's orchestrations and activities; `trace` sees activity starts and ends. */
export function registerWorkload(runtime: Runtime, trace: (line: string) => void = () => undefined): void {
  runtime.registerActivity('Add', async (ctx, input: { x: number; by: number }) => {
    const key = `${ctx.instanceId}#${ctx.executionId}#${input.x}+${input.by}`;
    trace(`activity+ ${key}`);
    await pause(10 + Math.floor(Math.random() * 50));
    trace(`activity- ${key}`);
    return input.x + input.by;
  });
  runtime.registerOrchestration('Chain', function* (ctx, n: number) {
    let x: number = n;
    for (let by = 1; by <= 3; by += 1) x = yield ctx.scheduleActivity('Add', { x, by });
    return x;
  });
  runtime.registerOrchestration('FanOut', function* (ctx, n: number) {
    const results: Array<{ ok?: number }> = yield ctx.all(
      [1, 2, 3, 4].map((by) => ctx.scheduleActivity('Add', { x: n, by })),
    );
    return results.reduce((sum, r) => sum + (r.ok ?? Number.NaN), 0);
  });
  runtime.registerOrchestration('Timed', function* (ctx, n: number) {
    yield ctx.scheduleTimer(50 + (n % 7) * 30);
    return yield ctx.scheduleActivity('Add', { x: n, by: 100 });
  });
  runtime.registerOrchestration('Child', function* (ctx, n: number) {
    return yield ctx.scheduleActivity('Add', { x: n, by: n });
  });
  runtime.registerOrchestration('Parent', function* (ctx, n: number) {
    const doubled: number = yield ctx.scheduleSubOrchestration('Child', n);
    return yield ctx.scheduleActivity('Add', { x: doubled, by: 1 });
  });
  runtime.registerOrchestration('Eternal', function* (ctx, state: { n: number; round: number; acc: number }) {
    const acc: number = yield ctx.scheduleActivity('Add', { x: state.acc, by: 7 });
    if (state.round < 3) {
      yield ctx.continueAsNew({ n: state.n, round: state.round + 1, acc });
    }
    return acc;
  });
  runtime.registerOrchestration('Mailbox', function* (ctx, n: number) {
    const a: number = yield ctx.dequeueEvent('mail');
    const b: number = yield ctx.dequeueEvent('mail');
    return n + a + b;
  });
}

/** Input the driver starts instance `n` with. */
export function inputOf(n: number): unknown {
  return shapeOf(n) === 'Eternal' ? { n, round: 1, acc: n } : n;
}
