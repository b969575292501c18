/**
 * An activity claimed into the activity pool's inbox (slot pipelining) keeps its lock running
 * while it waits for a slot. When it waited past its lock, the slot that takes it renews the lock
 * first and, finding it lost, does not run it: the item is delivered again (here by the safety
 * fetch) and its handler runs once, not once with a dead lock and again after.
 *
 * One slot, locks of 2 s. Chain A's first fused ack is held until instance B's 3 s activity has
 * started on the slot, so the step that ack claims waits in the inbox for 3 s.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Client, Runtime } from '../../src/index';
import { dropTestSchema, migrateTestSchema, uniqueSchemaName } from '../helpers/postgres-harness';
import { FirstFusedAckHeldStore } from '../helpers/held-fused-ack';

const schema = uniqueSchemaName('rel_inbox_lock');
const stepRuns = new Map<number, number>();
let longStarted: () => void = () => undefined;
const longHasStarted = new Promise<void>((resolve) => (longStarted = resolve));
let ackHeld: () => void = () => undefined;
const firstAckIsHeld = new Promise<void>((resolve) => (ackHeld = resolve));
let provider: FirstFusedAckHeldStore;
let runtime: Runtime;

before(async () => {
  await migrateTestSchema(schema);
  provider = new FirstFusedAckHeldStore(schema, { instanceId: 'chain-a', held: ackHeld, release: longHasStarted });
  runtime = new Runtime(provider, {
    logLevel: 'warn',
    workerConcurrency: 1,
    orchestrationConcurrency: 1,
    workerLockTimeoutMs: 2_000,
  });
  runtime.registerActivity('Step', (_ctx, n: number) => {
    stepRuns.set(n, (stepRuns.get(n) ?? 0) + 1);
    return n + 1;
  });
  runtime.registerActivity('Long', async () => {
    longStarted();
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    return 'long';
  });
  runtime.registerOrchestration('Chain', function* (ctx) {
    const first = (yield ctx.scheduleActivity('Step', 0)) as number;
    return yield ctx.scheduleActivity('Step', first);
  });
  runtime.registerOrchestration('Single', function* (ctx) {
    return yield ctx.scheduleActivity('Long', null);
  });
  await runtime.start();
});

after(async () => {
  await runtime.shutdown(500);
  await provider.close();
  await dropTestSchema(schema);
});

test(
  'an activity that waited in the inbox past its lock is not run with the lost lock',
  { timeout: 60_000 },
  async () => {
    const client = new Client(provider);
    await client.startOrchestration('chain-a', 'Chain', null);
    await firstAckIsHeld;
    await client.startOrchestration('single-b', 'Single', null);
    const [a, b] = await Promise.all([
      client.waitForOrchestration('chain-a', 40_000),
      client.waitForOrchestration('single-b', 40_000),
    ]);
    assert.deepEqual([a.status, a.output], ['Completed', 2]);
    assert.deepEqual([b.status, b.output], ['Completed', 'long']);
    assert.deepEqual(
      [...stepRuns.entries()].sort(([x], [y]) => x - y),
      [
        [0, 1],
        [1, 1],
      ],
      'each step ran once',
    );
  },
);
