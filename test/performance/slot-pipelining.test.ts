/**
 * Slot pipelining on the real PostgreSQL server (docs/runtime.md, "Fused completion"): a slot
 * whose fused ack claims the chain's next activity does not wait for that ack while an inbox
 * place can hold the claimed activity; it runs other queued work meanwhile, and the claimed
 * activity waits in the inbox for the first slot that finishes.
 *
 * One slot only. The fused ack of chain A's first step is held back by the store wrapper below
 * until activity `Other` of instance B, started once that ack is held, has started: a slot that
 * waits for its own ack never starts `Other`, and the test fails on its deadline instead of
 * passing by luck.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Client, Runtime } from '../../src/index';
import { dropTestSchema, migrateTestSchema, uniqueSchemaName } from '../helpers/postgres-harness';
import { FirstFusedAckHeldStore } from '../helpers/held-fused-ack';

const schema = uniqueSchemaName('perf_slot_pipelining');
const events: string[] = [];
let otherStarted: () => void = () => undefined;
const otherHasStarted = new Promise<void>((resolve) => (otherStarted = resolve));
let ackHeld: () => void = () => undefined;
const firstAckIsHeld = new Promise<void>((resolve) => (ackHeld = resolve));
let provider: FirstFusedAckHeldStore;
let runtime: Runtime;

before(async () => {
  await migrateTestSchema(schema);
  provider = new FirstFusedAckHeldStore(schema, {
    instanceId: 'chain-a',
    held: () => {
      events.push('fused ack of chain-a held');
      ackHeld();
    },
    release: otherHasStarted,
    sent: () => events.push('fused ack of chain-a sent'),
  });
  runtime = new Runtime(provider, { logLevel: 'warn', workerConcurrency: 1, orchestrationConcurrency: 1 });
  let steps = 0;
  runtime.registerActivity('Step', (_ctx, n: number) => {
    steps += 1;
    events.push(`Step ${steps} started`);
    return n + 1;
  });
  runtime.registerActivity('Other', () => {
    events.push('Other started');
    otherStarted();
    return 'other';
  });
  runtime.registerOrchestration('Chain', function* (ctx) {
    const first = (yield ctx.scheduleActivity('Step', 0)) as number;
    return yield ctx.scheduleActivity('Step', first);
  });
  runtime.registerOrchestration('Single', function* (ctx) {
    return yield ctx.scheduleActivity('Other', null);
  });
  await runtime.start();
});

after(async () => {
  await runtime.shutdown(500);
  await provider.close();
  await dropTestSchema(schema);
});

test('a slot runs queued work while its fused ack is out, and then the step that ack claimed', async () => {
  const client = new Client(provider);
  await client.startOrchestration('chain-a', 'Chain', null);
  await firstAckIsHeld;
  await client.startOrchestration('single-b', 'Single', null);

  const [a, b] = await Promise.all([
    client.waitForOrchestration('chain-a', 15_000),
    client.waitForOrchestration('single-b', 15_000),
  ]);
  assert.deepEqual([a.status, a.output], ['Completed', 2]);
  assert.deepEqual([b.status, b.output], ['Completed', 'other']);
  assert.deepEqual(events, [
    'Step 1 started',
    'fused ack of chain-a held',
    'Other started',
    'fused ack of chain-a sent',
    'Step 2 started',
  ]);
});
