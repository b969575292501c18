import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AsyncOrchestrationContext } from '../../src/core/async-context';
import type { OrchestrationContext } from '../../src/core/orchestration-context';
import { Sim, outcomeOf } from './harness';
import type { Untyped } from '../../src/core/turn-api';

test('an async orchestration awaits activities and ctx.all like a generator yields them', async () => {
  const sim = new Sim({
    Fan: async (ctx: AsyncOrchestrationContext, n: number) => {
      const first = await ctx.scheduleActivity<number>('Add', n);
      const results = await ctx.all([ctx.scheduleActivity('A', first), ctx.scheduleActivity('B', first)]);
      return results.reduce((sum, r) => sum + (r.ok as number), 0);
    },
  });
  await sim.ackAsync([sim.start('Fan', 1)]);
  await sim.ackAsync([sim.done(2, 10)]);
  assert.deepEqual(sim.kinds(), [
    'OrchestrationStarted',
    'ActivityScheduled',
    'ActivityCompleted',
    'ActivityScheduled',
    'ActivityScheduled',
  ]);
  await sim.ackAsync([sim.done(5, 2)]);
  const result = await sim.turnAsync([sim.done(4, 1)]);
  assert.equal(outcomeOf(result), 'completed:3');
});

test('generator twin writes the same history', () => {
  const sim = new Sim({
    Fan: function* (ctx: OrchestrationContext, n: number): Generator<unknown, unknown, Untyped> {
      const first = yield ctx.scheduleActivity('Add', n);
      const results = yield ctx.all([ctx.scheduleActivity('A', first), ctx.scheduleActivity('B', first)]);
      return results.reduce((sum: number, r: { ok: number }) => sum + r.ok, 0);
    },
  });
  sim.ack([sim.start('Fan', 1)]);
  sim.ack([sim.done(2, 10)]);
  sim.ack([sim.done(5, 2)]);
  assert.equal(outcomeOf(sim.turn([sim.done(4, 1)])), 'completed:3');
});

test('types: awaited ctx tasks carry their declared types under strict', async () => {
  // Compile-time checks: the @ts-expect-error lines fail the build if the types were too loose.
  const typed = async (ctx: AsyncOrchestrationContext): Promise<number> => {
    const n: number = await ctx.scheduleActivity<number>('N').withTag('t');
    // @ts-expect-error an activity typed as number is not a string
    const s: string = await ctx.scheduleActivity<number>('N');
    const now: number = await ctx.utcNow();
    const guid: string = await ctx.newGuid();
    const fired: null = await ctx.scheduleTimer(1);
    const joined = await ctx.all<number>([ctx.scheduleActivity<number>('A')]);
    const first: number | undefined = joined[0]?.ok;
    const raced = await ctx.race<string>(ctx.waitForEvent<string>('e'), ctx.scheduleTimer(1));
    const index: number = raced.index;
    // @ts-expect-error a race result is not a number
    const wrong: number = raced;
    return n + now + guid.length + (fired ?? 0) + (first ?? 0) + index + s.length + Number(wrong);
  };
  assert.equal(typeof typed, 'function');
});
