/**
 * Rate limits (token buckets of flow.sql), on the PostgreSQL server and on PGlite.
 *
 * Window bound: four fetch loops race for 45 activities of a key limited to 20 per second with a
 * burst of 5. Each dispatch is known to have happened between the start and the return of its
 * fetch call; for every pair of dispatches i, j the dispatches that certainly happened inside
 * [start of i, return of j] must number at most burst + rate x (that span): a violation found
 * this way is a real one. The drain must also take at least (45 - burst) / rate seconds.
 *
 * Wake-ups: one idle runtime runs a fan-out of activities limited to 10 per second; each waiting
 * activity is deferred to its token's time and announced, so the runtime wakes for it without
 * busy-waiting: the fan-out takes about the rate's time (well under the 10 s safety fetch), its
 * fetch calls stay far below what a busy loop would make, and the liveness guard fails the file
 * if anything is found by the safety fetch.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { performance } from 'node:perf_hooks';
import { Client } from '../../src/client/client';
import { Runtime } from '../../src/runtime/runtime';
import type { ActivityExecuteItem } from '../../src/core/types';
import type { Provider } from '../../src/provider/contract';
import { FLOW_STORE_KINDS, openFlowStore, sleep, type FlowStore } from './flow-stores';

const RATE = 20;
const BURST = 5;
const ITEMS = 45;
const LOOPS = 4;
const FETCH = { lockTimeoutMs: 30_000, tagFilter: { mode: 'defaultOnly' as const } };

function activityItem(instance: string, name: string): ActivityExecuteItem {
  return { type: 'ActivityExecute', instance, executionId: 1, id: 1, name, input: '""', sessionId: null, tag: null };
}

/** The largest count of dispatches certainly inside a span, minus the bucket's bound for it. */
function worstExcess(dispatches: Array<{ start: number; end: number }>): {
  excess: number;
  count: number;
  spanMs: number;
} {
  const sorted = [...dispatches].sort((a, b) => a.start - b.start);
  let worst = { excess: -Infinity, count: 0, spanMs: 0 };
  for (let i = 0; i < sorted.length; i += 1) {
    for (let j = i; j < sorted.length; j += 1) {
      const from = sorted[i].start;
      const to = Math.max(sorted[i].end, sorted[j].end);
      const count = sorted.filter((d) => d.start >= from && d.end <= to).length;
      // +1 ms: the database clock the bucket runs on counts whole milliseconds.
      const excess = count - (BURST + (RATE * (to - from + 1)) / 1000);
      if (excess > worst.excess) worst = { excess, count, spanMs: to - from };
    }
  }
  return worst;
}

for (const kind of FLOW_STORE_KINDS) {
  describe(`flow rates on ${kind}`, () => {
    let store: FlowStore;
    before(async () => {
      store = await openFlowStore(kind);
    });
    after(async () => {
      await store.close();
    });

    it(`dispatches of a key stay within burst + rate x W in every window (${RATE}/s, burst ${BURST})`, async () => {
      const providers: Provider[] = [];
      for (let i = 0; i < LOOPS; i += 1) providers.push(await store.openProvider());
      const client = new Client(providers[0]);
      await client.setFlowLimit('activity:Rated', { perSecond: RATE, burst: BURST });
      try {
        for (let i = 0; i < ITEMS; i += 1) await providers[0].enqueueWorkerWork(activityItem(`rated-${i}`, 'Rated'));
        const dispatches: Array<{ start: number; end: number }> = [];
        const begun = performance.now();
        await Promise.all(
          providers.map(async (provider) => {
            while (dispatches.length < ITEMS) {
              const start = performance.now();
              const lease = await provider.fetchWorkItem(FETCH);
              const end = performance.now();
              if (lease === null) {
                await sleep(2);
                continue;
              }
              dispatches.push({ start, end });
              await provider.ackWorkItem(lease.lockToken, null);
            }
          }),
        );
        const elapsedMs = performance.now() - begun;
        const worst = worstExcess(dispatches);
        console.log(
          `${kind}: ${ITEMS} dispatches in ${elapsedMs.toFixed(0)} ms; worst window: ${worst.count} dispatches in ` +
            `${worst.spanMs.toFixed(1)} ms, bound ${(BURST + (RATE * (worst.spanMs + 1)) / 1000).toFixed(2)}`,
        );
        assert.equal(dispatches.length, ITEMS);
        assert.ok(worst.excess <= 0, `a window held ${worst.count} dispatches in ${worst.spanMs} ms`);
        assert.ok(elapsedMs >= ((ITEMS - BURST) / RATE) * 1000 - 5, `drained in ${elapsedMs} ms, faster than the rate`);
      } finally {
        await client.deleteFlowLimit('activity:Rated');
      }
    });

    it('an idle runtime wakes at each token time, announced, without polling', async () => {
      let fetches = 0;
      const base = await store.openProvider();
      const counted = new Proxy(base, {
        get(target, property, receiver) {
          const value: unknown = Reflect.get(target, property, receiver);
          if ((property === 'fetchWorkItem' || property === 'fetchWorkItems') && typeof value === 'function') {
            return (...args: unknown[]) => {
              fetches += 1;
              return (value as (...a: unknown[]) => unknown).apply(target, args);
            };
          }
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
      const client = new Client(await store.openProvider());
      await client.setFlowLimit('activity:Paced', { perSecond: 10 });
      const runtime = new Runtime(counted, { logLevel: 'warn', workerConcurrency: 4 });
      runtime.registerActivity('Paced', (_ctx, input: number) => input);
      runtime.registerOrchestration('PacedFan', function* (ctx, count: number) {
        const tasks = Array.from({ length: count }, (_, i) => ctx.scheduleActivity('Paced', i));
        return ((yield ctx.all(tasks)) as unknown[]).length;
      });
      await runtime.start();
      try {
        const started = performance.now();
        await client.startOrchestration('paced', 'PacedFan', 12);
        const result = await client.waitForOrchestration('paced', 30_000);
        const elapsedMs = performance.now() - started;
        assert.equal(result.status, 'Completed');
        assert.equal(result.output, 12);
        console.log(`${kind}: 12 activities at 10/s in ${elapsedMs.toFixed(0)} ms with ${fetches} fetch calls`);
        assert.ok(elapsedMs >= 1_000, `12 activities at 10/s, burst 1, took only ${elapsedMs} ms`);
        assert.ok(elapsedMs < 4_000, `took ${elapsedMs} ms: a token time was missed`);
        // Woken per announced token time, each of the 4 slots fetches a few times per activity
        // (the wake-up, the refetch after an item, a lost race); a loop busy-waiting for tokens
        // (every 10 ms over ~1.1 s, 4 slots) would make several hundred calls.
        assert.ok(fetches <= 12 * 8, `${fetches} fetch calls for 12 activities`);
      } finally {
        await runtime.shutdown(0);
        await client.deleteFlowLimit('activity:Paced');
      }
    });
  });
}
