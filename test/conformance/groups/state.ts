/** Management reads, instance status, custom status and the key-value store. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HistoryEvent, HistoryEventData } from '../../../src/core/types';
import type { ExecutionMetadata, Provider } from '../../../src/provider/contract';
import { withHarness, type ProviderTestFactory } from '../harness';
import { event, fetchItem, seedInstance, started, turn } from '../fixtures';

/** Runs one turn on an existing instance with the given events (ids from `firstId`). */
async function runTurn(
  provider: Provider,
  instanceId: string,
  firstId: number,
  data: HistoryEventData[],
  metadata: Partial<ExecutionMetadata> = {},
  executionId = 1,
): Promise<void> {
  await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: instanceId, name: 'tick', data: '1' });
  const item = await fetchItem(provider, instanceId);
  const historyDelta: HistoryEvent[] = data.map((d, i) => event(instanceId, executionId, firstId + i, d));
  await provider.ackOrchestrationItem(
    item.lockToken,
    turn(instanceId, {
      executionId,
      historyDelta,
      metadata: { orchestrationName: 'Orch', orchestrationVersion: '1.0.0', ...metadata },
    }),
  );
}

const set = (key: string, value: string): HistoryEventData => ({
  kind: 'KeyValueSet',
  key,
  value,
  lastUpdatedAtMs: 42,
});

export function defineStateTests(factory: ProviderTestFactory): void {
  describe(`${factory.name}: management and status`, () => {
    it('lists, describes and counts instances, executions and queues', () =>
      withHarness(factory, async ({ provider }) => {
        await seedInstance(provider, 'm1');
        await seedInstance(provider, 'm2');
        await runTurn(provider, 'm2', 2, [{ kind: 'OrchestrationCompleted', output: '"result"' }], {
          status: 'Completed',
          output: '"result"',
        });
        assert.deepEqual((await provider.listInstances()).sort(), ['m1', 'm2']);
        assert.deepEqual(await provider.listInstances({ status: 'Completed' }), ['m2']);
        assert.deepEqual(await provider.listInstances({ status: 'Running' }), ['m1']);
        assert.deepEqual(await provider.listExecutions('m2'), [1]);
        const info = await provider.getInstanceInfo('m2');
        assert.equal(info?.orchestrationName, 'Orch');
        assert.equal(info?.orchestrationVersion, '1.0.0');
        assert.equal(info?.currentExecutionId, 1);
        assert.equal(info?.status, 'Completed');
        assert.equal(info?.output, '"result"');
        assert.ok((info?.createdAt ?? 0) > 0 && (info?.updatedAt ?? 0) >= (info?.createdAt ?? 0));
        const execution = await provider.getExecutionInfo('m2', 1);
        assert.equal(execution?.status, 'Completed');
        assert.equal(execution?.eventCount, 2);
        assert.ok(execution?.completedAt);
        assert.equal(await provider.getExecutionInfo('m2', 7), null);
        assert.equal(await provider.getInstanceInfo('nope'), null);
        const metrics = await provider.getSystemMetrics();
        assert.deepEqual(metrics, {
          totalInstances: 2,
          totalExecutions: 2,
          runningInstances: 1,
          completedInstances: 1,
          failedInstances: 0,
          totalEvents: 3,
        });
        await provider.enqueueWorkerWork({
          type: 'ActivityExecute',
          instance: 'm1',
          executionId: 1,
          id: 9,
          name: 'A',
          input: '1',
          sessionId: null,
          tag: null,
        });
        await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'm1', name: 'x', data: '1' });
        assert.deepEqual(await provider.getQueueDepths(), { orchestratorQueue: 1, workerQueue: 1, timerQueue: 0 });
      }));

    it('reports NotFound, Running, Completed output and Failed error with its details', () =>
      withHarness(factory, async ({ provider }) => {
        assert.deepEqual(await provider.getInstanceStatus('none'), {
          status: 'NotFound',
          customStatus: null,
          customStatusVersion: 0,
        });
        await seedInstance(provider, 'ok');
        assert.equal((await provider.getInstanceStatus('ok')).status, 'Running');
        await runTurn(provider, 'ok', 2, [{ kind: 'OrchestrationCompleted', output: '42' }], {
          status: 'Completed',
          output: '42',
        });
        const done = await provider.getInstanceStatus('ok');
        assert.equal(done.status, 'Completed');
        assert.equal(done.output, '42');
        await seedInstance(provider, 'bad');
        const details = {
          category: 'application',
          kind: 'OrchestrationFailed',
          message: 'boom',
          retryable: false,
        } as const;
        await runTurn(provider, 'bad', 2, [{ kind: 'OrchestrationFailed', details }], {
          status: 'Failed',
          output: 'boom',
        });
        const failed = await provider.getInstanceStatus('bad');
        assert.equal(failed.status, 'Failed');
        assert.equal(failed.error, 'boom');
        assert.deepEqual(failed.errorDetails, details);
        assert.equal(failed.output, undefined);
      }));
  });

  describe(`${factory.name}: custom status`, () => {
    it('versions each turn that sets or clears it, keeps it otherwise, last value of a turn wins', () =>
      withHarness(factory, async ({ provider }) => {
        await seedInstance(provider, 'cs');
        assert.deepEqual(await provider.getInstanceStatus('cs'), {
          status: 'Running',
          customStatus: null,
          customStatusVersion: 0,
        });
        await runTurn(provider, 'cs', 2, [
          { kind: 'CustomStatusUpdated', status: 'step 1' },
          { kind: 'CustomStatusUpdated', status: 'progress' },
        ]);
        let status = await provider.getInstanceStatus('cs');
        assert.equal(status.customStatus, 'progress');
        assert.equal(status.customStatusVersion, 1);
        await runTurn(provider, 'cs', 4, []);
        status = await provider.getInstanceStatus('cs');
        assert.equal(status.customStatus, 'progress');
        assert.equal(status.customStatusVersion, 1);
        const item =
          (await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'cs', name: 'e', data: '1' }),
          await fetchItem(provider, 'cs'));
        assert.equal(item.customStatus, 'progress');
        await provider.ackOrchestrationItem(
          item.lockToken,
          turn('cs', { historyDelta: [event('cs', 1, 4, { kind: 'CustomStatusUpdated', status: null })] }),
        );
        status = await provider.getInstanceStatus('cs');
        assert.equal(status.customStatus, null);
        assert.equal(status.customStatusVersion, 2);
      }));
  });

  describe(`${factory.name}: key-value store`, () => {
    it('reads the delta over the store, with tombstones, clear-all and overwrite', () =>
      withHarness(factory, async ({ provider }) => {
        await seedInstance(provider, 'kv');
        assert.equal(await provider.getKvValue('kv', 'a'), null);
        await runTurn(provider, 'kv', 2, [set('a', '1'), set('b', '2'), set('a', '3'), set('empty', '')]);
        assert.equal(await provider.getKvValue('kv', 'a'), '3');
        assert.equal(await provider.getKvValue('kv', 'empty'), '', 'empty string is a value');
        assert.deepEqual(await provider.getKvAllValues('kv'), { a: '3', b: '2', empty: '' });
        await runTurn(provider, 'kv', 6, [
          { kind: 'KeyValueCleared', key: 'b' },
          { kind: 'KeyValueCleared', key: 'never' },
        ]);
        assert.equal(await provider.getKvValue('kv', 'b'), null);
        await runTurn(provider, 'kv', 8, [{ kind: 'OrchestrationCompleted', output: '1' }], {
          status: 'Completed',
          output: '1',
        });
        assert.deepEqual(await provider.getKvAllValues('kv'), { a: '3', empty: '' }, 'merged into the store');
        await seedInstance(provider, 'other');
        await runTurn(provider, 'other', 2, [set('a', 'other')]);
        assert.equal(await provider.getKvValue('kv', 'a'), '3', 'instances are isolated');
        assert.equal(await provider.getKvValue('nobody', 'a'), null);
      }));

    it('fetch snapshots show only state merged at the end of an earlier execution', () =>
      withHarness(factory, async ({ provider }) => {
        await seedInstance(provider, 'snap');
        await runTurn(provider, 'snap', 2, [set('k', 'v1'), set('s p.a/c€', 'odd key')]);
        await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'snap', name: 'e', data: '1' });
        let item = await fetchItem(provider, 'snap');
        assert.deepEqual(item.kvSnapshot, {}, 'current execution writes are not in the snapshot');
        await provider.ackOrchestrationItem(
          item.lockToken,
          turn('snap', {
            historyDelta: [event('snap', 1, 4, { kind: 'OrchestrationContinuedAsNew', input: '1' })],
            orchestratorItems: [
              {
                type: 'ContinueAsNew',
                instance: 'snap',
                orchestration: 'Orch',
                input: '1',
                version: '1.0.0',
                carryForwardEvents: [],
                initialCustomStatus: null,
              },
            ],
            metadata: {
              orchestrationName: 'Orch',
              orchestrationVersion: '1.0.0',
              status: 'ContinuedAsNew',
              output: '1',
            },
          }),
        );
        item = await fetchItem(provider, 'snap');
        assert.deepEqual(item.kvSnapshot, {
          k: { value: 'v1', lastUpdatedAtMs: 42 },
          's p.a/c€': { value: 'odd key', lastUpdatedAtMs: 42 },
        });
        await provider.ackOrchestrationItem(
          item.lockToken,
          turn('snap', {
            executionId: 2,
            historyDelta: [
              started('snap', 2),
              event('snap', 2, 2, { kind: 'KeyValuesCleared' }),
              event('snap', 2, 3, set('x', 'y')),
            ],
          }),
        );
        assert.deepEqual(
          await provider.getKvAllValues('snap'),
          { x: 'y' },
          'clear-all hides the store, later sets stay',
        );
        await runTurn(
          provider,
          'snap',
          4,
          [{ kind: 'OrchestrationCompleted', output: '1' }],
          { status: 'Completed', output: '1' },
          2,
        );
        await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'snap', name: 'e', data: '1' });
        assert.deepEqual((await fetchItem(provider, 'snap')).kvSnapshot, { x: { value: 'y', lastUpdatedAtMs: 42 } });
      }));

    it('stores a 64 KB value intact', () =>
      withHarness(factory, async ({ provider }) => {
        await seedInstance(provider, 'big');
        const value = 'ü'.repeat(32 * 1024);
        await runTurn(provider, 'big', 2, [set('big', value)]);
        assert.equal(await provider.getKvValue('big', 'big'), value);
      }));
  });
}
