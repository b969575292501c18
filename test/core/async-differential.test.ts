/**
 * Differential tests: each scenario is written as a generator and as an async function; both
 * must write identical histories under the same answers, and each must replay the other's
 * history turn by turn.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AsyncOrchestrationContext } from '../../src/core/async-context';
import type { OrchestrationContext } from '../../src/core/orchestration-context';
import type { Handlers } from './harness';
import { assertReplays, assertSameHistory, firstLine, replayInOneTurn, runToEnd } from './drive';
import type { Untyped } from '../../src/core/turn-api';

type Gen = Generator<unknown, unknown, Untyped>;
type GenFn = (ctx: OrchestrationContext, input: Untyped) => Gen;
type AsyncFn = (ctx: AsyncOrchestrationContext, input: Untyped) => Promise<unknown>;

interface Scenario {
  name: string;
  input: unknown;
  gen: GenFn;
  async: AsyncFn;
  /** Expected outcome prefix, so a scenario cannot pass by failing the same way twice. */
  expect: string;
}

const scenarios: Scenario[] = [
  {
    name: 'sequence',
    input: 1,
    expect: 'completed:',
    *gen(ctx, n) {
      const a = yield ctx.scheduleActivity('A', n);
      const b = yield ctx.scheduleActivity('B', a);
      return [a, b];
    },
    async async(ctx, n) {
      const a = await ctx.scheduleActivity<string>('A', n);
      const b = await ctx.scheduleActivity<string>('B', a);
      return [a, b];
    },
  },
  {
    name: 'fan-out with ctx.all and a failing member',
    input: 5,
    expect: 'completed:',
    *gen(ctx, n) {
      const tasks = Array.from({ length: n }, (_, i) => ctx.scheduleActivity(i === 2 ? 'Fail2' : `W${i}`, i));
      const results = yield ctx.all(tasks);
      const more = yield ctx.allTyped([ctx.scheduleActivityTyped('T', 'x'), ctx.scheduleTimer(5)]);
      return { results, more };
    },
    async async(ctx, n) {
      const tasks = Array.from({ length: n }, (_, i) => ctx.scheduleActivity(i === 2 ? 'Fail2' : `W${i}`, i));
      const results = await ctx.all(tasks);
      const more = await ctx.allTyped([ctx.scheduleActivityTyped('T', 'x'), ctx.scheduleTimer(5)]);
      return { results, more };
    },
  },
  {
    name: 'race of an activity and a timer, twice',
    input: null,
    expect: 'completed:',
    *gen(ctx) {
      const first = yield ctx.race(ctx.scheduleActivity('Slow'), ctx.scheduleTimer(50));
      const second = yield ctx.raceTyped(ctx.scheduleTimer(10), ctx.scheduleActivity('Fast'));
      return [first, second];
    },
    async async(ctx) {
      const first = await ctx.race(ctx.scheduleActivity('Slow'), ctx.scheduleTimer(50));
      const second = await ctx.raceTyped(ctx.scheduleTimer(10), ctx.scheduleActivity('Fast'));
      return [first, second];
    },
  },
  {
    name: 'retries: backoff, exhaustion, per-attempt timeout, session',
    input: null,
    expect: 'completed:',
    *gen(ctx) {
      const ok = yield ctx.scheduleActivityWithRetry('Flaky', 1, { maxAttempts: 3, backoff: 'fixed' });
      let failed = '';
      try {
        yield ctx.scheduleActivityWithRetry('FailAlways', 2, { maxAttempts: 2 });
      } catch (e) {
        failed = (e as Error).message;
      }
      let timed;
      try {
        timed = yield ctx.scheduleActivityWithRetryOnSession(
          'FlakyS',
          3,
          { maxAttempts: 2, timeoutMs: 100, backoff: 'linear' },
          's1',
        );
      } catch (e) {
        timed = (e as Error).message;
      }
      return { ok, failed, timed };
    },
    async async(ctx) {
      const ok = await ctx.scheduleActivityWithRetry('Flaky', 1, { maxAttempts: 3, backoff: 'fixed' });
      let failed = '';
      try {
        await ctx.scheduleActivityWithRetry('FailAlways', 2, { maxAttempts: 2 });
      } catch (e) {
        failed = (e as Error).message;
      }
      let timed;
      try {
        timed = await ctx.scheduleActivityWithRetryOnSession(
          'FlakyS',
          3,
          { maxAttempts: 2, timeoutMs: 100, backoff: 'linear' },
          's1',
        );
      } catch (e) {
        timed = (e as Error).message;
      }
      return { ok, failed, timed };
    },
  },
  {
    name: 'tags and sessions',
    input: 'in',
    expect: 'completed:',
    *gen(ctx, input) {
      const a = yield ctx.scheduleActivity('Gpu', input).withTag('gpu');
      const b = yield ctx.scheduleActivityOnSession('Pinned', a, 'session-1');
      const c = yield ctx.scheduleActivity('Opt', b, { sessionId: 'session-2' });
      const d = yield ctx.scheduleActivityOnSessionTyped('PinnedTyped', c, 'session-1').withTag('t2');
      return [a, b, c, d];
    },
    async async(ctx, input) {
      const a = await ctx.scheduleActivity('Gpu', input).withTag('gpu');
      const b = await ctx.scheduleActivityOnSession('Pinned', a, 'session-1');
      const c = await ctx.scheduleActivity('Opt', b, { sessionId: 'session-2' });
      const d = await ctx.scheduleActivityOnSessionTyped('PinnedTyped', c, 'session-1').withTag('t2');
      return [a, b, c, d];
    },
  },
  {
    name: 'external events, with a timeout race',
    input: null,
    expect: 'completed:',
    *gen(ctx) {
      const first = yield ctx.waitForEvent('go');
      const raced = yield ctx.race(ctx.waitForEventTyped('approve'), ctx.scheduleTimer(1000));
      return { first, raced };
    },
    async async(ctx) {
      const first = await ctx.waitForEvent('go');
      const raced = await ctx.race(ctx.waitForEventTyped('approve'), ctx.scheduleTimer(1000));
      return { first, raced };
    },
  },
  {
    name: 'event queues',
    input: 3,
    expect: 'completed:',
    *gen(ctx, n) {
      const got = [];
      for (let i = 0; i < n; i++)
        got.push(yield i % 2 === 0 ? ctx.dequeueEvent('inbox') : ctx.dequeueEventTyped('inbox'));
      return got;
    },
    async async(ctx, n) {
      const got = [];
      for (let i = 0; i < n; i++)
        got.push(await (i % 2 === 0 ? ctx.dequeueEvent('inbox') : ctx.dequeueEventTyped('inbox')));
      return got;
    },
  },
  {
    name: 'sub-orchestrations and detached starts',
    input: 7,
    expect: 'completed:',
    *gen(ctx, n) {
      const a = yield ctx.scheduleSubOrchestration('Child', n);
      const b = yield ctx.scheduleSubOrchestrationWithIdTyped('Child', 'child-x', a);
      let caught = '';
      try {
        yield ctx.scheduleSubOrchestrationVersioned('FailChild', '1.0.0', 1);
      } catch (e) {
        caught = (e as Error).message;
      }
      const detached = yield ctx.startOrchestration('Other', 'other-1', { n });
      yield ctx.startOrchestrationVersioned('Other', '1.0.0', 'other-2');
      const both = yield ctx.all([
        ctx.scheduleSubOrchestrationVersionedWithId('Child', null, 'child-y', 1),
        ctx.scheduleSubOrchestration('Child', 2),
      ]);
      return { a, b, caught, detached, both };
    },
    async async(ctx, n) {
      const a = await ctx.scheduleSubOrchestration('Child', n);
      const b = await ctx.scheduleSubOrchestrationWithIdTyped('Child', 'child-x', a);
      let caught = '';
      try {
        await ctx.scheduleSubOrchestrationVersioned('FailChild', '1.0.0', 1);
      } catch (e) {
        caught = (e as Error).message;
      }
      const detached = await ctx.startOrchestration('Other', 'other-1', { n });
      await ctx.startOrchestrationVersioned('Other', '1.0.0', 'other-2');
      const both = await ctx.all([
        ctx.scheduleSubOrchestrationVersionedWithId('Child', null, 'child-y', 1),
        ctx.scheduleSubOrchestration('Child', 2),
      ]);
      return { a, b, caught, detached, both };
    },
  },
  {
    name: 'continue-as-new carries the counter',
    input: 0,
    expect: 'completed:2',
    *gen(ctx, n) {
      yield ctx.scheduleActivity('Tick', n);
      ctx.setCustomStatus(`at ${n}`);
      if (n < 2) {
        yield ctx.continueAsNew(n + 1);
        return 'unreachable';
      }
      return n;
    },
    async async(ctx, n) {
      await ctx.scheduleActivity('Tick', n);
      ctx.setCustomStatus(`at ${n}`);
      if (n < 2) {
        await ctx.continueAsNew(n + 1);
        return 'unreachable';
      }
      return n;
    },
  },
  {
    name: 'utcNow, newGuid, getValueFromInstance, custom status and key-value',
    input: null,
    expect: 'completed:',
    *gen(ctx) {
      const now = yield ctx.utcNow();
      const guid = yield ctx.newGuid();
      const other = yield ctx.getValueFromInstance('other', 'k');
      ctx.setValue('seen', String(now));
      ctx.setCustomStatus('halfway');
      yield ctx.scheduleTimer(1);
      ctx.clearValue('seen');
      ctx.setValue('guid', guid);
      ctx.resetCustomStatus();
      return { now, guid, other, kv: ctx.getKvAllValues(), status: ctx.getCustomStatus() };
    },
    async async(ctx) {
      const now = await ctx.utcNow();
      const guid = await ctx.newGuid();
      const other = await ctx.getValueFromInstance('other', 'k');
      ctx.setValue('seen', String(now));
      ctx.setCustomStatus('halfway');
      await ctx.scheduleTimer(1);
      ctx.clearValue('seen');
      ctx.setValue('guid', guid);
      ctx.resetCustomStatus();
      return { now, guid, other, kv: ctx.getKvAllValues(), status: ctx.getCustomStatus() };
    },
  },
  {
    name: 'an uncaught activity failure fails both the same way',
    input: null,
    expect: 'failed:application:',
    *gen(ctx) {
      yield ctx.scheduleActivity('Ok');
      yield ctx.scheduleActivity('FailHard');
    },
    async async(ctx) {
      await ctx.scheduleActivity('Ok');
      await ctx.scheduleActivity('FailHard');
    },
  },
  {
    name: 'helpers: yield* in the generator, async functions with extra awaits in the async form',
    input: 3,
    expect: 'completed:',
    *gen(ctx, n) {
      function* step(i: number): Gen {
        const r = yield ctx.scheduleActivity('Step', i);
        ctx.traceInfo(`step ${i}`);
        return r;
      }
      const out = [];
      for (let i = 0; i < n; i++) out.push(yield* step(i));
      return out;
    },
    async async(ctx, n) {
      async function step(i: number): Promise<unknown> {
        await null;
        const r = await ctx.scheduleActivity('Step', i);
        await Promise.resolve();
        ctx.traceInfo(`step ${i}`);
        return r;
      }
      const out = [];
      for (let i = 0; i < n; i++) out.push(await step(i));
      return out;
    },
  },
  {
    name: 'Promise.all over ctx tasks writes what ctx.all writes',
    input: 4,
    expect: 'completed:',
    *gen(ctx, n) {
      const results = yield ctx.all(Array.from({ length: n }, (_, i) => ctx.scheduleActivity('P', i)));
      return results.map((r: { ok: unknown }) => r.ok);
    },
    async async(ctx, n) {
      return Promise.all(Array.from({ length: n }, (_, i) => ctx.scheduleActivity('P', i)));
    },
  },
];

for (const scenario of scenarios) {
  test(`differential: ${scenario.name}`, async () => {
    const gen: Handlers = { S: scenario.gen, Child: scenario.gen };
    const async: Handlers = { S: scenario.async };
    for (const seed of [1, 2, 3]) {
      for (const maxBatch of [1, 3]) {
        const label = `${scenario.name} seed=${seed} batch<=${maxBatch}`;
        const g = await runToEnd(gen, 'S', scenario.input, { seed, maxBatch });
        const a = await runToEnd(async, 'S', scenario.input, { seed, maxBatch });
        assert.ok(g.outcome.startsWith(scenario.expect), `${label}: ${g.outcome}`);
        assertSameHistory(g, a, label);
        await assertReplays(g, async, `${label} (async replays the generator's history)`);
        await assertReplays(a, gen, `${label} (generator replays the async history)`);
      }
    }
  });
}

test('differential: an async history replays in one turn to the same end', async () => {
  for (const scenario of scenarios.filter((s) => !s.name.startsWith('continue'))) {
    const a = await runToEnd({ S: scenario.async }, 'S', scenario.input, { seed: 5, maxBatch: 2 });
    assert.equal(firstLine(await replayInOneTurn(a, { S: scenario.async })), firstLine(a.outcome), scenario.name);
    assert.equal(
      firstLine(await replayInOneTurn(a, { S: scenario.gen })),
      firstLine(a.outcome),
      `${scenario.name} (generator)`,
    );
  }
});
