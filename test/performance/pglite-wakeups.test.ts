/**
 * Push wake-ups on the embedded store: the same NOTIFY triggers reach the runtime through PGlite's
 * in-process notifications, so an idle embedded runtime sends nothing and a timer fires on time.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Client, Runtime } from '../../src/index';
import { applyMigrations } from '../../src/store/migrations';
import { ProcedureProvider } from '../../src/store/procedure-provider';
import { PGliteExecutor } from '../../src/pglite/pglite-executor';
import { createPGlite } from '../../src/pglite/pglite-factory';
import { CountingExecutor } from '../helpers/counting-executor';
import { sleep } from '../helpers/sleep';
import { gateState, untilIdle } from '../helpers/idle-runtime';

/** The default `orchestrationConcurrency` (4) plus the default `workerConcurrency` (8). */
const DEFAULT_WORKERS = 12;

let executor: CountingExecutor;
let provider: ProcedureProvider;
let runtime: Runtime;
const timerRuns = new Map<string, { dueAt: number; ranAt?: number }>();

before(async () => {
  const db = await createPGlite();
  executor = new CountingExecutor(new PGliteExecutor(db));
  await applyMigrations(executor, 'perf_embedded');
  provider = new ProcedureProvider(executor, 'perf_embedded', 'pglite');
  runtime = new Runtime(provider, { dispatcherPollIntervalMs: 100, logLevel: 'warn' });
  runtime.registerActivity('Noop', (_ctx, input: unknown) => input);
  runtime.registerOrchestration('One', function* (ctx, input: number) {
    return yield ctx.scheduleActivity('Noop', input);
  });
  runtime.registerOrchestration('Timer', function* (ctx, delayMs: number) {
    if (!ctx.isReplaying) timerRuns.set(ctx.instanceId, { dueAt: Date.now() + delayMs });
    yield ctx.scheduleTimer(delayMs);
    const run = timerRuns.get(ctx.instanceId);
    if (!ctx.isReplaying && run !== undefined && run.ranAt === undefined) run.ranAt = Date.now();
    return 'fired';
  });
  await runtime.start();
  await sleep(300);
});

after(async () => {
  await runtime.shutdown(100);
  await provider.close();
});

test('an idle embedded runtime sends no statements for 2 s', async () => {
  await untilIdle(provider, DEFAULT_WORKERS);
  executor.texts = [];
  await sleep(2000);
  assert.deepEqual(executor.texts, []);
  assert.deepEqual(
    gateState(provider),
    { idleWorkers: DEFAULT_WORKERS, dueArmed: 0, safetyArmed: 2 },
    'still all asleep, each gate armed only with its safety fetch',
  );
});

test('an embedded 1-activity orchestration takes 9 procedure calls and a timer fires on time', async () => {
  const client = new Client(provider);
  executor.texts = [];
  await client.startOrchestration('one-1', 'One', 5);
  assert.equal((await client.waitForOrchestration('one-1', 10_000)).output, 5);
  assert.ok(executor.texts.length <= 9, `procedure calls: ${executor.texts.length}`);

  await client.startOrchestration('timer-1', 'Timer', 500);
  assert.equal((await client.waitForOrchestration('timer-1', 10_000)).status, 'Completed');
  const run = timerRuns.get('timer-1');
  assert.ok(run?.ranAt !== undefined);
  assert.ok(run.ranAt - run.dueAt < 250, `ran ${run.ranAt - run.dueAt} ms after due`);
});
