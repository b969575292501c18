/**
 * Concurrency limits (flow.sql), on the PostgreSQL server and on PGlite.
 *
 * Exactness: three runtimes of four activity slots each run fan-outs of activities under two
 * limits (the default key `activity:<name>` and an explicit `withFlowKey`); every activity counts
 * itself in and out, and the largest overlap seen per key must not exceed its limit (while a
 * control key without a limit, run in the same fan-outs, does overlap beyond it: the workload
 * can exceed a limit). After the drain every key has 0 permits in use, 0 parked activities, and
 * flow_limits.active equals the rows holding permits at every sampled instant.
 *
 * Release paths, driven deterministically through the provider and the test clock: a lease that
 * expires keeps its permit (the item is fetched again, the first holder's late ack fails and
 * gives nothing back), an ack hands the permit to the oldest parked item, deleting an instance
 * whose activity a worker holds hands its permit on, a cancelled (raced-out) parked activity
 * leaves the line, and a paused key (maxActive 0) starts when raised.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '../../src/client/client';
import { Runtime } from '../../src/runtime/runtime';
import type { ActivityExecuteItem } from '../../src/core/types';
import type { AsyncOrchestrationContext } from '../../src/core/async-context';
import type { ProcedureProvider } from '../../src/store/procedure-provider';
import { isLockLost } from '../../src/provider/errors';
import { FLOW_STORE_KINDS, eventually, openFlowStore, permitCounts, sleep, type FlowStore } from './flow-stores';

const RUNTIMES = 3;
const SLOTS = 4;
const LIMITED = 2;
const TENANT = 1;
const FANS = 4;
const PER_FAN = 10;

/** Counts running activities per key and remembers the largest count. */
class Overlap {
  private readonly running = new Map<string, number>();
  readonly max = new Map<string, number>();
  async run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const now = (this.running.get(key) ?? 0) + 1;
    this.running.set(key, now);
    this.max.set(key, Math.max(this.max.get(key) ?? 0, now));
    try {
      return await work();
    } finally {
      this.running.set(key, (this.running.get(key) ?? 1) - 1);
    }
  }
}

function activityItem(instance: string, id: number, name: string, flowKey?: string): ActivityExecuteItem {
  return {
    type: 'ActivityExecute',
    instance,
    executionId: 1,
    id,
    name,
    input: '""',
    sessionId: null,
    tag: null,
    ...(flowKey === undefined ? {} : { flowKey }),
  };
}

const FETCH = { lockTimeoutMs: 30_000, tagFilter: { mode: 'defaultOnly' as const } };

for (const kind of FLOW_STORE_KINDS) {
  describe(`flow limits on ${kind}`, () => {
    let store: FlowStore;
    before(async () => {
      store = await openFlowStore(kind);
    });
    after(async () => {
      await store.close();
    });

    it(`${RUNTIMES} runtimes x ${SLOTS} slots never run more activities of a key than its limit`, async () => {
      const overlap = new Overlap();
      const client = new Client(await store.openProvider());
      await client.setFlowLimit('activity:Limited', { maxActive: LIMITED });
      await client.setFlowLimit('tenant-42', { maxActive: TENANT });
      const runtimes: Runtime[] = [];
      for (let r = 0; r < RUNTIMES; r += 1) {
        const runtime = new Runtime(await store.openProvider(), {
          logLevel: 'warn',
          workerConcurrency: SLOTS,
          orchestrationConcurrency: 2,
        });
        const busy = (key: string) => (_ctx: unknown, input: number) =>
          overlap.run(key, async () => {
            await sleep(3 + (input % 5) * 2);
            return input;
          });
        runtime.registerActivity('Limited', busy('activity:Limited'));
        runtime.registerActivity('ForTenant', busy('tenant-42'));
        runtime.registerActivity('Free', busy('free'));
        runtime.registerOrchestration('Fan', function* (ctx, count: number) {
          const tasks = [];
          for (let i = 0; i < count; i += 1) {
            tasks.push(ctx.scheduleActivity('Limited', i));
            tasks.push(ctx.scheduleActivity('ForTenant', i).withFlowKey('tenant-42'));
            tasks.push(ctx.scheduleActivity('Free', i));
          }
          const results = (yield ctx.all(tasks)) as unknown[];
          return results.length;
        });
        await runtime.start();
        runtimes.push(runtime);
      }
      try {
        const sampled: string[] = [];
        let sampling = true;
        const sampler = (async () => {
          while (sampling) {
            for (const c of await permitCounts(store)) {
              if (c.active !== c.holding) sampled.push(`${c.key}: active ${c.active}, rows ${c.holding}`);
            }
            await sleep(10);
          }
        })();
        const ids = Array.from({ length: FANS }, (_, i) => `fan-${i}`);
        await Promise.all(ids.map((id) => client.startOrchestration(id, 'Fan', PER_FAN)));
        for (const id of ids) {
          const result = await client.waitForOrchestration(id, 60_000);
          assert.equal(result.status, 'Completed', `${id}: ${JSON.stringify(result)}`);
          assert.equal(result.output, PER_FAN * 3);
        }
        sampling = false;
        await sampler;

        console.log(`${kind}: max overlap ${JSON.stringify(Object.fromEntries(overlap.max))}`);
        assert.ok(
          overlap.max.get('activity:Limited')! <= LIMITED,
          `Limited overlapped ${overlap.max.get('activity:Limited')}`,
        );
        assert.ok(overlap.max.get('tenant-42')! <= TENANT, `tenant-42 overlapped ${overlap.max.get('tenant-42')}`);
        assert.equal(overlap.max.get('activity:Limited'), LIMITED, 'the limit was reached');
        assert.ok(overlap.max.get('free')! > LIMITED, 'without a limit the same workload overlaps beyond it');
        assert.deepEqual(sampled, [], 'flow_limits.active equals the rows holding permits');
        const limits = await client.getFlowLimits();
        assert.deepEqual(
          limits.map((l) => [l.flowKey, l.maxActive, l.active, l.parked]),
          [
            ['activity:Limited', LIMITED, 0, 0],
            ['tenant-42', TENANT, 0, 0],
          ],
        );
        assert.deepEqual(
          (await permitCounts(store)).map((c) => [c.key, c.active, c.holding, c.parked]),
          [
            ['activity:Limited', 0, 0, 0],
            ['tenant-42', 0, 0, 0],
          ],
        );
      } finally {
        await Promise.all(runtimes.map((r) => r.shutdown(0)));
        await client.deleteFlowLimit('activity:Limited');
        await client.deleteFlowLimit('tenant-42');
      }
    });

    it('an expired lease keeps its permit; acks and deletions hand it to the oldest parked item', async () => {
      const provider = await store.openProvider();
      const client = new Client(provider);
      await client.setFlowLimit('activity:Held', { maxActive: 1 });
      try {
        await provider.enqueueWorkerWork(activityItem('held-a', 1, 'Held'));
        await provider.enqueueWorkerWork(activityItem('held-b', 1, 'Held'));
        await provider.enqueueWorkerWork(activityItem('held-c', 1, 'Held'));
        assert.deepEqual(await counts(client), [1, 2]);

        const first = await provider.fetchWorkItem(FETCH);
        assert.equal(first?.item.instance, 'held-a');
        assert.equal(await provider.fetchWorkItem(FETCH), null, 'parked items are not fetchable');

        // The holder never acks; its lease runs out and the item is delivered again, same permit.
        await store.advanceClock(31_000);
        const again = await provider.fetchWorkItem(FETCH);
        assert.equal(again?.item.instance, 'held-a');
        assert.equal(again?.attemptCount, 2);
        assert.deepEqual(await counts(client), [1, 2]);
        await assert.rejects(provider.ackWorkItem(first.lockToken, null), isLockLost);
        assert.deepEqual(await counts(client), [1, 2], "the late holder's ack gives nothing back");

        // The second holder's ack hands the permit to the oldest parked item.
        await provider.ackWorkItem(again.lockToken, null);
        assert.deepEqual(await counts(client), [1, 1]);
        const second = await provider.fetchWorkItem(FETCH);
        assert.equal(second?.item.instance, 'held-b');

        // Deleting an instance whose activity a worker holds hands its permit on.
        await provider.deleteInstances(['held-b'], { force: true });
        assert.deepEqual(await counts(client), [1, 0]);
        await assert.rejects(provider.ackWorkItem(second.lockToken, null), isLockLost);
        const third = await provider.fetchWorkItem(FETCH);
        assert.equal(third?.item.instance, 'held-c');
        await provider.ackWorkItem(third.lockToken, null);
        assert.deepEqual(await counts(client), [0, 0]);
        assert.deepEqual(
          (await permitCounts(store)).map((c) => [c.active, c.holding, c.parked]),
          [[0, 0, 0]],
        );
      } finally {
        await client.deleteFlowLimit('activity:Held');
      }
    });

    it('a paused key parks its activities, a raced-out parked activity leaves the line, raising the limit starts the rest', async () => {
      const client = new Client(await store.openProvider());
      await client.setFlowLimit('activity:Paused', { maxActive: 0 });
      const runtime = new Runtime(await store.openProvider(), { logLevel: 'warn' });
      runtime.registerActivity('Paused', (_ctx, input: string) => input);
      // Raced against an event the test raises once both activities are parked: a timer could
      // fire before the second one parks on a loaded machine, and the count of two never be seen.
      runtime.registerOrchestration('RaceEvent', function* (ctx) {
        const winner = (yield ctx.race(ctx.scheduleActivity('Paused', 'late'), ctx.waitForEvent('go'))) as {
          index: number;
        };
        return winner.index;
      });
      runtime.registerOrchestration('WaitFor', function* (ctx, input: string) {
        return yield ctx.scheduleActivity('Paused', input);
      });
      await runtime.start();
      try {
        await client.startOrchestration('race', 'RaceEvent', null);
        await client.startOrchestration('wait', 'WaitFor', 'done');
        await eventually('two parked activities', async () => ((await counts(client))[1] === 2 ? true : undefined));
        await client.raiseEvent('race', 'go', null);
        const raced = await client.waitForOrchestration('race', 30_000);
        assert.equal(raced.status, 'Completed');
        assert.equal(raced.output, 1, 'the event won');
        assert.deepEqual(await counts(client), [0, 1], 'the cancelled activity left the line');

        await client.setFlowLimit('activity:Paused', { maxActive: 1 });
        const waited = await client.waitForOrchestration('wait', 30_000);
        assert.equal(waited.status, 'Completed');
        assert.equal(waited.output, 'done');
        assert.deepEqual(await counts(client), [0, 0]);
      } finally {
        await runtime.shutdown(0);
        await client.deleteFlowLimit('activity:Paused');
      }
    });

    it('async orchestrations route withFlowKey too, and replay the key without a mismatch', async () => {
      const provider = await store.openProvider();
      const client = new Client(provider);
      await client.setFlowLimit('tenant-async', { maxActive: 0 });
      const runtime = new Runtime(await store.openProvider(), { logLevel: 'warn', asyncOrchestrationGuards: true });
      runtime.registerActivity('Keyed', (_ctx, input: number) => input * 2);
      runtime.registerOrchestration('AsyncKeyed', async (ctx: AsyncOrchestrationContext, input: number) => {
        const first = await ctx.scheduleActivity<number>('Keyed', input).withFlowKey('tenant-async');
        const second = await ctx.scheduleActivity<number>('Keyed', first).withFlowKey('tenant-async');
        return second;
      });
      await runtime.start();
      try {
        await client.startOrchestration('async-keyed', 'AsyncKeyed', 5);
        await eventually('the first activity parked under tenant-async', async () => {
          const [limit] = await client.getFlowLimits();
          return limit.parked === 1 ? true : undefined;
        });
        await client.setFlowLimit('tenant-async', { maxActive: 1 });
        const result = await client.waitForOrchestration('async-keyed', 30_000);
        assert.equal(result.status, 'Completed', JSON.stringify(result));
        assert.equal(result.output, 20);
        // The stored events (the Client's history view keeps duroxide's fields, without keys).
        const history = await provider.readHistory('async-keyed', 1);
        const scheduled = history.flatMap((e) => (e.kind === 'ActivityScheduled' ? [e] : []));
        assert.deepEqual(
          scheduled.map((e) => e.flowKey),
          ['tenant-async', 'tenant-async'],
        );
      } finally {
        await runtime.shutdown(0);
        await client.deleteFlowLimit('tenant-async');
      }
    });

    it('retry activities take withFlowKey and withPriority for every attempt (generator and async)', async () => {
      const provider = await store.openProvider();
      const client = new Client(provider);
      await client.setFlowLimit('tenant-retry', { maxActive: 0 });
      const runtime = new Runtime(await store.openProvider(), { logLevel: 'error', asyncOrchestrationGuards: true });
      const attempts = new Map<number, number>();
      runtime.registerActivity('FlakyKeyed', (_ctx, input: number) => {
        const attempt = (attempts.get(input) ?? 0) + 1;
        attempts.set(input, attempt);
        if (attempt === 1) throw new Error('first attempt fails');
        return input * 2;
      });
      runtime.registerOrchestration('RetryKeyed', function* (ctx, input: number) {
        return yield ctx
          .scheduleActivityWithRetry('FlakyKeyed', input, { maxAttempts: 2 })
          .withFlowKey('tenant-retry')
          .withPriority(3);
      });
      runtime.registerOrchestration('AsyncRetryKeyed', async (ctx: AsyncOrchestrationContext, input: number) =>
        ctx
          .scheduleActivityWithRetry<number>('FlakyKeyed', input, { maxAttempts: 2 })
          .withFlowKey('tenant-retry')
          .withPriority(3),
      );
      await runtime.start();
      try {
        await client.startOrchestration('retry-keyed', 'RetryKeyed', 5);
        await client.startOrchestration('retry-keyed-async', 'AsyncRetryKeyed', 7);
        await eventually('both first attempts parked under tenant-retry', async () =>
          (await counts(client))[1] === 2 ? true : undefined,
        );
        await client.setFlowLimit('tenant-retry', { maxActive: 1 });
        for (const [id, output] of [
          ['retry-keyed', 10],
          ['retry-keyed-async', 14],
        ] as const) {
          const result = await client.waitForOrchestration(id, 30_000);
          assert.equal(result.status, 'Completed', JSON.stringify(result));
          assert.equal(result.output, output);
          const history = await provider.readHistory(id, 1);
          assert.deepEqual(
            history.flatMap((e) => (e.kind === 'ActivityScheduled' ? [[e.flowKey, e.priority]] : [])),
            [
              ['tenant-retry', 3],
              ['tenant-retry', 3],
            ],
            id,
          );
        }
        assert.deepEqual(await counts(client), [0, 0]);
      } finally {
        await runtime.shutdown(0);
        await client.deleteFlowLimit('tenant-retry');
      }
    });

    it('deleting a limit starts its parked activities', async () => {
      const provider: ProcedureProvider = await store.openProvider();
      const client = new Client(provider);
      await client.setFlowLimit('activity:Gone', { maxActive: 0 });
      await provider.enqueueWorkerWork(activityItem('gone-a', 1, 'Gone'));
      await provider.enqueueWorkerWork(activityItem('gone-b', 1, 'Gone'));
      assert.equal(await provider.fetchWorkItem(FETCH), null);
      assert.equal(await client.deleteFlowLimit('activity:Gone'), true);
      assert.equal(await client.deleteFlowLimit('activity:Gone'), false);
      const leases = await provider.fetchWorkItems({ ...FETCH, maxItems: 10 });
      assert.deepEqual(
        leases.map((l) => l.item.instance),
        ['gone-a', 'gone-b'],
      );
      await Promise.all(leases.map((l) => provider.ackWorkItem(l.lockToken, null)));
    });
  });
}

/** [active, parked] of the only limit. */
async function counts(client: Client): Promise<[number, number]> {
  const limits = await client.getFlowLimits();
  assert.equal(limits.length, 1, JSON.stringify(limits));
  return [limits[0].active, limits[0].parked];
}
