/**
 * Priorities through the public API: under saturation (one turn worker, one activity slot, a
 * backlog of mixed levels) activities run highest level first and FIFO within a level, and the
 * queue wait per level shows it; children inherit the parent's level unless given their own and
 * the level survives continue-as-new; a level outside 0..9 is refused before anything is written.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect, durox, eventually, startRuntime, uid, type Client, type Provider, type Runtime } from './helpers';

let provider: Provider;
let client: Client;

before(async () => {
  provider = await connect('priorities');
  client = new durox.Client(provider);
});

after(async () => {
  await provider.close();
});

test('one slot, mixed levels: the backlog runs highest level first, FIFO within a level', async (t) => {
  const levels = [0, 3, 9, 0, 6, 9, 3, 0, 6, 9, 0, 3];
  const run = uid('sat');
  const ids = levels.map((_, i) => `${run}-${i}`);
  // Queued before any runtime runs: the whole backlog competes from the start.
  for (const [i, level] of levels.entries()) {
    await client.startOrchestration(ids[i], 'Job', { i }, { priority: level });
  }
  const ran: Array<{ i: number; atMs: number }> = [];
  let startedAt = 0;
  let runtime: Runtime | undefined;
  try {
    startedAt = Date.now();
    runtime = await startRuntime(
      provider,
      (rt) => {
        rt.registerActivity('Work', async (_ctx, input: { i: number }) => {
          ran.push({ i: input.i, atMs: Date.now() - startedAt });
          await new Promise((resolve) => setTimeout(resolve, 20));
          return input.i;
        });
        rt.registerOrchestration('Job', function* (ctx, input: { i: number }) {
          return yield ctx.scheduleActivity('Work', input);
        });
      },
      { orchestrationConcurrency: 1, workerConcurrency: 1 },
    );
    for (const id of ids) await client.waitForOrchestration(id, 30_000);
  } finally {
    await runtime?.shutdown(100);
  }
  const expected = levels
    .map((level, i) => ({ level, i }))
    .sort((a, b) => b.level - a.level || a.i - b.i)
    .map((x) => x.i);
  // The first activity may be any level-9 one: while the slot is still idle, the ack of a later
  // level-9 turn can claim its own activity for it (eager dispatch) before the slot fetches the
  // one queued a moment earlier. From then on the slot is busy and every activity is queued.
  const [first, ...rest] = ran.map((r) => r.i);
  assert.equal(levels[first], 9);
  assert.deepEqual(
    rest,
    expected.filter((i) => i !== first),
  );
  const waits = new Map<number, number[]>();
  for (const r of ran) waits.set(levels[r.i], [...(waits.get(levels[r.i]) ?? []), r.atMs]);
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  for (const level of [9, 6, 3, 0]) t.diagnostic(`level ${level}: waited ${waits.get(level)!.join(', ')} ms`);
  assert.ok(mean(waits.get(9)!) < mean(waits.get(6)!) && mean(waits.get(6)!) < mean(waits.get(0)!));
});

test('children inherit the level unless given their own; it survives continue-as-new; details show it', async () => {
  const id = uid('family');
  let runtime: Runtime | undefined;
  try {
    runtime = await startRuntime(provider, (rt) => {
      rt.registerActivity('Echo', (_ctx, n: number) => n);
      rt.registerOrchestration('Kid', function* (ctx, n: number) {
        return yield ctx.scheduleActivity('Echo', n);
      });
      rt.registerOrchestration('Family', function* (ctx, round: number) {
        yield ctx.all([
          ctx.scheduleSubOrchestrationWithId('Kid', `${ctx.instanceId}-kid-${round}`, 1),
          ctx.scheduleSubOrchestrationWithId('Kid', `${ctx.instanceId}-urgent-${round}`, 2).withPriority(9),
        ]);
        if (round === 0) return yield ctx.continueAsNew(1);
        return 'done';
      });
    });
    await client.startOrchestration(id, 'Family', 0, { priority: 4 });
    await client.waitForOrchestration(id, 20_000);
    for (const [child, level] of [
      [`${id}-kid-0`, 4],
      [`${id}-urgent-0`, 9],
      [`${id}-kid-1`, 4],
      [`${id}-urgent-1`, 9],
    ] as const) {
      const info = await eventually(async () => {
        const i = await client.getInstanceInfo(child);
        return i.status === 'Completed' ? i : undefined;
      });
      assert.equal(info.priority, level, child);
    }
    const parent = await client.getInstanceInfo(id);
    assert.equal(parent.currentExecutionId, 2);
    assert.equal(parent.priority, 4);
    const plain = uid('plain');
    await client.startOrchestration(plain, 'Kid', 3);
    await client.waitForOrchestration(plain, 10_000);
    assert.equal('priority' in (await client.getInstanceInfo(plain)), false, 'the default level is not shown');
  } finally {
    await runtime?.shutdown(100);
  }
});

test('a level outside 0..9 is refused with invalid_argument and nothing is written', async () => {
  for (const priority of [10, -1, 2.5, '3'] as unknown[]) {
    const id = uid('bad-level');
    await assert.rejects(
      client.startOrchestration(id, 'Job', null, { priority } as { priority: number }),
      (error: unknown) => {
        assert.ok(error instanceof durox.InvalidArgumentError);
        assert.equal(error.code, 'invalid_argument');
        assert.equal(error.instanceId, id);
        assert.match(error.message, /priority must be an integer from 0 to 9/);
        return true;
      },
    );
    assert.equal((await client.getStatus(id)).status, 'NotFound');
  }
  const depths = await client.getQueueDepths();
  assert.equal(depths.orchestratorQueue, 0, 'no start was queued');
});
