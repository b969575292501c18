/**
 * Flow control (concurrency and rate limits per flow key): permits taken when a turn schedules
 * activities, handed to the oldest parked activity by every release path (ack, cancellation also
 * while a worker holds the activity, instance deletion), kept by an expired lease; an ack claims
 * an activity of a limited key only with a permit and never one of a rated key; a rated key's
 * second activity waits for its token on the store's clock.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FlowLimitInfo, Provider } from '../../../src/provider/contract';
import { withHarness, type ProviderTestFactory } from '../harness';
import { activity, fetchItem, LOCK_MS, rejectsWith, seedInstance, turn } from '../fixtures';

const ANY = { lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'any' as const } };

async function limitOf(provider: Provider, key: string): Promise<Pick<FlowLimitInfo, 'active' | 'parked'>> {
  const limit = (await provider.getFlowLimits!()).find((l) => l.flowKey === key);
  assert.ok(limit, `limit ${key}`);
  return { active: limit.active, parked: limit.parked };
}

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
  });
}
