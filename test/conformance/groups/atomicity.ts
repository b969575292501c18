/** Atomicity, error handling and instance creation. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { withHarness, type ProviderTestFactory } from '../harness';
import { activity, event, fetchItem, LOCK_MS, rejectsWith, seedInstance, started, startItem, turn } from '../fixtures';

export function defineAtomicityTests(factory: ProviderTestFactory): void {
  describe(`${factory.name}: atomicity`, () => {
    it('a turn with a duplicate event id rolls back entirely and keeps the lock', () =>
      withHarness(factory, async ({ provider, advanceClock }) => {
        await seedInstance(provider, 'dup');
        await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'dup', name: 'e', data: '1' });
        const item = await fetchItem(provider, 'dup');
        const error = await rejectsWith(
          provider.ackOrchestrationItem(
            item.lockToken,
            turn('dup', {
              historyDelta: [started('dup')],
              workerItems: [activity('dup', 2)],
              metadata: { orchestrationName: 'Orch', orchestrationVersion: '1.0.0', status: 'Completed', output: 'x' },
            }),
          ),
          'conflict',
          'ack_orchestration_item',
        );
        assert.equal(error.instanceId, 'dup');
        assert.equal((await provider.readHistory('dup')).length, 1);
        assert.equal(await provider.fetchWorkItem({ lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'any' } }), null);
        assert.equal((await provider.getInstanceStatus('dup')).status, 'Running');
        assert.equal(await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS }), null, 'lock still held');
        await advanceClock(LOCK_MS + 1);
        const again = await fetchItem(provider, 'dup');
        assert.equal(again.attemptCount, 2);
        assert.equal(again.messages.length, 1);
      }));

    it('commits history, activities, timers and messages of one turn together', () =>
      withHarness(factory, async ({ provider }) => {
        await provider.enqueueOrchestratorWork(startItem('multi'));
        const item = await fetchItem(provider, 'multi');
        await provider.ackOrchestrationItem(
          item.lockToken,
          turn('multi', {
            historyDelta: [
              started('multi'),
              event('multi', 1, 2, { kind: 'ActivityScheduled', name: 'Act', input: '1' }),
              event('multi', 1, 3, { kind: 'ActivityScheduled', name: 'Act', input: '2' }),
              event('multi', 1, 4, { kind: 'ActivityScheduled', name: 'Act', input: '3' }),
              event('multi', 1, 5, { kind: 'TimerCreated', fireAtMs: 1 }),
            ],
            workerItems: [activity('multi', 2), activity('multi', 3), activity('multi', 4)],
            orchestratorItems: [
              { type: 'TimerFired', instance: 'multi', executionId: 1, id: 5, fireAtMs: 1 },
              { type: 'ExternalRaised', instance: 'multi', name: 'go', data: '"d"' },
            ],
          }),
        );
        assert.deepEqual(
          (await provider.readHistory('multi')).map((e) => e.eventId),
          [1, 2, 3, 4, 5],
        );
        const ids: number[] = [];
        for (;;) {
          const lease = await provider.fetchWorkItem({ lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'defaultOnly' } });
          if (lease === null) break;
          ids.push(lease.item.id);
        }
        assert.deepEqual(ids, [2, 3, 4]);
        const next = await fetchItem(provider, 'multi');
        assert.deepEqual(
          next.messages.map((m) => m.type),
          ['TimerFired', 'ExternalRaised'],
        );
      }));

    it('an ack with a bogus token fails and leaves the real lock in place', () =>
      withHarness(factory, async ({ provider, advanceClock }) => {
        await provider.enqueueOrchestratorWork(startItem('bogus'));
        await fetchItem(provider, 'bogus');
        const error = await rejectsWith(provider.ackOrchestrationItem('no-such-token', turn('bogus')), 'lock_lost');
        assert.match(error.message, /Invalid lock token/);
        await rejectsWith(
          provider.abandonOrchestrationItem('no-such-token'),
          'lock_lost',
          'abandon_orchestration_item',
        );
        assert.equal(await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS }), null);
        await advanceClock(LOCK_MS + 1);
        await fetchItem(provider, 'bogus');
      }));

    it('of two acks with the same token exactly one succeeds', () =>
      withHarness(factory, async ({ provider }) => {
        await provider.enqueueOrchestratorWork(startItem('twice'));
        const item = await fetchItem(provider, 'twice');
        const ack = turn('twice', { historyDelta: [started('twice')] });
        const results = await Promise.allSettled([
          provider.ackOrchestrationItem(item.lockToken, ack),
          provider.ackOrchestrationItem(item.lockToken, ack),
        ]);
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
        assert.equal((await provider.readHistory('twice')).length, 1);
      }));
  });

  describe(`${factory.name}: error handling`, () => {
    it('an empty store yields no work and empty reads', () =>
      withHarness(factory, async ({ provider }) => {
        assert.equal(await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS }), null);
        assert.equal(await provider.fetchWorkItem({ lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'any' } }), null);
        assert.deepEqual(await provider.readHistory('nobody'), []);
        assert.deepEqual(await provider.listExecutions('nobody'), []);
      }));

    it('an ack after the lock expired is refused', () =>
      withHarness(factory, async ({ provider, advanceClock }) => {
        await provider.enqueueOrchestratorWork(startItem('late'));
        const item = await fetchItem(provider, 'late');
        await advanceClock(LOCK_MS + 1);
        await rejectsWith(
          provider.ackOrchestrationItem(item.lockToken, turn('late', { historyDelta: [started('late')] })),
          'lock_lost',
        );
        assert.equal(await provider.getInstanceInfo('late'), null);
      }));

    it('corrupted history: fetch reports historyError under a held lock, readHistory fails', () =>
      withHarness(factory, async ({ provider, corruptHistory }) => {
        await seedInstance(provider, 'rot');
        await corruptHistory('rot');
        await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'rot', name: 'e', data: '1' });
        const item = await fetchItem(provider, 'rot');
        assert.ok(item.historyError, 'historyError set');
        assert.deepEqual(item.history, []);
        assert.equal(await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS }), null, 'lock held');
        await rejectsWith(provider.readHistory('rot'), 'internal', 'read_history');
        await rejectsWith(provider.readHistory('rot', 1), 'internal', 'read_history');
        await provider.abandonOrchestrationItem(item.lockToken);
      }));

    it('refuses bad input before writing anything, naming the operation and the instance', () =>
      withHarness(factory, async ({ provider }) => {
        await rejectsWith(
          provider.enqueueOrchestratorWork(startItem('')),
          'invalid_argument',
          'enqueue_orchestrator_work',
        );
        await provider.enqueueOrchestratorWork(startItem('bad'));
        const item = await fetchItem(provider, 'bad');
        const error = await rejectsWith(
          provider.ackOrchestrationItem(
            item.lockToken,
            turn('bad', {
              historyDelta: [started('bad'), event('bad', 1, 2, { kind: 'CustomStatusUpdated', status: 'a\u0000b' })],
            }),
          ),
          'invalid_argument',
          'ack_orchestration_item',
        );
        assert.equal(error.instanceId, 'bad');
        await rejectsWith(
          provider.ackOrchestrationItem(item.lockToken, turn('bad', { executionId: 0 })),
          'invalid_argument',
        );
        await rejectsWith(provider.renewOrchestrationItemLock(item.lockToken, -5), 'invalid_argument');
        assert.equal(await provider.getInstanceInfo('bad'), null);
        await provider.ackOrchestrationItem(item.lockToken, turn('bad', { historyDelta: [started('bad')] }));
      }));

    it('payloads with NUL escapes and odd characters round-trip byte for byte', () =>
      withHarness(factory, async ({ provider }) => {
        const input = JSON.stringify({ text: 'nul\u0000 quote" slash\\ emoji 😀', order: { z: 1, a: 2 } });
        await provider.enqueueOrchestratorWork(startItem('nul', { input }));
        const item = await fetchItem(provider, 'nul');
        assert.equal(item.messages[0].type === 'StartOrchestration' && item.messages[0].input, input);
        const first = event('nul', 1, 1, { kind: 'OrchestrationStarted', name: 'Orch', version: '1.0.0', input });
        await provider.ackOrchestrationItem(item.lockToken, turn('nul', { historyDelta: [first] }));
        const [stored] = await provider.readHistory('nul');
        assert.equal(stored.kind === 'OrchestrationStarted' && stored.input, input);
        assert.deepEqual(Object.keys(stored), Object.keys(first), 'key order kept');
      }));
  });

  describe(`${factory.name}: instance creation`, () => {
    it('derives a new instance from its start message and creates it only on ack', () =>
      withHarness(factory, async ({ provider }) => {
        await provider.enqueueOrchestratorWork(startItem('fresh', { orchestration: 'Fresh' }));
        assert.equal(await provider.getInstanceInfo('fresh'), null, 'enqueue creates nothing');
        const item = await fetchItem(provider, 'fresh');
        assert.equal(item.orchestrationName, 'Fresh');
        assert.equal(item.orchestrationVersion, null);
        assert.equal(item.executionId, 1);
        assert.deepEqual(item.history, []);
        assert.equal(item.attemptCount, 1);
        await provider.ackOrchestrationItem(
          item.lockToken,
          turn('fresh', {
            historyDelta: [started('fresh', 1, 'Fresh')],
            metadata: { orchestrationName: 'Fresh', orchestrationVersion: '2.0.0' },
          }),
        );
        await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'fresh', name: 'e', data: '1' });
        const next = await fetchItem(provider, 'fresh');
        assert.equal(next.orchestrationVersion, '2.0.0');
        assert.equal(next.history.length, 1);
        assert.equal(next.history[0].kind, 'OrchestrationStarted');
      }));

    it('creates a sub-orchestration with its parent through its own ack', () =>
      withHarness(factory, async ({ provider }) => {
        const child = 'parent-instance::child-instance';
        await provider.enqueueOrchestratorWork(
          startItem(child, { parentInstance: 'parent-instance', parentId: 2, parentExecutionId: 1 }),
        );
        const item = await fetchItem(provider, child);
        await provider.ackOrchestrationItem(
          item.lockToken,
          turn(child, {
            historyDelta: [started(child)],
            metadata: { orchestrationName: 'Orch', orchestrationVersion: '1.5.0', parentInstanceId: 'parent-instance' },
          }),
        );
        const info = await provider.getInstanceInfo(child);
        assert.equal(info?.orchestrationVersion, '1.5.0');
        assert.equal(info?.parentInstanceId, 'parent-instance');
      }));

    it('early messages of a not yet started instance wait for their start', () =>
      withHarness(factory, async ({ provider }) => {
        await provider.enqueueOrchestratorWork({ type: 'CancelInstance', instance: 'early', reason: 'stop' });
        assert.equal(await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS }), null);
        assert.equal((await provider.getQueueDepths()).orchestratorQueue, 1, 'kept');
        await provider.enqueueOrchestratorWork(startItem('early'));
        const item = await fetchItem(provider, 'early');
        assert.deepEqual(
          item.messages.map((m) => m.type),
          ['CancelInstance', 'StartOrchestration'],
        );
      }));
  });
}
