/** Multi-execution, queue semantics, poison attempt counts, tag filtering and cancellation. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Provider, TagFilter } from '../../../src/provider/contract';
import { withHarness, type ProviderTestFactory } from '../harness';
import { activity, event, fetchItem, LOCK_MS, rejectsWith, seedInstance, started, startItem, turn } from '../fixtures';

async function drainTags(provider: Provider, tagFilter: TagFilter): Promise<Array<string | null>> {
  const tags: Array<string | null> = [];
  for (;;) {
    const lease = await provider.fetchWorkItem({ lockTimeoutMs: LOCK_MS, tagFilter });
    if (lease === null) return tags;
    tags.push(lease.item.tag);
  }
}

export function defineQueueTests(factory: ProviderTestFactory): void {
  describe(`${factory.name}: multi-execution`, () => {
    it('continue-as-new completes execution 1 and starts execution 2 with its own history', () =>
      withHarness(factory, async ({ provider }) => {
        await seedInstance(provider, 'can');
        await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'can', name: 'e', data: '1' });
        let item = await fetchItem(provider, 'can');
        await provider.ackOrchestrationItem(
          item.lockToken,
          turn('can', {
            historyDelta: [event('can', 1, 2, { kind: 'OrchestrationContinuedAsNew', input: '"next"' })],
            orchestratorItems: [
              {
                type: 'ContinueAsNew',
                instance: 'can',
                orchestration: 'Orch',
                input: '"next"',
                version: '1.0.0',
                carryForwardEvents: [],
                initialCustomStatus: null,
              },
            ],
            metadata: {
              orchestrationName: 'Orch',
              orchestrationVersion: '1.0.0',
              status: 'ContinuedAsNew',
              output: '"next"',
            },
          }),
        );
        const first = await provider.getExecutionInfo('can', 1);
        assert.equal(first?.status, 'ContinuedAsNew');
        assert.notEqual(first?.completedAt, null, 'ContinuedAsNew executions get completed_at');
        assert.equal((await provider.getInstanceStatus('can')).status, 'Running');
        item = await fetchItem(provider, 'can');
        assert.equal(item.messages[0].type, 'ContinueAsNew');
        await provider.ackOrchestrationItem(
          item.lockToken,
          turn('can', { executionId: 2, historyDelta: [started('can', 2)] }),
        );
        assert.deepEqual(await provider.listExecutions('can'), [1, 2]);
        assert.equal((await provider.getInstanceInfo('can'))?.currentExecutionId, 2);
        assert.deepEqual(
          (await provider.readHistory('can')).map((e) => e.executionId),
          [2],
        );
        assert.deepEqual(
          (await provider.readHistory('can', 1)).map((e) => e.kind),
          ['OrchestrationStarted', 'OrchestrationContinuedAsNew'],
        );
        await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'can', name: 'e', data: '2' });
        const third = await fetchItem(provider, 'can');
        assert.equal(third.executionId, 2);
        assert.equal(third.history.length, 1);
      }));
  });

  describe(`${factory.name}: queue semantics`, () => {
    it('worker items are FIFO, invisible while locked, and acked together with their completion', () =>
      withHarness(factory, async ({ provider }) => {
        await seedInstance(provider, 'fifo');
        for (const id of [1, 2, 3]) await provider.enqueueWorkerWork(activity('fifo', id));
        const first = await provider.fetchWorkItem({ lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'defaultOnly' } });
        assert.equal(first?.item.id, 1);
        assert.equal(first?.orchestrationName, 'Orch');
        assert.equal(first?.orchestrationVersion, '1.0.0');
        assert.equal((await provider.getQueueDepths()).workerQueue, 2);
        await provider.ackWorkItem(first.lockToken, {
          type: 'ActivityCompleted',
          instance: 'fifo',
          executionId: 1,
          id: 1,
          result: '"r"',
        });
        const next = await fetchItem(provider, 'fifo');
        assert.deepEqual(next.messages, [
          { type: 'ActivityCompleted', instance: 'fifo', executionId: 1, id: 1, result: '"r"' },
        ]);
        assert.deepEqual(await drainTags(provider, { mode: 'defaultOnly' }), [null, null]);
      }));

    it('abandoned work items come back at once, or after their delay', () =>
      withHarness(factory, async ({ provider, advanceClock }) => {
        await provider.enqueueWorkerWork(activity('wab', 1));
        const lease = await provider.fetchWorkItem({ lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'any' } });
        await provider.abandonWorkItem(lease!.lockToken);
        const again = await provider.fetchWorkItem({ lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'any' } });
        assert.ok(again);
        await provider.abandonWorkItem(again.lockToken, { delayMs: 2_000 });
        assert.equal(await provider.fetchWorkItem({ lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'any' } }), null);
        await advanceClock(2_001);
        assert.ok(await provider.fetchWorkItem({ lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'any' } }));
      }));

    it('timers and delayed messages stay invisible until due on the store clock', () =>
      withHarness(factory, async ({ provider, advanceClock }) => {
        await provider.enqueueOrchestratorWork(startItem('tm'));
        const item = await fetchItem(provider, 'tm');
        const fireAtMs = item.nowMs + 10_000;
        await provider.ackOrchestrationItem(
          item.lockToken,
          turn('tm', {
            historyDelta: [started('tm'), event('tm', 1, 2, { kind: 'TimerCreated', fireAtMs })],
            orchestratorItems: [{ type: 'TimerFired', instance: 'tm', executionId: 1, id: 2, fireAtMs }],
          }),
        );
        await provider.enqueueOrchestratorWork(
          { type: 'ExternalRaised', instance: 'tm', name: 'later', data: '1' },
          { delayMs: 20_000 },
        );
        assert.equal(await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS }), null);
        await advanceClock(10_500);
        const timer = await fetchItem(provider, 'tm');
        assert.deepEqual(
          timer.messages.map((m) => m.type),
          ['TimerFired'],
        );
        await provider.ackOrchestrationItem(timer.lockToken, turn('tm'));
        await advanceClock(10_000);
        assert.deepEqual(
          (await fetchItem(provider, 'tm')).messages.map((m) => m.type),
          ['ExternalRaised'],
        );
      }));

    it('drops QueueMessages for a never-created instance inside fetch, and delivers them to existing ones', () =>
      withHarness(factory, async ({ provider }) => {
        await provider.enqueueOrchestratorWork({ type: 'QueueMessage', instance: 'ghost', name: 'q', data: '1' });
        await provider.enqueueOrchestratorWork({ type: 'QueueMessage', instance: 'ghost', name: 'q', data: '2' });
        assert.equal(await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS }), null);
        assert.equal((await provider.getQueueDepths()).orchestratorQueue, 0, 'deleted');
        assert.deepEqual(await provider.listExecutions('ghost'), [], 'no executions row');
        assert.equal(await provider.getInstanceInfo('ghost'), null);
        await seedInstance(provider, 'real');
        await provider.enqueueOrchestratorWork({ type: 'QueueMessage', instance: 'real', name: 'q', data: '3' });
        assert.deepEqual(
          (await fetchItem(provider, 'real')).messages.map((m) => m.type),
          ['QueueMessage'],
        );
      }));

    it('an orphan batch does not hide work queued behind it', () =>
      withHarness(factory, async ({ provider }) => {
        await provider.enqueueOrchestratorWork({ type: 'QueueMessage', instance: 'ghost', name: 'q', data: '1' });
        await provider.enqueueOrchestratorWork(startItem('behind'));
        await fetchItem(provider, 'behind');
      }));
  });

  describe(`${factory.name}: poison attempt counts`, () => {
    it(
      'counts orchestration deliveries, gives them back on ignoreAttempt (never ' +
        'below zero), reports the batch max',
      () =>
        withHarness(factory, async ({ provider }) => {
          await provider.enqueueOrchestratorWork(startItem('poison'));
          let item = await fetchItem(provider, 'poison');
          assert.equal(item.attemptCount, 1);
          await provider.abandonOrchestrationItem(item.lockToken);
          item = await fetchItem(provider, 'poison');
          assert.equal(item.attemptCount, 2);
          await provider.abandonOrchestrationItem(item.lockToken, { ignoreAttempt: true });
          item = await fetchItem(provider, 'poison');
          assert.equal(item.attemptCount, 2, 'ignoreAttempt gave the delivery back');
          await provider.abandonOrchestrationItem(item.lockToken);
          await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'poison', name: 'e', data: '1' });
          item = await fetchItem(provider, 'poison');
          assert.equal(item.attemptCount, 3, 'max over a batch of old and new messages');
          for (let i = 0; i < 6; i += 1) {
            await provider.abandonOrchestrationItem(item.lockToken, { ignoreAttempt: true });
            item = await fetchItem(provider, 'poison');
          }
          assert.equal(item.attemptCount, 3, 'ignored deliveries do not accumulate');
          await provider.ackOrchestrationItem(item.lockToken, turn('poison', { historyDelta: [started('poison')] }));
          await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'poison', name: 'e', data: '2' });
          assert.equal((await fetchItem(provider, 'poison')).attemptCount, 1, 'a new message starts at one');
        }),
    );

    it('counts work-item deliveries across lease expiry and ignoreAttempt never goes negative', () =>
      withHarness(factory, async ({ provider, advanceClock }) => {
        await provider.enqueueWorkerWork(activity('wp', 1));
        const fetch = () => provider.fetchWorkItem({ lockTimeoutMs: 1_000, tagFilter: { mode: 'any' } });
        assert.equal((await fetch())?.attemptCount, 1);
        await advanceClock(1_001);
        let lease = await fetch();
        assert.equal(lease?.attemptCount, 2);
        for (let i = 0; i < 4; i += 1) {
          await provider.abandonWorkItem(lease!.lockToken, { ignoreAttempt: true });
          lease = await fetch();
        }
        assert.equal(lease?.attemptCount, 2, 'ignored deliveries do not accumulate');
      }));
  });

  describe(`${factory.name}: tag filtering`, () => {
    it('serves exactly the tags each filter mode selects', () =>
      withHarness(factory, async ({ provider }) => {
        const load = async () => {
          for (const [i, tag] of [null, 'gpu', 'cpu', null, 'io'].entries())
            await provider.enqueueWorkerWork(activity('tags', i + 1, tag));
        };
        await load();
        assert.deepEqual(await drainTags(provider, { mode: 'none' }), []);
        assert.deepEqual(await drainTags(provider, { mode: 'defaultOnly' }), [null, null]);
        assert.deepEqual(await drainTags(provider, { mode: 'tags', tags: ['gpu', 'io'] }), ['gpu', 'io']);
        assert.deepEqual(await drainTags(provider, { mode: 'any' }), ['cpu']);
        await load();
        assert.deepEqual(await drainTags(provider, { mode: 'defaultAnd', tags: ['cpu'] }), [null, 'cpu', null]);
        assert.deepEqual(await drainTags(provider, { mode: 'tags', tags: [] }), []);
      }));

    it('keeps the tag through ack_orchestration_item and abandon', () =>
      withHarness(factory, async ({ provider }) => {
        await seedInstance(provider, 'tagged', { workerItems: [activity('tagged', 2, 'gpu')] });
        assert.equal(
          await provider.fetchWorkItem({ lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'defaultOnly' } }),
          null,
        );
        const lease = await provider.fetchWorkItem({
          lockTimeoutMs: LOCK_MS,
          tagFilter: { mode: 'tags', tags: ['gpu'] },
        });
        assert.equal(lease?.item.tag, 'gpu');
        await provider.abandonWorkItem(lease.lockToken);
        assert.deepEqual(await drainTags(provider, { mode: 'tags', tags: ['gpu'] }), ['gpu']);
      }));
  });

  describe(`${factory.name}: cancellation`, () => {
    it('withdraws cancelled activities even while a worker holds them (lock stealing)', () =>
      withHarness(factory, async ({ provider }) => {
        await seedInstance(provider, 'cx', { workerItems: [activity('cx', 2), activity('cx', 3), activity('cx', 4)] });
        const held = await provider.fetchWorkItem({ lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'any' } });
        assert.equal(held?.item.id, 2);
        await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'cx', name: 'stop', data: '1' });
        const item = await fetchItem(provider, 'cx');
        await provider.ackOrchestrationItem(
          item.lockToken,
          turn('cx', {
            cancelledActivities: [
              { instance: 'cx', executionId: 1, activityId: 2 },
              { instance: 'cx', executionId: 1, activityId: 3 },
              { instance: 'cx', executionId: 1, activityId: 99 },
            ],
          }),
        );
        await rejectsWith(provider.renewWorkItemLock(held.lockToken, LOCK_MS), 'lock_lost');
        await rejectsWith(
          provider.ackWorkItem(held.lockToken, {
            type: 'ActivityCompleted',
            instance: 'cx',
            executionId: 1,
            id: 2,
            result: '1',
          }),
          'lock_lost',
        );
        const left = await provider.fetchWorkItem({ lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'any' } });
        assert.equal(left?.item.id, 4);
        assert.equal(await provider.fetchWorkItem({ lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'any' } }), null);
      }));

    it('an activity scheduled and cancelled in the same turn is never queued', () =>
      withHarness(factory, async ({ provider }) => {
        await seedInstance(provider, 'same', {
          workerItems: [activity('same', 2)],
          cancelledActivities: [{ instance: 'same', executionId: 1, activityId: 2 }],
        });
        assert.equal((await provider.getQueueDepths()).workerQueue, 0);
      }));

    it('ack without completion deletes the item; activities of unknown instances still run', () =>
      withHarness(factory, async ({ provider }) => {
        await provider.enqueueWorkerWork(activity('gone', 1));
        const lease = await provider.fetchWorkItem({ lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'any' } });
        assert.equal(lease?.orchestrationName, 'unknown');
        assert.equal(lease?.orchestrationVersion, 'unknown');
        await provider.ackWorkItem(lease.lockToken, null);
        assert.deepEqual(await provider.getQueueDepths(), { orchestratorQueue: 0, workerQueue: 0, timerQueue: 0 });
      }));
  });
}
