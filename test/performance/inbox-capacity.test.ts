/**
 * The activity pool's inbox grows while activities are short (src/runtime/inbox-capacity.ts), on
 * the real PostgreSQL server: one slot, whose recent activities took microseconds, keeps the next
 * steps of two chains whose fused acks are both out (held by the store wrapper below) and goes on
 * to run other work; one whose recent activities took 3 ms has one place, so the second chain's
 * slot waits for its own ack. The held acks go out only when the test lets them, so each order of
 * events below is certain, not a matter of timing.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Client, Runtime } from '../../src/index';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { databaseUrl, dropTestSchema, migrateTestSchema, uniqueSchemaName } from '../helpers/postgres-harness';
import { FusedAckHookStore } from '../helpers/held-fused-ack';

const schemas: string[] = [];

after(async () => {
  for (const schema of schemas) await dropTestSchema(schema);
});

/**
 * Runs chains `a` and `b` (two steps each) on one slot after 16 warm-up activities of `stepMs`,
 * with every fused ack of the chains held until the test releases them: once both are out,
 * instance `last` is started, and the acks are released when its activity starts or, for a slot
 * that waits for its own ack, once `last` is started. Returns the order of events.
 */
async function runWithHeldAcks(stepMs: number): Promise<string[]> {
  const schema = uniqueSchemaName('perf_inbox_capacity');
  schemas.push(schema);
  await migrateTestSchema(schema);
  const events: string[] = [];
  let holding = false;
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  let bothHeld: () => void = () => undefined;
  const bothAreHeld = new Promise<void>((resolve) => (bothHeld = resolve));
  const held = new Set<string>();
  const provider = new FusedAckHookStore(PgExecutor.fromUrl(databaseUrl(), 4), schema, async (acks) => {
    // The first fused ack of each chain (its first step's), not those after the release.
    const chains = acks
      .map((ack) => ack.completion.instance)
      .filter((id) => (id === 'a' || id === 'b') && !held.has(id));
    if (!holding || chains.length === 0) return;
    for (const id of chains) {
      held.add(id);
      events.push(`ack of ${id} held`);
    }
    if (held.size === 2) bothHeld();
    await released;
  });
  const runtime = new Runtime(provider, { logLevel: 'warn', workerConcurrency: 1 });
  const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
  runtime.registerActivity('Step', async (_ctx, n: number) => {
    if (stepMs > 0) await pause(stepMs);
    return n + 1;
  });
  runtime.registerActivity('Last', () => {
    events.push('Last started');
    release();
    return 'last';
  });
  runtime.registerOrchestration('Chain', function* (ctx, steps: number) {
    let n = 0;
    for (let i = 0; i < steps; i += 1) n = (yield ctx.scheduleActivity('Step', n)) as number;
    return n;
  });
  runtime.registerOrchestration('Single', function* (ctx) {
    return yield ctx.scheduleActivity('Last', null);
  });
  await runtime.start();
  try {
    const client = new Client(provider);
    await client.startOrchestration('warm-up', 'Chain', 16);
    assert.equal((await client.waitForOrchestration('warm-up', 15_000)).status, 'Completed');

    holding = true;
    await client.startOrchestration('a', 'Chain', 2);
    await client.startOrchestration('b', 'Chain', 2);
    await bothAreHeld;
    await client.startOrchestration('last', 'Single', null);
    if (stepMs > 0) {
      // The slot is waiting for b's ack: nothing else can start Last, so the acks go now.
      events.push('acks released');
      release();
    }
    const results = await Promise.all(['a', 'b', 'last'].map((id) => client.waitForOrchestration(id, 15_000)));
    assert.deepEqual(
      results.map((r) => [r.status, r.output]),
      [
        ['Completed', 2],
        ['Completed', 2],
        ['Completed', 'last'],
      ],
    );
    return events;
  } finally {
    release();
    await runtime.shutdown(500);
    await provider.close();
  }
}

test('after short activities one slot keeps two chains in its inbox and runs other work meanwhile', async () => {
  // With one place the slot would wait for b's held ack, and Last would never start (deadline).
  assert.deepEqual(await runWithHeldAcks(0), ['ack of a held', 'ack of b held', 'Last started']);
});

test('after 3 ms activities one slot has one inbox place and waits for its second ack', async () => {
  assert.deepEqual(await runWithHeldAcks(3), ['ack of a held', 'ack of b held', 'acks released', 'Last started']);
});
