/**
 * Property tests over random programs: both forms write identical histories and replay each
 * other's; async programs with parallel multi-step branches replay the same way however their
 * completions are grouped into turns.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  actionsOf,
  assertReplays,
  assertSameHistory,
  firstLine,
  replayInOneTurn,
  replayRegrouped,
  runToEnd,
} from './drive';
import { asyncOf, generatorOf, programs } from './async-programs';

test('property: random programs write identical histories as generators and as async functions', async () => {
  await fc.assert(
    fc.asyncProperty(
      programs(false),
      fc.integer({ min: 1, max: 1000 }),
      fc.integer({ min: 1, max: 4 }),
      async (program, seed, maxBatch) => {
        const gen = { P: generatorOf(program) };
        const async = { P: asyncOf(program) };
        const g = await runToEnd(gen, 'P', null, { seed, maxBatch });
        const a = await runToEnd(async, 'P', null, { seed, maxBatch });
        assert.match(g.outcome, /^completed:/);
        assertSameHistory(g, a, JSON.stringify(program));
        await assertReplays(g, async, 'async replays the generator history');
        await assertReplays(a, gen, 'generator replays the async history');
      },
    ),
    { numRuns: 60, seed: 20261130 },
  );
});

test(
  're-batching: the same completions grouped into different turns ask for the ' + 'same things in the same order',
  async () => {
    await fc.assert(
      fc.asyncProperty(programs(true), fc.integer({ min: 1, max: 1000 }), async (program, seed) => {
        const handlers = { P: asyncOf(program) };
        const recorded = await runToEnd(handlers, 'P', null, { seed, maxBatch: 1 });
        assert.match(recorded.outcome, /^completed:/);
        for (let regroup = 0; regroup < 8; regroup++) {
          const run = await replayRegrouped(recorded, handlers, seed * 31 + regroup, 1 + (regroup % 4));
          assert.equal(run.outcome, recorded.outcome, 'same result');
          assert.deepEqual(actionsOf(run.history), actionsOf(recorded.history), 'same actions in the same order');
          assert.equal(
            firstLine(await replayInOneTurn(run, handlers)),
            firstLine(recorded.outcome),
            'the regrouped history replays in one turn',
          );
          await assertReplays(run, handlers, 'the regrouped history replays turn by turn');
        }
      }),
      { numRuns: 30, seed: 7 },
    );
  },
);

test(
  're-batching: parallel multi-step branches, a recorded history replayed 200 ' + 'times in random groupings',
  async () => {
    const handlers = {
      P: async (ctx: import('../../src/core/async-context').AsyncOrchestrationContext) => {
        const branch = async (tag: string): Promise<unknown> => {
          const a = await ctx.scheduleActivity('S1', tag);
          await null;
          const b = await ctx.scheduleActivity('S2', a);
          ctx.setValue(`done-${tag}`, String(b));
          return b;
        };
        const timed = (async () => {
          await ctx.scheduleTimer(5);
          return ctx.scheduleActivity('T', 1);
        })();
        const results = await Promise.all([branch('x'), branch('y'), timed, branch('z')]);
        const go = await ctx.race(ctx.waitForEvent('go'), ctx.scheduleTimer(100));
        return { results, go };
      },
    };
    const recorded = await runToEnd(handlers, 'P', null, { seed: 3 });
    assert.match(recorded.outcome, /^completed:/);
    for (let i = 0; i < 200; i++) {
      const run = await replayRegrouped(recorded, handlers, i, 1 + (i % 5));
      assert.equal(run.outcome, recorded.outcome);
      assert.deepEqual(actionsOf(run.history), actionsOf(recorded.history));
      assert.equal(await replayInOneTurn(run, handlers), recorded.outcome);
    }
  },
);
