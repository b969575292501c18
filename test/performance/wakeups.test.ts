/**
 * Push wake-ups on the real PostgreSQL server (migration 0005 + the runtime's wake-up gates):
 * an idle runtime sends nothing, a timer wakes its dispatcher when due, a waiting client returns
 * promptly, and a 1-activity orchestration stays within 4 round trips including the client's wait.
 *
 * Runtimes here poll only every 5 s (`dispatcherPollIntervalMs`), and clients use a provider object
 * of their own, so in-process wake-ups cannot help: only the store's notifications make these
 * tests pass.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { Client, Runtime } from '../../src/index';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { ProcedureProvider } from '../../src/store/procedure-provider';
import type { Provider } from '../../src/provider/contract';
import { CountingExecutor } from '../helpers/counting-executor';
import { databaseUrl, dropTestSchema, migrateTestSchema, uniqueSchemaName } from '../helpers/postgres-harness';
import { sleep } from '../helpers/sleep';
import { gateState, untilIdle } from '../helpers/idle-runtime';

/** The default `orchestrationConcurrency` (4) plus the default `workerConcurrency` (8). */
const DEFAULT_WORKERS = 12;
const SLOW_POLL = { dispatcherPollIntervalMs: 5000, logLevel: 'warn' } as const;
const schema = uniqueSchemaName('perf_wakeups');
const opened: Provider[] = [];
const runtimes: Runtime[] = [];
let counter = 0;

function open(): { provider: ProcedureProvider; executor: CountingExecutor } {
  const executor = new CountingExecutor(PgExecutor.fromUrl(databaseUrl(), 4));
  const provider = new ProcedureProvider(executor, schema, 'postgres');
  opened.push(provider);
  return { provider, executor };
}

/** Resolves once the provider's push channel is connected. */
async function untilLive(provider: Provider): Promise<void> {
  const subscription = provider.subscribeToWakeups?.(() => undefined);
  assert.ok(subscription !== undefined, 'the procedure provider offers push wake-ups');
  try {
    for (let i = 0; i < 200 && !subscription.live; i += 1) await sleep(10);
    assert.ok(subscription.live, 'the LISTEN connection came up');
  } finally {
    subscription.unsubscribe();
  }
}

/** Bench-style side channel: when the code after the timer ran, per instance. */
const timerRuns = new Map<string, { dueAt: number; ranAt?: number }>();

async function startRuntime(
  provider: Provider,
  options: { dispatcherPollIntervalMs: number } = SLOW_POLL,
): Promise<Runtime> {
  const runtime = new Runtime(provider, { ...SLOW_POLL, ...options });
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
  runtimes.push(runtime);
  await untilLive(provider);
  return runtime;
}

const uid = (prefix: string): string => `${prefix}-${++counter}-${process.pid}`;

before(() => migrateTestSchema(schema));

// Each test runs alone on the schema: a runtime left over would compete for the work.
afterEach(async () => {
  for (const runtime of runtimes.splice(0)) await runtime.shutdown(100);
});

after(async () => {
  for (const provider of opened) await provider.close();
  await dropTestSchema(schema);
});

test('an idle runtime sends no queries for 2 s, even with the default 100 ms poll interval', async () => {
  const { provider, executor } = open();
  await startRuntime(provider, { dispatcherPollIntervalMs: 100 });
  await untilIdle(provider, DEFAULT_WORKERS); // after the first drain fetches of each worker
  executor.count = 0;
  executor.texts = [];
  await sleep(2000);
  assert.deepEqual(executor.texts, [], 'no statement while idle');
  assert.deepEqual(
    gateState(provider),
    { idleWorkers: DEFAULT_WORKERS, dueArmed: 0, safetyArmed: 2 },
    'still all asleep, each gate armed only with its safety fetch',
  );
});

test('work enqueued by another process wakes an idle runtime, and the waiting client returns promptly', async () => {
  const runner = open();
  await startRuntime(runner.provider);
  const caller = open();
  await untilLive(caller.provider);
  const client = new Client(caller.provider);
  const id = uid('one');
  await client.startOrchestration(id, 'One', 7);
  caller.executor.count = 0;
  const started = Date.now();
  const status = await client.waitForOrchestration(id, 10_000);
  assert.equal(status.status, 'Completed');
  assert.equal(status.output, 7);
  assert.ok(Date.now() - started < 2000, `waited ${Date.now() - started} ms with a 5 s poll interval`);
  assert.ok(caller.executor.count <= 3, `the client read the status ${caller.executor.count} times`);
});

test('a 1 s timer wakes its dispatcher when due, not a poll interval later', async () => {
  const { provider } = open();
  await startRuntime(provider);
  const client = new Client(provider);
  const id = uid('timer');
  await client.startOrchestration(id, 'Timer', 1000);
  const status = await client.waitForOrchestration(id, 10_000);
  assert.equal(status.status, 'Completed');
  const run = timerRuns.get(id);
  assert.ok(run?.ranAt !== undefined, 'the code after the timer ran live');
  const lateness = run.ranAt - run.dueAt;
  // The poll interval is 5 s: without the due-time wake-up this would be seconds late.
  assert.ok(lateness < 250, `the code after the timer ran ${lateness} ms after it was due`);
});

test('a 1-activity orchestration needs at most 2 round trips, the client wait included', async () => {
  const { provider, executor } = open();
  await startRuntime(provider);
  const client = new Client(provider);
  await client.startOrchestration(uid('warm'), 'One', 0);
  await sleep(200);
  const perRun: number[] = [];
  const operations: string[] = [];
  for (let i = 0; i < 10; i += 1) {
    const id = uid('rt');
    executor.count = 0;
    executor.texts = [];
    await client.startOrchestration(id, 'One', i);
    assert.equal((await client.waitForOrchestration(id, 10_000)).status, 'Completed');
    perRun.push(executor.count);
    operations.push(executor.texts.map((text) => /\.(\w+)\(/.exec(text)?.[1] ?? text).join(' '));
    assert.ok(
      executor.texts.some((text) => text.includes('.start_orchestration_with_turn(')),
      "the client in the runtime's process commits the first turn with the start (fused start)",
    );
  }
  // Floor with fused start, fused completion and local completion: the start, committing the
  // first turn run in the client's process and claiming the activity, 1 + the activity's ack
  // fused with the final turn 1 (the client started the instance here: it does not read the
  // status, the fused ack hands it the committed one). Without fused start 3 (the start claims
  // the first turn, its ack is a second call), without fused completion one more (the final turn
  // acked apart), without local completion one more (a read after the hint).
  assert.ok(
    executor.texts.some((text) => text.includes('.ack_work_item_with_turn(')),
    'the activity ack commits the final turn (fused completion)',
  );
  assert.ok(
    Math.max(...perRun) <= 2,
    `round trips per orchestration: ${perRun.join(', ')}; calls: ${operations.join(' | ')}`,
  );
});

test('after the LISTEN connection is lost the runtime keeps working and reconnects', async () => {
  const { provider } = open();
  await startRuntime(provider);
  const client = new Client(provider);
  const admin = PgExecutor.fromUrl(databaseUrl(), 1);
  try {
    // Test-only: kill the listener's backend the way a network failure or a restart would.
    const killed = await admin.query(
      'SELECT pg_terminate_backend(pid) AS result FROM pg_stat_activity WHERE query ' +
        "LIKE '%' || $1 || '%.listen_for_wakeups()%' AND pid <> pg_backend_pid()",
      [schema],
    );
    assert.ok(killed.length >= 1, 'found the listening backend');
  } finally {
    await admin.close();
  }
  const id = uid('after-loss');
  await client.startOrchestration(id, 'One', 1);
  assert.equal((await client.waitForOrchestration(id, 10_000)).status, 'Completed');
  await untilLive(provider);
  // Workers that polled during the outage (5 s interval here) are woken when the channel is back.
  // The work comes from another provider object, as from another process: no in-process wake-up.
  const caller = open();
  await untilLive(caller.provider);
  const remote = new Client(caller.provider);
  const started = Date.now();
  const back = uid('back');
  await remote.startOrchestration(back, 'One', 2);
  assert.equal((await remote.waitForOrchestration(back, 10_000)).status, 'Completed');
  assert.ok(
    Date.now() - started < 2000,
    `took ${Date.now() - started} ms after the channel came back (poll interval 5 s)`,
  );
});
