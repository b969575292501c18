import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AsyncOrchestrationContext } from '../../src/core/async-context';
import type { OrchestrationContext } from '../../src/core/orchestration-context';
import { Sim, outcomeOf } from './harness';

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
  assert.deepEqual(sim.kinds(), ['OrchestrationStarted', 'ActivityScheduled', 'ActivityCompleted', 'ActivityScheduled', 'ActivityScheduled']);
  await sim.ackAsync([sim.done(5, 2)]);
  const result = await sim.turnAsync([sim.done(4, 1)]);
  assert.equal(outcomeOf(result), 'completed:3');
});

test('generator twin writes the same history', () => {
  const sim = new Sim({
    Fan: function* (ctx: OrchestrationContext, n: number): Generator<unknown, unknown, any> {
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
