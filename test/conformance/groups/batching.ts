/**
 * Batching and eager dispatch (docs/runtime.md, "Group commit and eager dispatch"): several
 * turns per fetch, several activity acks per call, and acks that claim the next piece of work
 * for their caller.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ActivityCompletionItem, ActivityExecuteItem } from '../../../src/core/types';
import type { FusedWorkItemAck, Provider, WorkItemLease } from '../../../src/provider/contract';
import { isLockLost } from '../../../src/provider/errors';
import { withHarness, type ProviderTestFactory } from '../harness';
import { activity, event, fetchItem, LOCK_MS, rejectsWith, seedInstance, started, startItem, turn } from '../fixtures';

const ANY_TAG = { mode: 'defaultOnly' } as const;

function completed(item: ActivityExecuteItem, result = '"done"'): ActivityCompletionItem {
  return { type: 'ActivityCompleted', instance: item.instance, executionId: item.executionId, id: item.id, result };
}

/** Seeds `instanceId` and acks a turn scheduling activities 2..(1+count), claiming those at `claim`. */
async function scheduleActivities(provider: Provider, instanceId: string, count: number, claim: number[]) {
  await seedInstance(provider, instanceId);
  await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: instanceId, name: 'go', data: '1' });
  const item = await fetchItem(provider, instanceId);
  const workerItems = Array.from({ length: count }, (_, i) => activity(instanceId, i + 2));
  const historyDelta = workerItems.map((w) =>
    event(instanceId, 1, w.id, { kind: 'ActivityScheduled', name: w.name, input: w.input }),
  );
  return provider.ackOrchestrationItem(item.lockToken, turn(instanceId, { historyDelta, workerItems }), {
    workerItemIndexes: claim,
    lockTimeoutMs: LOCK_MS,
  });
}

export function defineBatchingTests(factory: ProviderTestFactory): void {
  describe(`${factory.name}: batch fetch and group commit`, () => {
    it('startOrchestrationClaimed locks the first turn of a free instance for the caller, announced nowhere', () =>
      withHarness(factory, async ({ provider }) => {
        assert.ok(typeof provider.startOrchestrationClaimed === 'function', 'the store offers eager start');
        const turn = await provider.startOrchestrationClaimed(startItem('eager'), { lockTimeoutMs: LOCK_MS });
        assert.equal(turn?.instanceId, 'eager');
        assert.deepEqual(
          turn.messages.map((m) => m.type),
          ['StartOrchestration'],
        );
        assert.equal(
          await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS }),
          null,
          'nobody else can fetch it',
        );
        await provider.abandonOrchestrationItem(turn.lockToken, { ignoreAttempt: true });
        assert.equal((await fetchItem(provider)).instanceId, 'eager', 'given back, it is an ordinary start');
      }));

    it('startOrchestrationClaimed queues the start when the instance is held, and refuses a bad claim', () =>
      withHarness(factory, async ({ provider }) => {
        await seedInstance(provider, 'held');
        await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'held', name: 'go', data: '1' });
        const holding = await fetchItem(provider, 'held');
        assert.equal(await provider.startOrchestrationClaimed?.(startItem('held'), { lockTimeoutMs: LOCK_MS }), null);
        await provider.abandonOrchestrationItem(holding.lockToken, { ignoreAttempt: true });
        const next = await fetchItem(provider, 'held');
        assert.deepEqual(
          next.messages.map((m) => m.type),
          ['ExternalRaised', 'StartOrchestration'],
          'queued behind the held batch',
        );
        await rejectsWith(
          provider.startOrchestrationClaimed!(startItem('bad'), { lockTimeoutMs: 0 }),
          'invalid_argument',
        );
      }));

    it('fetchOrchestrationItems locks several instances at once, each under its own token', () =>
      withHarness(factory, async ({ provider }) => {
        for (const id of ['b1', 'b2', 'b3']) await provider.enqueueOrchestratorWork(startItem(id));
        const items = await provider.fetchOrchestrationItems({ lockTimeoutMs: LOCK_MS, maxItems: 2 });
        assert.deepEqual(
          items.map((i) => i.instanceId),
          ['b1', 'b2'],
        );
        assert.notEqual(items[0].lockToken, items[1].lockToken);
        const rest = await provider.fetchOrchestrationItems({ lockTimeoutMs: LOCK_MS, maxItems: 5 });
        assert.deepEqual(
          rest.map((i) => i.instanceId),
          ['b3'],
          'locked instances are not handed out twice',
        );
        assert.deepEqual(await provider.fetchOrchestrationItems({ lockTimeoutMs: LOCK_MS, maxItems: 5 }), []);
        await provider.abandonOrchestrationItem(items[1].lockToken);
        assert.equal((await fetchItem(provider)).instanceId, 'b2', 'each batch is released on its own');
        await rejectsWith(
          provider.fetchOrchestrationItems({ lockTimeoutMs: LOCK_MS, maxItems: 0 }),
          'invalid_argument',
        );
      }));

    it('ackWorkItems commits each ack on its own: a refused one leaves the others committed', () =>
      withHarness(factory, async ({ provider }) => {
        await seedInstance(provider, 'gc');
        for (const id of [2, 3]) await provider.enqueueWorkerWork(activity('gc', id));
        const leases = await provider.fetchWorkItems({ lockTimeoutMs: LOCK_MS, tagFilter: ANY_TAG, maxItems: 2 });
        assert.equal(leases.length, 2);
        const outcomes = await provider.ackWorkItems([
          { lockToken: leases[0].lockToken, completion: completed(leases[0].item) },
          { lockToken: 'no-such-token', completion: completed(leases[1].item) },
          { lockToken: leases[1].lockToken, completion: completed(leases[1].item, '"second"') },
        ]);
        assert.deepEqual(
          outcomes.map((o) => o.ok),
          [true, false, true],
        );
        const refused = outcomes[1];
        assert.ok(!refused.ok && refused.error.code === 'lock_lost' && refused.error.operation === 'ack_work_items');
        const next = await fetchItem(provider, 'gc');
        assert.deepEqual(
          next.messages.map((m) => (m.type === 'ActivityCompleted' ? m.result : m.type)),
          ['"done"', '"second"'],
        );
        assert.equal(await provider.fetchWorkItem({ lockTimeoutMs: LOCK_MS, tagFilter: ANY_TAG }), null);
      }));
  });

  describe(`${factory.name}: group commit of turns`, () => {
    it('ackOrchestrationItems commits each turn on its own, with its own claims', () =>
      withHarness(factory, async ({ provider }) => {
        for (const id of ['t1', 't2', 't3']) await provider.enqueueOrchestratorWork(startItem(id));
        const items = await provider.fetchOrchestrationItems({ lockTimeoutMs: LOCK_MS, maxItems: 3 });
        const token = (id: string): string =>
          items.find((i) => i.instanceId === id)?.lockToken ?? assert.fail(`${id} not fetched`);
        const outcomes = await provider.ackOrchestrationItems([
          {
            lockToken: token('t1'),
            ack: turn('t1', { historyDelta: [started('t1')], workerItems: [activity('t1', 2)] }),
            claim: { workerItemIndexes: [0], lockTimeoutMs: LOCK_MS },
          },
          { lockToken: token('t2'), ack: turn('t2', { historyDelta: [started('t2'), started('t2')] }) },
          { lockToken: 'stale-token', ack: turn('t3', { historyDelta: [started('t3')] }) },
          { lockToken: token('t3'), ack: turn('t3', { historyDelta: [started('t3')] }) },
        ]);
        assert.equal(outcomes.length, 4);
        const [first, invalid, stale, fourth] = outcomes;
        assert.ok(first.ok && first.claimedWorkItems.length === 1 && first.claimedWorkItems[0].item.instance === 't1');
        assert.ok(
          !invalid.ok && invalid.error.code === 'invalid_argument' && invalid.error.instanceId === 't2',
          'refused before SQL, alone',
        );
        assert.ok(!stale.ok && stale.error.code === 'lock_lost' && stale.error.operation === 'ack_orchestration_items');
        assert.ok(fourth.ok);
        assert.equal((await provider.readHistory('t1')).length, 1);
        assert.equal((await provider.readHistory('t3')).length, 1);
        assert.equal((await provider.getInstanceStatus('t2')).status, 'NotFound', 'the refused turn wrote nothing');
        await rejectsWith(provider.ackOrchestrationItem(token('t1'), turn('t1')), 'lock_lost');
        const retried = await provider.ackOrchestrationItem(token('t2'), turn('t2', { historyDelta: [started('t2')] }));
        assert.deepEqual(retried, [], 'the refused turn kept its lock and commits on retry');
      }));
  });

  describe(`${factory.name}: eager dispatch`, () => {
    it('a turn ack claims the activities it is asked to, locked for the caller and invisible to fetches', () =>
      withHarness(factory, async ({ provider }) => {
        const claimed = await scheduleActivities(provider, 'ea', 3, [0, 2]);
        assert.deepEqual(
          claimed.map((lease) => lease.item.id),
          [2, 4],
        );
        assert.ok(claimed.every((lease) => lease.attemptCount === 1 && lease.orchestrationName === 'Orch'));
        const fetched = await provider.fetchWorkItems({ lockTimeoutMs: LOCK_MS, tagFilter: ANY_TAG, maxItems: 10 });
        assert.deepEqual(
          fetched.map((lease) => lease.item.id),
          [3],
          'only the unclaimed activity is fetchable',
        );
        await provider.ackWorkItem(claimed[0].lockToken, completed(claimed[0].item));
        await rejectsWith(provider.ackWorkItem(claimed[0].lockToken, completed(claimed[0].item)), 'lock_lost');
      }));

    it('a repeat of a turn ack that committed (its reply lost) hands back the activities it claimed', () =>
      withHarness(factory, async ({ provider }) => {
        await seedInstance(provider, 'rp');
        await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'rp', name: 'go', data: '1' });
        const item = await fetchItem(provider, 'rp');
        const workerItems = [activity('rp', 2), activity('rp', 3)];
        const historyDelta = workerItems.map((w) =>
          event('rp', 1, w.id, { kind: 'ActivityScheduled', name: w.name, input: w.input }),
        );
        const ack = turn('rp', { historyDelta, workerItems });
        const first = await provider.ackOrchestrationItem(item.lockToken, ack, {
          workerItemIndexes: [0, 1],
          lockTimeoutMs: LOCK_MS,
        });
        const repeat = await provider.ackOrchestrationItem(item.lockToken, ack, {
          workerItemIndexes: [0, 1],
          lockTimeoutMs: LOCK_MS,
        });
        assert.deepEqual(
          repeat.map((lease) => lease.lockToken),
          first.map((lease) => lease.lockToken),
          'the same leases, not lock_lost',
        );
        assert.deepEqual(
          repeat.map((lease) => lease.item.id),
          [2, 3],
        );
        assert.equal(
          (await provider.readHistory('rp', 1)).filter((e) => e.kind === 'ActivityScheduled').length,
          2,
          'committed once',
        );
        for (const lease of repeat) await provider.ackWorkItem(lease.lockToken, completed(lease.item));
        await rejectsWith(
          provider.ackOrchestrationItem(item.lockToken, ack, { workerItemIndexes: [0, 1], lockTimeoutMs: LOCK_MS }),
          'lock_lost',
        );
        await rejectsWith(provider.ackOrchestrationItem(item.lockToken, ack), 'lock_lost');
      }));

    it('a repeat of an activity ack that committed releases the turn it claimed, announced to everyone', () =>
      withHarness(factory, async ({ provider }) => {
        const [lease] = await scheduleActivities(provider, 'ra', 1, [0]);
        const claimed = await provider.ackWorkItem(lease.lockToken, completed(lease.item), { lockTimeoutMs: LOCK_MS });
        assert.equal(claimed?.instanceId, 'ra', 'the first attempt claimed the turn');
        assert.equal(await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS }), null, 'held for the claimer');
        assert.equal(
          await provider.ackWorkItem(lease.lockToken, completed(lease.item), { lockTimeoutMs: LOCK_MS }),
          null,
          'the repeat is not lock_lost',
        );
        const next = await fetchItem(provider, 'ra');
        assert.deepEqual(
          next.messages.map((m) => m.type),
          ['ActivityCompleted'],
          'released: the completion is fetchable once, at once',
        );
        await rejectsWith(provider.ackWorkItem(lease.lockToken, completed(lease.item)), 'lock_lost');
      }));

    it('a turn ack does not claim an activity the same turn cancels, nor one pinned to a session', () =>
      withHarness(factory, async ({ provider }) => {
        await seedInstance(provider, 'ec');
        await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'ec', name: 'go', data: '1' });
        let item = await fetchItem(provider, 'ec');
        const work = activity('ec', 2);
        const claimed = await provider.ackOrchestrationItem(
          item.lockToken,
          turn('ec', {
            historyDelta: [event('ec', 1, 2, { kind: 'ActivityScheduled', name: work.name, input: work.input })],
            workerItems: [work],
            cancelledActivities: [{ instance: 'ec', executionId: 1, activityId: 2 }],
          }),
          { workerItemIndexes: [0], lockTimeoutMs: LOCK_MS },
        );
        assert.deepEqual(claimed, []);
        await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'ec', name: 'go', data: '2' });
        item = await fetchItem(provider, 'ec');
        const pinned = { ...activity('ec', 3), sessionId: 's1' };
        await rejectsWith(
          provider.ackOrchestrationItem(item.lockToken, turn('ec', { workerItems: [pinned] }), {
            workerItemIndexes: [0],
            lockTimeoutMs: LOCK_MS,
          }),
          'invalid_argument',
        );
        await rejectsWith(
          provider.ackOrchestrationItem(item.lockToken, turn('ec', { workerItems: [activity('ec', 3)] }), {
            workerItemIndexes: [1],
            lockTimeoutMs: LOCK_MS,
          }),
          'invalid_argument',
        );
      }));

    it('an activity ack claims the turn its completion makes ready, with the completion in the batch', () =>
      withHarness(factory, async ({ provider }) => {
        const [lease] = await scheduleActivities(provider, 'et', 1, [0]);
        const claimedTurn = await provider.ackWorkItem(lease.lockToken, completed(lease.item), {
          lockTimeoutMs: LOCK_MS,
        });
        assert.ok(claimedTurn, 'the free instance is claimed');
        assert.equal(claimedTurn.instanceId, 'et');
        assert.deepEqual(
          claimedTurn.messages.map((m) => m.type),
          ['ActivityCompleted'],
        );
        assert.equal(claimedTurn.history.length, 2);
        assert.equal(
          await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS }),
          null,
          'the claimed instance is locked',
        );
        await provider.ackOrchestrationItem(
          claimedTurn.lockToken,
          turn('et', { historyDelta: [event('et', 1, 3, { kind: 'ActivityCompleted', result: '"done"' })] }),
        );
        assert.equal((await provider.readHistory('et')).length, 3);
      }));

    it('an activity ack does not claim a locked instance: the completion waits for the next turn', () =>
      withHarness(factory, async ({ provider }) => {
        const leases = await scheduleActivities(provider, 'el', 2, [0, 1]);
        const first = await provider.ackWorkItem(leases[0].lockToken, completed(leases[0].item), {
          lockTimeoutMs: LOCK_MS,
        });
        assert.ok(first);
        const second = await provider.ackWorkItem(leases[1].lockToken, completed(leases[1].item), {
          lockTimeoutMs: LOCK_MS,
        });
        assert.equal(second, null, 'the instance is held by the first claim');
        await provider.ackOrchestrationItem(first.lockToken, turn('el'));
        const next = await fetchItem(provider, 'el');
        assert.deepEqual(
          next.messages.map((m) => (m.type === 'ActivityCompleted' ? m.id : m.type)),
          [3],
        );
      }));

    it('a fused ack commits the completion, the turn run on it and the activities it claims, in one call', () =>
      withHarness(factory, async ({ provider }) => {
        assert.ok(typeof provider.ackWorkItemWithTurn === 'function', 'the store offers fused completion');
        const [lease] = await scheduleActivities(provider, 'fu', 1, [0]);
        const next = activity('fu', 4);
        const ack = turn('fu', {
          historyDelta: [
            event('fu', 1, 3, { kind: 'ActivityCompleted', result: '"done"' }),
            event('fu', 1, 4, { kind: 'ActivityScheduled', name: next.name, input: next.input }),
          ],
          workerItems: [next],
        });
        const outcome = await provider.ackWorkItemWithTurn(
          lease.lockToken,
          completed(lease.item),
          { lockTimeoutMs: LOCK_MS },
          {
            executionId: 1,
            lastEventId: 2,
            ack,
            claim: { workerItemIndexes: [0], lockTimeoutMs: LOCK_MS },
          },
        );
        assert.ok(outcome.fused, 'the turn was committed');
        assert.deepEqual(
          outcome.claimedWorkItems.map((claimed) => claimed.item.id),
          [4],
        );
        assert.deepEqual(
          (await provider.readHistory('fu')).map((e) => e.kind),
          ['OrchestrationStarted', 'ActivityScheduled', 'ActivityCompleted', 'ActivityScheduled'],
        );
        assert.equal(
          await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS }),
          null,
          'the completion was consumed and the instance released',
        );
        assert.equal(
          await provider.fetchWorkItem({ lockTimeoutMs: LOCK_MS, tagFilter: ANY_TAG }),
          null,
          'the next activity is locked for the caller',
        );
        await rejectsWith(provider.ackWorkItem(lease.lockToken, completed(lease.item)), 'lock_lost');
        await provider.ackWorkItem(outcome.claimedWorkItems[0].lockToken, completed(outcome.claimedWorkItems[0].item));
      }));

    it('fused acks sent in one call commit each its own turn; a refused one leaves the others committed', () =>
      withHarness(factory, async ({ provider }) => {
        assert.ok(typeof provider.ackWorkItemsWithTurns === 'function', 'the store offers group fused completion');
        const fusedAck = (lease: WorkItemLease, instance: string): FusedWorkItemAck => {
          const next = activity(instance, 4);
          return {
            lockToken: lease.lockToken,
            completion: completed(lease.item),
            claim: { lockTimeoutMs: LOCK_MS },
            turn: {
              executionId: 1,
              lastEventId: 2,
              ack: turn(instance, {
                historyDelta: [
                  event(instance, 1, 3, { kind: 'ActivityCompleted', result: '"done"' }),
                  event(instance, 1, 4, { kind: 'ActivityScheduled', name: next.name, input: next.input }),
                ],
                workerItems: [next],
              }),
              claim: { workerItemIndexes: [0], lockTimeoutMs: LOCK_MS },
            },
          };
        };
        const [first] = await scheduleActivities(provider, 'ga', 1, [0]);
        const [second] = await scheduleActivities(provider, 'gb', 1, [0]);
        // The third repeats the first (a later element sees an earlier one's commit: it is
        // recognised as a repeat); the fourth names a lease that never existed.
        const outcomes = await provider.ackWorkItemsWithTurns([
          fusedAck(first, 'ga'),
          fusedAck(second, 'gb'),
          fusedAck(first, 'ga'),
          fusedAck({ ...second, lockToken: 'no-such-lease' }, 'gb'),
        ]);
        assert.equal(outcomes.length, 4);
        const claimed = outcomes.slice(0, 3).map((element) => {
          assert.ok(element.ok && element.outcome.fused, 'each turn was committed (the repeat reports it)');
          return element.outcome.claimedWorkItems;
        });
        assert.deepEqual(
          claimed.map((leases) => leases.map((lease) => [lease.item.instance, lease.item.id])),
          [[['ga', 4]], [['gb', 4]], [['ga', 4]]],
        );
        assert.deepEqual(
          claimed[2].map((lease) => lease.lockToken),
          claimed[0].map((lease) => lease.lockToken),
          'the repeat gets the same lease back',
        );
        const refused = outcomes[3];
        assert.ok(!refused.ok && isLockLost(refused.error), 'the unknown lease is refused on its own');
        for (const instance of ['ga', 'gb'])
          assert.deepEqual(
            (await provider.readHistory(instance)).map((e) => e.kind),
            ['OrchestrationStarted', 'ActivityScheduled', 'ActivityCompleted', 'ActivityScheduled'],
          );
        for (const lease of claimed.slice(0, 2).flat())
          await provider.ackWorkItem(lease.lockToken, completed(lease.item));
      }));

    it('a fused turn run on several completions of its instance acknowledges them all with it (fan-in)', () =>
      withHarness(factory, async ({ provider }) => {
        const leases = await scheduleActivities(provider, 'fi', 3, [0, 1, 2]);
        const outcome = await provider.ackWorkItemWithTurn!(
          leases[0].lockToken,
          completed(leases[0].item),
          { lockTimeoutMs: LOCK_MS },
          {
            executionId: 1,
            lastEventId: 4,
            ack: turn('fi', {
              historyDelta: [
                event('fi', 1, 5, { kind: 'ActivityCompleted', result: '"done"' }),
                event('fi', 1, 6, { kind: 'ActivityCompleted', result: '"done"' }),
              ],
            }),
            claim: null,
            alsoCompleted: [{ lockToken: leases[1].lockToken, completion: completed(leases[1].item) }],
          },
        );
        assert.ok(outcome.fused, 'the turn was committed with both completions');
        assert.deepEqual(
          (await provider.readHistory('fi')).map((e) => e.kind),
          [
            'OrchestrationStarted',
            'ActivityScheduled',
            'ActivityScheduled',
            'ActivityScheduled',
            'ActivityCompleted',
            'ActivityCompleted',
          ],
        );
        assert.equal(await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS }), null, 'nothing was queued');
        for (const lease of leases.slice(0, 2))
          await rejectsWith(provider.ackWorkItem(lease.lockToken, completed(lease.item)), 'lock_lost');
        await provider.ackWorkItem(leases[2].lockToken, completed(leases[2].item));
        const rest = await fetchItem(provider, 'fi');
        assert.deepEqual(
          rest.messages.map((m) => (m.type === 'ActivityCompleted' ? m.id : m.type)),
          [leases[2].item.id],
          'the third activity, not in the turn, is acknowledged on its own',
        );
      }));

    it('a fan-in fused ack that cannot commit queues all its completions, and one lost lease refuses it all', () =>
      withHarness(factory, async ({ provider }) => {
        const fanIn = (leases: WorkItemLease[]) => ({
          executionId: 1,
          lastEventId: 1 + leases.length,
          ack: turn(leases[0].item.instance, {
            historyDelta: leases.map((_, i) =>
              event(leases[0].item.instance, 1, 2 + leases.length + i, { kind: 'ActivityCompleted', result: '"done"' }),
            ),
          }),
          claim: null,
          alsoCompleted: leases
            .slice(1)
            .map((lease) => ({ lockToken: lease.lockToken, completion: completed(lease.item) })),
        });
        // Another message waits: no direct commit; the claimed batch holds every completion.
        const held = await scheduleActivities(provider, 'fj', 2, [0, 1]);
        await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'fj', name: 'other', data: '2' });
        const outcome = await provider.ackWorkItemWithTurn!(
          held[0].lockToken,
          completed(held[0].item),
          { lockTimeoutMs: LOCK_MS },
          fanIn(held),
        );
        assert.ok(!outcome.fused && outcome.claimedTurn !== null, 'the turn is claimed for the caller to run');
        assert.deepEqual(
          outcome.claimedTurn.messages.map((m) => (m.type === 'ActivityCompleted' ? m.id : m.type)).sort(),
          ['ExternalRaised', ...held.map((lease) => lease.item.id)].sort(),
        );
        assert.equal((await provider.readHistory('fj')).length, 3, 'nothing of the fused turn was written');
        await provider.ackOrchestrationItem(outcome.claimedTurn.lockToken, turn('fj'));

        // One of the other completions' leases is gone: the call is refused and writes nothing.
        const lost = await scheduleActivities(provider, 'fk', 2, [0, 1]);
        await provider.ackWorkItem(lost[1].lockToken, completed(lost[1].item));
        await rejectsWith(
          provider.ackWorkItemWithTurn!(
            lost[0].lockToken,
            completed(lost[0].item),
            { lockTimeoutMs: LOCK_MS },
            fanIn(lost),
          ),
          'lock_lost',
        );
        const queued = await fetchItem(provider, 'fk');
        assert.deepEqual(
          queued.messages.map((m) => (m.type === 'ActivityCompleted' ? m.id : m.type)),
          [lost[1].item.id],
          'only the completion acknowledged before was queued',
        );
        await provider.ackOrchestrationItem(queued.lockToken, turn('fk'));
        await provider.ackWorkItem(lost[0].lockToken, completed(lost[0].item));
      }));

    it('a repeat of a fused ack that committed (its reply lost) gets back the activities its turn claimed', () =>
      withHarness(factory, async ({ provider }) => {
        const [lease] = await scheduleActivities(provider, 'fx', 1, [0]);
        const next = activity('fx', 4);
        const fusedTurn = {
          executionId: 1,
          lastEventId: 2,
          ack: turn('fx', {
            historyDelta: [
              event('fx', 1, 3, { kind: 'ActivityCompleted', result: '"done"' }),
              event('fx', 1, 4, { kind: 'ActivityScheduled', name: next.name, input: next.input }),
            ],
            workerItems: [next],
          }),
          claim: { workerItemIndexes: [0], lockTimeoutMs: LOCK_MS },
        };
        const ackIt = () =>
          provider.ackWorkItemWithTurn!(lease.lockToken, completed(lease.item), { lockTimeoutMs: LOCK_MS }, fusedTurn);
        const first = await ackIt();
        const repeat = await ackIt();
        assert.ok(first.fused && repeat.fused, 'the repeat reports the committed turn');
        assert.deepEqual(
          repeat.claimedWorkItems.map((claimed) => [claimed.item.id, claimed.lockToken]),
          first.claimedWorkItems.map((claimed) => [claimed.item.id, claimed.lockToken]),
          'the same claimed activity, under the same lease',
        );
        assert.equal((await provider.readHistory('fx')).length, 4, 'the turn was committed once');
        assert.equal(
          await provider.fetchWorkItem({ lockTimeoutMs: LOCK_MS, tagFilter: ANY_TAG }),
          null,
          'the activity stays with the caller',
        );
        await provider.ackWorkItem(repeat.claimedWorkItems[0].lockToken, completed(repeat.claimedWorkItems[0].item));
      }));

    it('a repeat of a fused ack that fell back and claimed its turn releases that turn and commits nothing', () =>
      withHarness(factory, async ({ provider }) => {
        const [lease] = await scheduleActivities(provider, 'fy', 1, [0]);
        const next = activity('fy', 4);
        const staleTurn = {
          executionId: 1,
          lastEventId: 1,
          ack: turn('fy', {
            historyDelta: [
              event('fy', 1, 2, { kind: 'ActivityCompleted', result: '"done"' }),
              event('fy', 1, 3, { kind: 'ActivityScheduled', name: next.name, input: next.input }),
            ],
            workerItems: [next],
          }),
          claim: { workerItemIndexes: [0], lockTimeoutMs: LOCK_MS },
        };
        const ackIt = () =>
          provider.ackWorkItemWithTurn!(lease.lockToken, completed(lease.item), { lockTimeoutMs: LOCK_MS }, staleTurn);
        const first = await ackIt();
        assert.ok(!first.fused && first.claimedTurn !== null, 'the stale turn fell back to a claimed turn');
        const repeat = await ackIt(); // the first reply was lost: the claimed turn has no owner
        assert.deepEqual(repeat, { fused: false, claimedTurn: null });
        assert.equal((await provider.readHistory('fy')).length, 2, 'the stale turn was never committed');
        const again = await fetchItem(provider, 'fy');
        assert.deepEqual(
          again.messages.map((m) => m.type),
          ['ActivityCompleted'],
          'the released turn is fetchable at once',
        );
        await provider.ackOrchestrationItem(
          again.lockToken,
          turn('fy', { historyDelta: [event('fy', 1, 3, { kind: 'ActivityCompleted', result: '"done"' })] }),
        );
      }));

    it('a fused ack whose history is stale or whose instance has another message claims the turn instead', () =>
      withHarness(factory, async ({ provider }) => {
        for (const [instanceId, stale] of [
          ['fs', true],
          ['fm', false],
        ] as const) {
          const [lease] = await scheduleActivities(provider, instanceId, 1, [0]);
          if (!stale)
            await provider.enqueueOrchestratorWork({
              type: 'ExternalRaised',
              instance: instanceId,
              name: 'other',
              data: '2',
            });
          const ack = turn(instanceId, {
            historyDelta: [event(instanceId, 1, 3, { kind: 'ActivityCompleted', result: '"done"' })],
          });
          const outcome = await provider.ackWorkItemWithTurn!(
            lease.lockToken,
            completed(lease.item),
            { lockTimeoutMs: LOCK_MS },
            {
              executionId: 1,
              lastEventId: stale ? 1 : 2,
              ack,
              claim: null,
            },
          );
          assert.ok(
            !outcome.fused && outcome.claimedTurn !== null,
            `${instanceId}: the turn is claimed for the caller to run`,
          );
          assert.deepEqual(
            outcome.claimedTurn.messages.map((m) => m.type),
            stale ? ['ActivityCompleted'] : ['ExternalRaised', 'ActivityCompleted'],
          );
          assert.equal(
            (await provider.readHistory(instanceId)).length,
            2,
            `${instanceId}: nothing of the fused turn was written`,
          );
          await rejectsWith(provider.ackWorkItem(lease.lockToken, completed(lease.item)), 'lock_lost');
          await provider.ackOrchestrationItem(outcome.claimedTurn.lockToken, ack);
          assert.equal((await provider.readHistory(instanceId)).length, 3);
        }
      }));

    it('a fused ack whose caller has no turn worker free releases the turn it could not commit', () =>
      withHarness(factory, async ({ provider }) => {
        const [lease] = await scheduleActivities(provider, 'fr', 1, [0]);
        const ack = turn('fr', { historyDelta: [event('fr', 1, 3, { kind: 'ActivityCompleted', result: '"done"' })] });
        const outcome = await provider.ackWorkItemWithTurn!(
          lease.lockToken,
          completed(lease.item),
          { lockTimeoutMs: LOCK_MS },
          { executionId: 1, lastEventId: 1, ack, claim: null, fallback: 'release' },
        );
        assert.deepEqual(
          outcome,
          { fused: false, claimedTurn: null },
          'a stale history, and nobody to hand the turn to',
        );
        assert.equal((await provider.readHistory('fr')).length, 2, 'nothing of the fused turn was written');
        const next = await fetchItem(provider, 'fr');
        assert.deepEqual(
          next.messages.map((m) => m.type),
          ['ActivityCompleted'],
          'the completion is queued, unlocked',
        );
        assert.equal(next.attemptCount, 1, 'the released claim was not counted as a delivery');
        await provider.ackOrchestrationItem(next.lockToken, ack);
        await rejectsWith(
          provider.ackWorkItemWithTurn!(
            lease.lockToken,
            completed(lease.item),
            { lockTimeoutMs: LOCK_MS },
            { executionId: 1, lastEventId: 3, ack, claim: null, fallback: 'drop' as 'release' },
          ),
          'invalid_argument',
        );
      }));

    it('a fused ack on a locked instance queues the completion, and a turn messaging another instance is refused', () =>
      withHarness(factory, async ({ provider }) => {
        const leases = await scheduleActivities(provider, 'fl', 2, [0, 1]);
        const held = await provider.ackWorkItem(leases[0].lockToken, completed(leases[0].item), {
          lockTimeoutMs: LOCK_MS,
        });
        assert.ok(held, 'the first completion locked the instance');
        const fusedTurn = {
          executionId: 1,
          lastEventId: 3,
          ack: turn('fl', { historyDelta: [event('fl', 1, 4, { kind: 'ActivityCompleted', result: '"done"' })] }),
          claim: null,
        };
        const outcome = await provider.ackWorkItemWithTurn!(
          leases[1].lockToken,
          completed(leases[1].item),
          { lockTimeoutMs: LOCK_MS },
          fusedTurn,
        );
        assert.deepEqual(outcome, { fused: false, claimedTurn: null });
        await provider.ackOrchestrationItem(
          held.lockToken,
          turn('fl', { historyDelta: [event('fl', 1, 4, { kind: 'ActivityCompleted', result: '"done"' })] }),
        );
        const next = await fetchItem(provider, 'fl');
        assert.deepEqual(
          next.messages.map((m) => (m.type === 'ActivityCompleted' ? m.id : m.type)),
          [3],
          'the second completion was queued',
        );
        await provider.ackOrchestrationItem(next.lockToken, turn('fl'));

        const [lease] = await scheduleActivities(provider, 'fo', 1, [0]);
        const messaging = turn('fo', {
          orchestratorItems: [{ type: 'ExternalRaised', instance: 'someone-else', name: 'x', data: '1' }],
        });
        await rejectsWith(
          provider.ackWorkItemWithTurn!(
            lease.lockToken,
            completed(lease.item),
            { lockTimeoutMs: LOCK_MS },
            { executionId: 1, lastEventId: 2, ack: messaging, claim: null },
          ),
          'invalid_argument',
        );
        await provider.ackWorkItem(lease.lockToken, completed(lease.item));
      }));

    it('a fused ack outside the capability filter of its claim commits nothing and queues the completion', () =>
      withHarness(factory, async ({ provider }) => {
        const [lease] = await scheduleActivities(provider, 'fv', 1, [0]);
        const outcome = await provider.ackWorkItemWithTurn!(
          lease.lockToken,
          completed(lease.item),
          { lockTimeoutMs: LOCK_MS, versionRange: { min: '0.0.0', max: '0.0.1' } },
          {
            executionId: 1,
            lastEventId: 2,
            ack: turn('fv', { historyDelta: [event('fv', 1, 3, { kind: 'ActivityCompleted', result: '"done"' })] }),
            claim: null,
          },
        );
        assert.deepEqual(outcome, { fused: false, claimedTurn: null }, 'pinned to a version outside the range');
        assert.equal((await provider.readHistory('fv')).length, 2, 'the turn run on it was not committed');
        const item = await fetchItem(provider, 'fv');
        assert.deepEqual(
          item.messages.map((m) => m.type),
          ['ActivityCompleted'],
          'the completion was queued instead',
        );
      }));

    it('a fused ack on an instance whose lock expired takes over its messages instead of committing alone', () =>
      withHarness(factory, async ({ provider, advanceClock }) => {
        const [lease] = await scheduleActivities(provider, 'fe', 1, [0]);
        await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'fe', name: 'other', data: '2' });
        const abandoned = await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS / 10 });
        assert.equal(abandoned?.instanceId, 'fe', 'a turn locked by a runtime that then stopped');
        await advanceClock(LOCK_MS / 10 + 1); // its lock runs out; the activity's lease does not
        const ack = turn('fe', {
          historyDelta: [event('fe', 1, 3, { kind: 'ActivityCompleted', result: '"done"' })],
        });
        const outcome = await provider.ackWorkItemWithTurn!(
          lease.lockToken,
          completed(lease.item),
          { lockTimeoutMs: LOCK_MS },
          { executionId: 1, lastEventId: 2, ack, claim: null },
        );
        assert.ok(!outcome.fused && outcome.claimedTurn !== null, 'the turn is claimed for the caller to run');
        assert.deepEqual(
          outcome.claimedTurn.messages.map((m) => m.type),
          ['ExternalRaised', 'ActivityCompleted'],
          "the expired holder's message comes with the completion",
        );
        assert.equal((await provider.readHistory('fe')).length, 2, 'nothing of the fused turn was written');
        await rejectsWith(provider.ackOrchestrationItem(abandoned.lockToken, ack), 'lock_lost');
      }));

    it('an activity ack respects the capability filter of its claim', () =>
      withHarness(factory, async ({ provider }) => {
        const [lease] = await scheduleActivities(provider, 'ev', 1, [0]);
        const claimedTurn = await provider.ackWorkItem(lease.lockToken, completed(lease.item), {
          lockTimeoutMs: LOCK_MS,
          versionRange: { min: '0.0.0', max: '0.0.1' },
        });
        assert.equal(claimedTurn, null, 'pinned to a version outside the range');
        const item = await fetchItem(provider, 'ev');
        assert.deepEqual(
          item.messages.map((m) => m.type),
          ['ActivityCompleted'],
          'the completion was queued instead',
        );
      }));
  });
}
