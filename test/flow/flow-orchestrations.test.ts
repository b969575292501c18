/**
 * Orchestration flow keys (flow.sql): `startOrchestration(..., { flowKey })` under
 * `setFlowLimit(key, { maxActive })`, through the public API, on the PostgreSQL server and on
 * PGlite.
 *
 * Exactness: three runtimes of two turn slots each run instances started under a limited key and
 * a control group started without one. Each instance counts itself in (an activity in its first
 * execution), continues as new, and counts itself out (an activity in its second execution), so the
 * count spans a continue-as-new. The largest count seen under the key must equal its limit and not
 * exceed it, while the control group overlaps beyond it; flow_limits.active equals the permit rows
 * at every sampled instant; after the drain nothing holds a permit or waits.
 *
 * Continue-as-new keeps the permit, and termination and deletion of running and parked instances
 * give back exactly what they held (a parked one nothing): driven step by step through the Client.
 * Children scheduled `.withFlowKey(key)` by generator and async parents count against the key too.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '../../src/client/client';
import { Runtime } from '../../src/runtime/runtime';
import { FLOW_STORE_KINDS, eventually, openFlowStore, sleep, type FlowStore } from './flow-stores';

const RUNTIMES = 3;
const TURN_SLOTS = 2;
const LIMIT = 2;
const LIMITED = 10;
const FREE = 6;

/** Per key: flow_limits.active, the instance permit rows, and the parked starts. */
async function instancePermits(
  store: FlowStore,
  key: string,
): Promise<{ active: number; held: number; parked: number }> {
  const [row] = await store.query(
    `SELECT (SELECT f.active FROM \${schema}.flow_limits f WHERE f.flow_key = $1) AS active,
            (SELECT count(*) FROM \${schema}.flow_instance_permits h WHERE h.flow_key = $1) AS held,
            (SELECT count(*) FROM \${schema}.flow_parked_starts s WHERE s.flow_key = $1) AS parked`,
    [key],
  );
  return { active: Number(row.active), held: Number(row.held), parked: Number(row.parked) };
}

/** [active, parked, activeInstances, parkedInstances] of `key` as getFlowLimits reports them. */
async function reported(client: Client, key: string): Promise<number[]> {
  const limit = (await client.getFlowLimits()).find((l) => l.flowKey === key);
  assert.ok(limit, `limit ${key}`);
  return [limit.active, limit.parked, limit.activeInstances, limit.parkedInstances];
}

async function statusOf(client: Client, id: string): Promise<string> {
  return (await client.getStatus(id)).status;
}

for (const kind of FLOW_STORE_KINDS) {
  describe(`orchestration flow keys on ${kind}`, () => {
    let store: FlowStore;
    before(async () => {
      store = await openFlowStore(kind);
    });
    after(async () => {
      await store.close();
    });

    it(`${RUNTIMES} runtimes x ${TURN_SLOTS} turn slots never run more instances of a key than its limit`, async () => {
      const running = new Map<string, number>();
      const max = new Map<string, number>();
      const client = new Client(await store.openProvider());
      await client.setFlowLimit('orch:batch', { maxActive: LIMIT });
      const runtimes: Runtime[] = [];
      for (let r = 0; r < RUNTIMES; r += 1) {
        const runtime = new Runtime(await store.openProvider(), {
          logLevel: 'warn',
          workerConcurrency: 4,
          orchestrationConcurrency: TURN_SLOTS,
        });
        runtime.registerActivity('Enter', async (_ctx, key: string) => {
          const now = (running.get(key) ?? 0) + 1;
          running.set(key, now);
          max.set(key, Math.max(max.get(key) ?? 0, now));
          await sleep(5);
        });
        runtime.registerActivity('Leave', async (_ctx, key: string) => {
          running.set(key, (running.get(key) ?? 1) - 1);
        });
        runtime.registerActivity('Work', async (_ctx, ms: number) => sleep(ms));
        runtime.registerOrchestration('Job', function* (ctx, input: { key: string; round: number; ms: number }) {
          if (input.round === 0) {
            yield ctx.scheduleActivity('Enter', input.key);
            yield ctx.scheduleActivity('Work', input.ms);
            yield ctx.continueAsNew({ ...input, round: 1 });
          }
          yield ctx.scheduleActivity('Work', input.ms);
          yield ctx.scheduleActivity('Leave', input.key);
          return ctx.executionId;
        });
        await runtime.start();
        runtimes.push(runtime);
      }
      let sampling = true;
      try {
        const drift: string[] = [];
        const sampler = (async () => {
          while (sampling) {
            const counts = await instancePermits(store, 'orch:batch');
            if (counts.active !== counts.held) drift.push(`active ${counts.active}, permit rows ${counts.held}`);
            await sleep(10);
          }
        })();
        const limited = Array.from({ length: LIMITED }, (_, i) => `batch-${i}`);
        const free = Array.from({ length: FREE }, (_, i) => `free-${i}`);
        await Promise.all([
          ...limited.map((id, i) =>
            client.startOrchestration(
              id,
              'Job',
              { key: 'batch', round: 0, ms: 5 + (i % 4) * 5 },
              { flowKey: 'orch:batch' },
            ),
          ),
          ...free.map((id, i) => client.startOrchestration(id, 'Job', { key: 'free', round: 0, ms: 20 + (i % 3) * 5 })),
        ]);
        assert.ok((await reported(client, 'orch:batch'))[3] > 0, 'starts waited for permits');
        for (const id of [...limited, ...free]) {
          const result = await client.waitForOrchestration(id, 60_000);
          assert.equal(result.status, 'Completed', `${id}: ${JSON.stringify(result)}`);
          assert.equal(result.output, 2, 'the count spanned a continue-as-new');
        }
        sampling = false;
        await sampler;

        console.log(`${kind}: max running instances ${JSON.stringify(Object.fromEntries(max))}`);
        assert.ok(max.get('batch')! <= LIMIT, `batch overlapped ${max.get('batch')}`);
        assert.equal(max.get('batch'), LIMIT, 'the limit was reached');
        assert.ok(max.get('free')! > LIMIT, 'without a flow key the same workload overlaps beyond the limit');
        assert.deepEqual(drift, [], 'flow_limits.active equals the permit rows');
        assert.deepEqual(await reported(client, 'orch:batch'), [0, 0, 0, 0]);
        assert.deepEqual(await instancePermits(store, 'orch:batch'), { active: 0, held: 0, parked: 0 });
      } finally {
        sampling = false;
        await Promise.all(runtimes.map((r) => r.shutdown(0)));
        await client.deleteFlowLimit('orch:batch');
      }
    });

    it('continue-as-new keeps the permit; terminating and deleting give back exactly what was held', async () => {
      const client = new Client(await store.openProvider());
      await client.setFlowLimit('orch:one', { maxActive: 1 });
      const runtime = new Runtime(await store.openProvider(), { logLevel: 'warn' });
      runtime.registerOrchestration('Rounds', function* (ctx, round: number) {
        ctx.setCustomStatus(`round-${round}`);
        yield ctx.waitForEvent('go');
        if (round < 2) yield ctx.continueAsNew(round + 1);
        return round;
      });
      runtime.registerOrchestration('Quick', function* () {
        return 'quick';
      });
      await runtime.start();
      const waitingIn = (id: string, round: number) =>
        eventually(`${id} in round ${round}`, async () =>
          (await client.getStatus(id)).customStatus === `round-${round}` ? true : undefined,
        );
      const flowKey = 'orch:one';
      try {
        await client.startOrchestration('can-a', 'Rounds', 0, { flowKey });
        await client.startOrchestration('can-b', 'Quick', null, { flowKey });
        for (let round = 0; round <= 2; round += 1) {
          await waitingIn('can-a', round);
          assert.equal(await statusOf(client, 'can-b'), 'Pending', `round ${round}: can-b waits`);
          assert.deepEqual(await reported(client, flowKey), [1, 1, 1, 1], `round ${round}`);
          await client.raiseEvent('can-a', 'go');
        }
        assert.equal((await client.waitForOrchestration('can-a')).output, 2);
        assert.equal((await client.waitForOrchestration('can-b')).output, 'quick', 'the end of can-a admitted can-b');
        assert.deepEqual(await reported(client, flowKey), [0, 0, 0, 0]);

        // Running: t-a. Parked: t-b, t-c, t-d.
        await client.startOrchestration('t-a', 'Rounds', 2, { flowKey });
        await waitingIn('t-a', 2);
        for (const id of ['t-b', 't-c', 't-d']) await client.startOrchestration(id, 'Quick', null, { flowKey });
        assert.deepEqual(await reported(client, flowKey), [1, 3, 1, 3]);

        await client.cancelInstance('t-b', 'not needed');
        const cancelled = await client.waitForOrchestration('t-b');
        assert.equal(cancelled.status, 'Failed');
        assert.match(cancelled.error ?? '', /canceled: not needed/);
        assert.equal(await statusOf(client, 't-a'), 'Running', 'the cancelled parked instance took no permit');
        assert.deepEqual(await reported(client, flowKey), [1, 2, 1, 2]);

        const deleted = await client.deleteInstance('t-c');
        assert.equal(deleted.instancesDeleted, 1);
        assert.equal(await statusOf(client, 't-c'), 'NotFound');
        assert.deepEqual(await reported(client, flowKey), [1, 1, 1, 1]);

        await client.cancelInstance('t-a', 'stop');
        assert.equal((await client.waitForOrchestration('t-a')).status, 'Failed');
        assert.equal((await client.waitForOrchestration('t-d')).output, 'quick', 'the cancelled instance handed on');
        assert.deepEqual(await reported(client, flowKey), [0, 0, 0, 0]);

        // Deleting a running instance (force) hands its permit to the oldest parked start.
        await client.startOrchestration('d-a', 'Rounds', 2, { flowKey });
        await waitingIn('d-a', 2);
        await client.startOrchestration('d-b', 'Quick', null, { flowKey });
        assert.equal(await statusOf(client, 'd-b'), 'Pending');
        await client.deleteInstance('d-a', true);
        assert.equal((await client.waitForOrchestration('d-b')).output, 'quick');
        assert.deepEqual(await reported(client, flowKey), [0, 0, 0, 0]);
        assert.deepEqual(await instancePermits(store, flowKey), { active: 0, held: 0, parked: 0 });
      } finally {
        await runtime.shutdown(0);
        await client.deleteFlowLimit(flowKey);
      }
    });
    it('detached starts given withFlowKey (generator and async) park behind the key, at their withPriority level', async () => {
      const flowKey = 'orch:detached';
      const client = new Client(await store.openProvider());
      await client.setFlowLimit(flowKey, { maxActive: 1 });
      const runtime = new Runtime(await store.openProvider(), { logLevel: 'warn', orchestrationConcurrency: 4 });
      runtime.registerOrchestration('Report', function* (ctx) {
        return yield ctx.waitForEvent('finish');
      });
      runtime.registerOrchestration('Launcher', function* (ctx) {
        yield ctx.startOrchestration('Report', 'rep-a', null).withFlowKey(flowKey);
        yield ctx.startOrchestration('Report', 'rep-b', null).withFlowKey(flowKey).withPriority(5);
        return 'launched';
      });
      runtime.registerOrchestration('AsyncLauncher', async (ctx) => {
        await ctx.startOrchestration('Report', 'rep-c', null).withFlowKey(flowKey);
        return 'launched';
      });
      await runtime.start();
      try {
        await client.startOrchestration('launcher', 'Launcher');
        await client.waitForOrchestration('launcher', 30_000);
        await client.startOrchestration('async-launcher', 'AsyncLauncher');
        await client.waitForOrchestration('async-launcher', 30_000);
        await eventually('rep-a running', async () =>
          (await statusOf(client, 'rep-a')) === 'Running' ? true : undefined,
        );
        assert.equal(await statusOf(client, 'rep-b'), 'Pending');
        assert.equal(await statusOf(client, 'rep-c'), 'Pending');
        assert.deepEqual(await reported(client, flowKey), [1, 2, 1, 2]);
        await client.raiseEvent('rep-a', 'finish', 'a');
        await eventually('rep-b running', async () =>
          (await statusOf(client, 'rep-b')) === 'Running' ? true : undefined,
        );
        assert.equal((await client.getInstanceInfo('rep-b')).priority, 5, 'admitted at its own level');
        assert.equal(await statusOf(client, 'rep-c'), 'Pending');
        await client.raiseEvent('rep-b', 'finish', 'b');
        await eventually('rep-c running', async () =>
          (await statusOf(client, 'rep-c')) === 'Running' ? true : undefined,
        );
        assert.equal((await client.getInstanceInfo('rep-c')).priority ?? 0, 0);
        await client.raiseEvent('rep-c', 'finish', 'c');
        assert.equal((await client.waitForOrchestration('rep-c', 30_000)).output, 'c');
        assert.deepEqual(await reported(client, flowKey), [0, 0, 0, 0]);
      } finally {
        await runtime.shutdown(0);
        await client.deleteFlowLimit(flowKey);
      }
    });

    it('a child given a key with a rate limit fails its parent with the store refusal, and starts nothing', async () => {
      const flowKey = 'orch:rated';
      const client = new Client(await store.openProvider());
      await client.setFlowLimit(flowKey, { perSecond: 1, burst: 1 });
      const runtime = new Runtime(await store.openProvider(), { logLevel: 'error' });
      runtime.registerOrchestration('RatedChild', function* () {
        return 'child ran';
      });
      runtime.registerOrchestration('RatedParent', function* (ctx) {
        return yield ctx.scheduleSubOrchestration('RatedChild', null).withFlowKey(flowKey);
      });
      await runtime.start();
      try {
        await client.startOrchestration('rated-parent', 'RatedParent');
        const parent = await client.waitForOrchestration('rated-parent', 30_000);
        assert.equal(parent.status, 'Failed');
        assert.match(String(parent.error), /flow key orch:rated has a rate limit/);
        assert.equal(
          (await client.listAllInstances()).filter((id) => id !== 'rated-parent' && id.includes('rated-parent')).length,
          0,
          'no child was started',
        );
        assert.deepEqual(await reported(client, flowKey), [0, 0, 0, 0]);
      } finally {
        await runtime.shutdown(0);
        await client.deleteFlowLimit(flowKey);
      }
    });

    it("deleting a parent deletes its children's parked starts; leaving one out is refused as an orphan", async () => {
      const flowKey = 'orch:orphans';
      const client = new Client(await store.openProvider());
      await client.setFlowLimit(flowKey, { maxActive: 0 });
      const runtime = new Runtime(await store.openProvider(), { logLevel: 'warn' });
      runtime.registerOrchestration('ParkedKid', function* () {
        return 'kid ran';
      });
      runtime.registerOrchestration('ParkingParent', function* (ctx) {
        return yield ctx.all([
          ctx.scheduleSubOrchestration('ParkedKid', null).withFlowKey(flowKey),
          ctx.scheduleSubOrchestration('ParkedKid', null).withFlowKey(flowKey),
        ]);
      });
      await runtime.start();
      try {
        await client.startOrchestration('parking-parent', 'ParkingParent');
        await eventually('both children parked', async () =>
          (await reported(client, flowKey))[3] === 2 ? true : undefined,
        );
        const tree = await client.getInstanceTree('parking-parent');
        assert.equal(tree.allIds.length, 3, 'the parked children belong to the tree');
        const [kid] = tree.allIds.filter((id) => id !== 'parking-parent');
        await assert.rejects(
          store.query('SELECT ${schema}.delete_instances($1::json, TRUE)', [JSON.stringify(['parking-parent'])]),
          /Orphan detected: instance .* has parent parking-parent/,
        );
        assert.equal((await instancePermits(store, flowKey)).parked, 2, 'the refused deletion wrote nothing');
        await client.deleteInstance('parking-parent', true);
        assert.deepEqual(await instancePermits(store, flowKey), { active: 0, held: 0, parked: 0 });
        assert.equal((await client.getStatus(kid)).status, 'NotFound');
      } finally {
        await runtime.shutdown(0);
        await client.deleteFlowLimit(flowKey);
      }
    });

    it('children scheduled withFlowKey (generator and async parents) run no more at once than the limit', async () => {
      const flowKey = 'orch:kids';
      const client = new Client(await store.openProvider());
      await client.setFlowLimit(flowKey, { maxActive: 2 });
      let running = 0;
      let max = 0;
      const runtime = new Runtime(await store.openProvider(), {
        logLevel: 'warn',
        orchestrationConcurrency: 4,
        workerConcurrency: 8,
      });
      runtime.registerActivity('Enter', async () => {
        max = Math.max(max, ++running);
        await sleep(5);
      });
      runtime.registerActivity('Leave', async () => {
        running -= 1;
      });
      runtime.registerActivity('Work', async (_ctx, ms: number) => sleep(ms));
      runtime.registerOrchestration('Kid', function* (ctx, n: number) {
        yield ctx.scheduleActivity('Enter', null);
        yield ctx.scheduleActivity('Work', 10 + (n % 3) * 5);
        yield ctx.scheduleActivity('Leave', null);
        return n;
      });
      runtime.registerOrchestration('Parent', function* (ctx, count: number) {
        const kids = Array.from({ length: count }, (_, i) =>
          ctx.scheduleSubOrchestration('Kid', i).withFlowKey(flowKey),
        );
        return (yield ctx.all(kids)) as number[];
      });
      runtime.registerOrchestration('AsyncParent', async (ctx, count: number) => {
        const kids = Array.from({ length: count }, (_, i) =>
          ctx.scheduleSubOrchestration<number>('Kid', 100 + i).withFlowKey(flowKey),
        );
        return ctx.all<number>(kids);
      });
      await runtime.start();
      let pendingSeen = 0;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          pendingSeen = Math.max(pendingSeen, (await reported(client, flowKey))[3]);
          await sleep(10);
        }
      })();
      try {
        await client.startOrchestration('kids-gen', 'Parent', 4);
        await client.startOrchestration('kids-async', 'AsyncParent', 4);
        // ctx.all settles each child as { ok: output }.
        const outputs = async (id: string) =>
          ((await client.waitForOrchestration(id, 60_000)).output as unknown as Array<{ ok: number }>).map((r) => r.ok);
        assert.deepEqual(await outputs('kids-gen'), [0, 1, 2, 3]);
        assert.deepEqual(await outputs('kids-async'), [100, 101, 102, 103]);
        sampling = false;
        await sampler;
        console.log(`${kind}: children of a key at most ${max} at once, ${pendingSeen} pending at most`);
        assert.equal(max, 2, 'the limit was reached and never exceeded');
        assert.ok(pendingSeen > 0, 'children waited for permits');
        assert.deepEqual(await reported(client, flowKey), [0, 0, 0, 0]);
      } finally {
        sampling = false;
        await runtime.shutdown(0);
        await client.deleteFlowLimit(flowKey);
      }
    });
  });
}
