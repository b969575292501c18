/**
 * Flow control (concurrency and rate limits per flow key): permits taken when a turn schedules
 * activities, handed to the oldest parked activity by every release path (ack, cancellation also
 * while a worker holds the activity, instance deletion), kept by an expired lease; an ack claims
 * an activity of a limited key only with a permit and never one of a rated key; a rated key's
 * second activity waits for its token on the store's clock.
 *
 * Orchestration flow keys: a start with a flowKey (a client's, or one a turn sends) takes a permit
 * for its instance or parks (status Pending); continue-as-new and an expired instance lock keep it;
 * the turn that ends the instance hands it to the oldest parked start; a cancelled parked start
 * (by a client or a parent's turn) is queued without a permit, a deleted one leaves the park;
 * deleting a running instance hands its permit on; a key with a rate limit is refused for starts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FlowLimitInfo, Provider } from '../../../src/provider/contract';
import { withHarness, type ProviderTestFactory } from '../harness';
import { activity, event, fetchItem, LOCK_MS, rejectsWith, seedInstance, started, startItem, turn } from '../fixtures';

const ANY = { lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'any' as const } };

async function limitOf(provider: Provider, key: string): Promise<Pick<FlowLimitInfo, 'active' | 'parked'>> {
  const limit = (await provider.getFlowLimits!()).find((l) => l.flowKey === key);
  assert.ok(limit, `limit ${key}`);
  return { active: limit.active, parked: limit.parked };
}

/** [active, parked, activeInstances, parkedInstances] of `key`. */
async function instanceCounts(provider: Provider, key: string): Promise<number[]> {
  const limit = (await provider.getFlowLimits!()).find((l) => l.flowKey === key);
  assert.ok(limit, `limit ${key}`);
  return [limit.active, limit.parked, limit.activeInstances, limit.parkedInstances];
}

const ENDED = { orchestrationName: 'Orch', orchestrationVersion: '1.0.0' };

/** Fetches every fetchable activity now; returns their activity ids (the leases stay held). */
async function fetchAll(provider: Provider): Promise<number[]> {
  return (await provider.fetchWorkItems({ ...ANY, maxItems: 100 })).map((l) => l.item.id);
}

export function defineFlowTests(factory: ProviderTestFactory): void {
  describe(`${factory.name}: flow limits`, () => {
    it('a turn takes the free permits and parks the rest, oldest first; an ack hands its permit on', () =>
      withHarness(factory, async ({ provider }) => {
        await provider.setFlowLimit!('activity:Act', { maxActive: 2 });
        await seedInstance(provider, 'f1', { workerItems: [2, 3, 4, 5].map((id) => activity('f1', id)) });
        assert.deepEqual(await limitOf(provider, 'activity:Act'), { active: 2, parked: 2 });
        const first = await provider.fetchWorkItems({ ...ANY, maxItems: 10 });
        assert.deepEqual(
          first.map((l) => l.item.id),
          [2, 3],
        );
        await provider.ackWorkItem(first[0].lockToken, null);
        assert.deepEqual(await fetchAll(provider), [4]);
        assert.deepEqual(await limitOf(provider, 'activity:Act'), { active: 2, parked: 1 });
      }));

    it('an ack claims an activity of a limited key only with a permit, and none of a rated key', () =>
      withHarness(factory, async ({ provider }) => {
        await provider.setFlowLimit!('activity:Act', { maxActive: 1 });
        const start = async (instance: string) => {
          await provider.enqueueOrchestratorWork({
            type: 'StartOrchestration',
            instance,
            orchestration: 'Orch',
            input: '"in"',
            version: null,
            parentInstance: null,
            parentId: null,
            parentExecutionId: null,
            executionId: 1,
          });
          return fetchItem(provider, instance);
        };
        const item = await start('f2');
        const claimed = await provider.ackOrchestrationItem(
          item.lockToken,
          turn('f2', { workerItems: [activity('f2', 2), activity('f2', 3)] }),
          { workerItemIndexes: [0, 1], lockTimeoutMs: LOCK_MS },
        );
        assert.deepEqual(
          claimed.map((l) => l.item.id),
          [2],
          'the one with the free permit',
        );
        assert.deepEqual(await limitOf(provider, 'activity:Act'), { active: 1, parked: 1 });
        assert.deepEqual(await fetchAll(provider), [], 'the other waits, parked');
        await provider.ackWorkItem(claimed[0].lockToken, null);
        assert.deepEqual(await fetchAll(provider), [3]);

        await provider.setFlowLimit!('activity:Act', { perSecond: 100 });
        const rated = await start('f2r');
        const none = await provider.ackOrchestrationItem(
          rated.lockToken,
          turn('f2r', { workerItems: [activity('f2r', 2)] }),
          { workerItemIndexes: [0], lockTimeoutMs: LOCK_MS },
        );
        assert.deepEqual(none, [], 'a rated activity takes its token when fetched');
        assert.deepEqual(await fetchAll(provider), [2]);
      }));

    it('cancelling a held activity hands its permit on; a cancelled parked one leaves the line', () =>
      withHarness(factory, async ({ provider }) => {
        await provider.setFlowLimit!('activity:Act', { maxActive: 1 });
        await seedInstance(provider, 'f3', { workerItems: [2, 3, 4].map((id) => activity('f3', id)) });
        const held = await provider.fetchWorkItem(ANY);
        assert.equal(held?.item.id, 2);
        await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'f3', name: 'stop', data: '1' });
        const item = await fetchItem(provider, 'f3');
        await provider.ackOrchestrationItem(
          item.lockToken,
          turn('f3', {
            // A new limited activity scheduled and cancelled in the same turn leaves nothing behind.
            workerItems: [activity('f3', 5)],
            cancelledActivities: [
              { instance: 'f3', executionId: 1, activityId: 2 },
              { instance: 'f3', executionId: 1, activityId: 3 },
              { instance: 'f3', executionId: 1, activityId: 5 },
            ],
          }),
        );
        await rejectsWith(provider.ackWorkItem(held.lockToken, null), 'lock_lost');
        assert.deepEqual(await limitOf(provider, 'activity:Act'), { active: 1, parked: 0 });
        const next = await provider.fetchWorkItem(ANY);
        assert.equal(next?.item.id, 4);
        await provider.ackWorkItem(next.lockToken, null);
        assert.deepEqual(await limitOf(provider, 'activity:Act'), { active: 0, parked: 0 });
      }));

    it('an expired lease keeps its permit; deleting an instance hands its permits to other instances', () =>
      withHarness(factory, async ({ provider, advanceClock }) => {
        await provider.setFlowLimit!('activity:Act', { maxActive: 1 });
        await seedInstance(provider, 'f4', { workerItems: [activity('f4', 2)] });
        await seedInstance(provider, 'f5', { workerItems: [activity('f5', 2)] });
        const held = await provider.fetchWorkItem(ANY);
        assert.equal(held?.item.instance, 'f4');
        await advanceClock(LOCK_MS + 1_000);
        const again = await provider.fetchWorkItem(ANY);
        assert.equal(again?.item.instance, 'f4', 'the expired lease is delivered again, not the parked item');
        assert.deepEqual(await limitOf(provider, 'activity:Act'), { active: 1, parked: 1 });
        await provider.deleteInstance('f4', { force: true });
        assert.deepEqual(await limitOf(provider, 'activity:Act'), { active: 1, parked: 0 });
        const other = await provider.fetchWorkItem(ANY);
        assert.equal(other?.item.instance, 'f5');
      }));

    it('a rated key dispatches its next activity only when the store clock brings the next token', () =>
      withHarness(factory, async ({ provider, advanceClock }) => {
        await provider.setFlowLimit!('activity:Act', { perSecond: 0.5 });
        await seedInstance(provider, 'f6', { workerItems: [2, 3].map((id) => activity('f6', id)) });
        assert.deepEqual(await fetchAll(provider), [2]);
        assert.deepEqual(await fetchAll(provider), [], 'no token for the second activity');
        await advanceClock(2_100);
        assert.deepEqual(await fetchAll(provider), [3]);
      }));
    it('an orchestration flow key: one permit per instance, kept across continue-as-new and lock expiry, handed on at its end', () =>
      withHarness(factory, async ({ provider, advanceClock }) => {
        await provider.setFlowLimit!('orch', { maxActive: 1 });
        for (const id of ['o1', 'o2', 'o3']) await provider.enqueueOrchestratorWork(startItem(id, { flowKey: 'orch' }));
        assert.deepEqual(await instanceCounts(provider, 'orch'), [1, 2, 1, 2]);
        assert.equal((await provider.getInstanceStatus('o2')).status, 'Pending');
        // A repeated start of a parked instance is the same parked start.
        await provider.enqueueOrchestratorWork(startItem('o2', { flowKey: 'orch' }));
        assert.deepEqual(await instanceCounts(provider, 'orch'), [1, 2, 1, 2]);

        let item = await fetchItem(provider, 'o1');
        assert.equal(await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS }), null, 'parked starts wait');
        await provider.ackOrchestrationItem(
          item.lockToken,
          turn('o1', {
            historyDelta: [started('o1'), event('o1', 1, 2, { kind: 'OrchestrationContinuedAsNew', input: '"next"' })],
            orchestratorItems: [
              {
                type: 'ContinueAsNew',
                instance: 'o1',
                orchestration: 'Orch',
                input: '"next"',
                version: '1.0.0',
                carryForwardEvents: [],
                initialCustomStatus: null,
              },
            ],
            metadata: { ...ENDED, status: 'ContinuedAsNew', output: '"next"' },
          }),
        );
        assert.deepEqual(await instanceCounts(provider, 'orch'), [1, 2, 1, 2], 'continue-as-new keeps the permit');
        item = await fetchItem(provider, 'o1');
        assert.equal(item.messages[0].type, 'ContinueAsNew');
        await provider.ackOrchestrationItem(
          item.lockToken,
          turn('o1', {
            executionId: 2,
            historyDelta: [started('o1', 2)],
            metadata: { ...ENDED, status: 'Completed', output: '1' },
          }),
        );
        assert.deepEqual(await instanceCounts(provider, 'orch'), [1, 1, 1, 1], 'the end hands the permit to o2');
        assert.equal((await provider.getInstanceStatus('o3')).status, 'Pending');

        const held = await fetchItem(provider, 'o2');
        await advanceClock(LOCK_MS + 1_000);
        const again = await fetchItem(provider, 'o2');
        assert.deepEqual(
          await instanceCounts(provider, 'orch'),
          [1, 1, 1, 1],
          'an expired instance lock keeps the permit',
        );
        await rejectsWith(
          provider.ackOrchestrationItem(held.lockToken, turn('o2', { historyDelta: [started('o2')] })),
          'lock_lost',
        );
        await provider.ackOrchestrationItem(
          again.lockToken,
          turn('o2', { historyDelta: [started('o2')], metadata: { ...ENDED, status: 'Failed', output: 'boom' } }),
        );
        await provider.ackOrchestrationItem(
          (await fetchItem(provider, 'o3')).lockToken,
          turn('o3', { historyDelta: [started('o3')], metadata: { ...ENDED, status: 'Completed', output: '3' } }),
        );
        assert.deepEqual(await instanceCounts(provider, 'orch'), [0, 0, 0, 0]);
      }));

    it('cancelling or deleting a parked start takes no permit; deleting a running instance hands its permit on', () =>
      withHarness(factory, async ({ provider }) => {
        await provider.setFlowLimit!('orch', { maxActive: 1 });
        for (const id of ['p1', 'p2', 'p3', 'p4'])
          await provider.enqueueOrchestratorWork(startItem(id, { flowKey: 'orch' }));
        assert.deepEqual(await instanceCounts(provider, 'orch'), [1, 3, 1, 3]);

        // The cancelled parked start is queued without a permit, ahead of its cancellation.
        await provider.enqueueOrchestratorWork({ type: 'CancelInstance', instance: 'p2', reason: 'stop' });
        assert.deepEqual(await instanceCounts(provider, 'orch'), [1, 2, 1, 2]);
        const fetched = await provider.fetchOrchestrationItems({ lockTimeoutMs: LOCK_MS, maxItems: 10 });
        assert.deepEqual(fetched.map((i) => i.instanceId).sort(), ['p1', 'p2']);
        const cancelled = fetched.find((i) => i.instanceId === 'p2')!;
        assert.deepEqual(
          cancelled.messages.map((m) => m.type),
          ['StartOrchestration', 'CancelInstance'],
        );
        await provider.ackOrchestrationItem(
          cancelled.lockToken,
          turn('p2', {
            historyDelta: [started('p2')],
            metadata: { ...ENDED, status: 'Failed', output: 'canceled: stop' },
          }),
        );
        assert.deepEqual(await instanceCounts(provider, 'orch'), [1, 2, 1, 2], 'its end gives back nothing');

        const deleted = await provider.deleteInstance('p3', { force: false });
        assert.equal(deleted.instancesDeleted, 1);
        assert.equal((await provider.getInstanceStatus('p3')).status, 'NotFound');
        assert.deepEqual(await instanceCounts(provider, 'orch'), [1, 1, 1, 1]);

        const running = fetched.find((i) => i.instanceId === 'p1')!;
        await provider.ackOrchestrationItem(running.lockToken, turn('p1', { historyDelta: [started('p1')] }));
        await rejectsWith(provider.deleteInstance('p1', { force: false }), 'conflict');
        await provider.deleteInstance('p1', { force: true });
        assert.deepEqual(await instanceCounts(provider, 'orch'), [1, 0, 1, 0], 'p4 took the permit');
        assert.equal((await fetchItem(provider, 'p4')).messages[0].type, 'StartOrchestration');
      }));

    it('starts a turn sends with a flowKey take permits or park; its cancellation of a parked child queues that start', () =>
      withHarness(factory, async ({ provider }) => {
        await provider.setFlowLimit!('kids', { maxActive: 1 });
        await provider.enqueueOrchestratorWork(startItem('parent'));
        const child = (id: string, eventId: number) =>
          startItem(id, { flowKey: 'kids', parentInstance: 'parent', parentId: eventId, parentExecutionId: 1 });
        let item = await fetchItem(provider, 'parent');
        await provider.ackOrchestrationItem(
          item.lockToken,
          turn('parent', {
            historyDelta: [started('parent')],
            orchestratorItems: [child('kid-1', 2), child('kid-2', 3)],
          }),
        );
        assert.deepEqual(await instanceCounts(provider, 'kids'), [1, 1, 1, 1]);
        assert.equal((await provider.getInstanceStatus('kid-2')).status, 'Pending');

        await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'parent', name: 'stop', data: '1' });
        const batch = await provider.fetchOrchestrationItems({ lockTimeoutMs: LOCK_MS, maxItems: 10 });
        assert.deepEqual(batch.map((i) => i.instanceId).sort(), ['kid-1', 'parent']);
        item = batch.find((i) => i.instanceId === 'parent')!;
        await provider.ackOrchestrationItem(
          item.lockToken,
          turn('parent', {
            orchestratorItems: [{ type: 'CancelInstance', instance: 'kid-2', reason: 'parent canceled' }],
            metadata: { ...ENDED, status: 'Failed', output: 'canceled' },
          }),
        );
        assert.deepEqual(await instanceCounts(provider, 'kids'), [1, 0, 1, 0], 'kid-2 left the park without a permit');
        const cancelled = await fetchItem(provider, 'kid-2');
        assert.deepEqual(
          cancelled.messages.map((m) => m.type),
          ['StartOrchestration', 'CancelInstance'],
        );
        const first = batch.find((i) => i.instanceId === 'kid-1')!;
        await provider.ackOrchestrationItem(
          first.lockToken,
          turn('kid-1', { historyDelta: [started('kid-1')], metadata: { ...ENDED, status: 'Completed', output: '1' } }),
        );
        assert.deepEqual(await instanceCounts(provider, 'kids'), [0, 0, 0, 0]);
      }));

    it('a key with a rate limit is refused for starts, and a rate for a key that instances hold', () =>
      withHarness(factory, async ({ provider }) => {
        await provider.setFlowLimit!('rated', { perSecond: 5 });
        await rejectsWith(provider.enqueueOrchestratorWork(startItem('r1', { flowKey: 'rated' })), 'conflict');
        assert.equal((await provider.getInstanceStatus('r1')).status, 'NotFound', 'nothing was written');
        await provider.setFlowLimit!('held', { maxActive: 2 });
        await provider.enqueueOrchestratorWork(startItem('r2', { flowKey: 'held' }));
        await rejectsWith(provider.setFlowLimit!('held', { maxActive: 2, perSecond: 5 }), 'conflict');
        assert.deepEqual(await instanceCounts(provider, 'held'), [1, 0, 1, 0]);
      }));
  });
}
