/**
 * Deletion, pruning, bulk deletion, instance trees and per-instance statistics, including what
 * deletion and pruning do to key-value state (docs/provider-contract.md, "The operations").
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HistoryEventData } from '../../../src/core/types';
import type { ExecutionMetadata, Provider } from '../../../src/provider/contract';
import { withHarness, type ProviderTestFactory } from '../harness';
import { activity, event, fetchItem, rejectsWith, seedInstance, started, startItem, turn } from '../fixtures';

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
  await provider.ackOrchestrationItem(
    item.lockToken,
    turn(instanceId, {
      executionId,
      historyDelta: data.map((d, i) => event(instanceId, executionId, firstId + i, d)),
      metadata: { orchestrationName: 'Orch', orchestrationVersion: '1.0.0', ...metadata },
    }),
  );
}

async function complete(provider: Provider, instanceId: string, executionId = 1, firstId = 2): Promise<void> {
  await runTurn(
    provider,
    instanceId,
    firstId,
    [{ kind: 'OrchestrationCompleted', output: '"done"' }],
    { status: 'Completed', output: '"done"' },
    executionId,
  );
}

async function fail(provider: Provider, instanceId: string): Promise<void> {
  const details = { category: 'application', kind: 'OrchestrationFailed', message: 'boom', retryable: false } as const;
  await runTurn(provider, instanceId, 2, [{ kind: 'OrchestrationFailed', details }], {
    status: 'Failed',
    output: 'boom',
  });
}

/** Creates a sub-orchestration `childId` of `parentId` (left Running). */
async function seedChild(provider: Provider, parentId: string, childId: string): Promise<void> {
  await provider.enqueueOrchestratorWork(
    startItem(childId, { parentInstance: parentId, parentId: 2, parentExecutionId: 1 }),
  );
  const item = await fetchItem(provider, childId);
  await provider.ackOrchestrationItem(
    item.lockToken,
    turn(childId, {
      historyDelta: [started(childId)],
      metadata: { orchestrationName: 'Orch', orchestrationVersion: '1.0.0', parentInstanceId: parentId },
    }),
  );
}

/** Ends the current execution with continue-as-new and starts the next one (left Running). */
async function continueAsNew(provider: Provider, instanceId: string, executionId: number): Promise<void> {
  await runTurn(
    provider,
    instanceId,
    2,
    [{ kind: 'OrchestrationContinuedAsNew', input: '1' }],
    { status: 'ContinuedAsNew', output: '1' },
    executionId,
  );
  await provider.enqueueOrchestratorWork({
    type: 'ContinueAsNew',
    instance: instanceId,
    orchestration: 'Orch',
    input: '1',
    version: '1.0.0',
    carryForwardEvents: [],
    initialCustomStatus: null,
  });
  const item = await fetchItem(provider, instanceId);
  await provider.ackOrchestrationItem(
    item.lockToken,
    turn(instanceId, { executionId: executionId + 1, historyDelta: [started(instanceId, executionId + 1)] }),
  );
}

const set = (key: string, value: string): HistoryEventData => ({
  kind: 'KeyValueSet',
  key,
  value,
  lastUpdatedAtMs: 42,
});

export function defineDeletionTests(factory: ProviderTestFactory): void {
  describe(`${factory.name}: deletion`, () => {
    it('deletes completed and failed instances with everything they own and exact counts; the id can be reused', () =>
      withHarness(factory, async ({ provider }) => {
        await seedInstance(provider, 'done');
        await runTurn(provider, 'done', 2, [set('k', 'v')]);
        await complete(provider, 'done', 1, 3);
        await seedInstance(provider, 'failed');
        await fail(provider, 'failed');
        await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'done', name: 'late', data: '1' });
        await provider.enqueueWorkerWork(activity('done', 9));
        const result = await provider.deleteInstance('done');
        assert.deepEqual(result, {
          instancesDeleted: 1,
          executionsDeleted: 1,
          eventsDeleted: 3,
          queueMessagesDeleted: 2,
        });
        assert.equal((await provider.getInstanceStatus('done')).status, 'NotFound');
        assert.equal(await provider.getInstanceInfo('done'), null);
        assert.deepEqual(await provider.getKvAllValues('done'), {}, 'KV goes with the instance');
        assert.deepEqual(await provider.getQueueDepths(), { orchestratorQueue: 0, workerQueue: 0, timerQueue: 0 });
        assert.equal((await provider.deleteInstance('failed')).instancesDeleted, 1);
        assert.deepEqual(await provider.listInstances(), []);
        await seedInstance(provider, 'done');
        assert.equal((await provider.getInstanceStatus('done')).status, 'Running', 'the id is reusable');
        assert.equal(await provider.getKvValue('done', 'k'), null, 'no KV leaks into the new instance');
      }));

    it('refuses a running instance unless forced, an unknown one, and a sub-orchestration even with force', () =>
      withHarness(factory, async ({ provider }) => {
        await seedInstance(provider, 'run');
        const running = await rejectsWith(provider.deleteInstance('run'), 'conflict', 'delete_instance');
        assert.match(running.message, /Instance run is still running\. Use force=true or cancel first\./);
        const missing = await rejectsWith(provider.deleteInstance('ghost'), 'not_found', 'delete_instance');
        assert.match(missing.message, /Instance ghost not found/);
        await seedChild(provider, 'run', 'run::child');
        for (const force of [false, true]) {
          const child = await rejectsWith(provider.deleteInstance('run::child', { force }), 'invalid_argument');
          assert.match(
            child.message,
            /Cannot delete sub-orchestration run::child directly\. Delete the root orchestration instead\./,
          );
        }
        assert.equal((await provider.getInstanceStatus('run')).status, 'Running', 'refusals write nothing');
        assert.equal((await provider.deleteInstance('run', { force: true })).instancesDeleted, 2);
      }));

    it('cascades through a three-level tree with several children and aggregates the counts', () =>
      withHarness(factory, async ({ provider }) => {
        await seedInstance(provider, 'root');
        await seedChild(provider, 'root', 'c1');
        await seedChild(provider, 'root', 'c2');
        await seedChild(provider, 'c1', 'g1');
        await seedInstance(provider, 'bystander');
        const tree = await provider.getInstanceTree('root');
        assert.equal(tree.rootId, 'root');
        assert.equal(tree.allIds[0], 'root');
        assert.deepEqual([...tree.allIds].sort(), ['c1', 'c2', 'g1', 'root']);
        assert.deepEqual(
          await provider.getInstanceTree('g1'),
          { rootId: 'g1', allIds: ['g1'] },
          'a leaf is its own tree',
        );
        await rejectsWith(provider.getInstanceTree('ghost'), 'not_found', 'get_instance_tree');
        for (const id of ['g1', 'c1', 'c2', 'root']) await complete(provider, id);
        assert.deepEqual(await provider.deleteInstance('root'), {
          instancesDeleted: 4,
          executionsDeleted: 4,
          eventsDeleted: 8,
          queueMessagesDeleted: 0,
        });
        assert.deepEqual(await provider.listInstances(), ['bystander']);
      }));

    it("a force delete during a turn makes that turn's ack fail and the instance is not recreated; a stale activity ack fails too", () =>
      withHarness(factory, async ({ provider }) => {
        await seedInstance(provider, 'zombie');
        await provider.enqueueWorkerWork(activity('zombie', 2));
        const lease = await provider.fetchWorkItem({ lockTimeoutMs: 30_000, tagFilter: { mode: 'defaultOnly' } });
        await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'zombie', name: 'e', data: '1' });
        const item = await fetchItem(provider, 'zombie');
        await provider.deleteInstance('zombie', { force: true });
        await rejectsWith(
          provider.ackOrchestrationItem(
            item.lockToken,
            turn('zombie', { historyDelta: [event('zombie', 1, 2, set('k', 'v'))] }),
          ),
          'lock_lost',
        );
        assert.equal(await provider.getInstanceInfo('zombie'), null, 'not recreated by the late ack');
        await seedInstance(provider, 'zombie');
        await rejectsWith(
          provider.ackWorkItem(lease!.lockToken, {
            type: 'ActivityCompleted',
            instance: 'zombie',
            executionId: 1,
            id: 2,
            result: '1',
          }),
          'lock_lost',
        );
        assert.equal(
          (await provider.getQueueDepths()).orchestratorQueue,
          0,
          'the stale result never reaches the new instance',
        );
      }));

    it(
      'deleteInstances deletes exactly the listed ids atomically, refuses running ' +
        'ones unless forced and detects orphans',
      () =>
        withHarness(factory, async ({ provider }) => {
          await seedInstance(provider, 'p');
          await seedChild(provider, 'p', 'p::c');
          await seedInstance(provider, 'solo');
          await rejectsWith(provider.deleteInstances(['solo', 'p']), 'conflict', 'delete_instances');
          const orphan = await rejectsWith(
            provider.deleteInstances(['p'], { force: true }),
            'conflict',
            'delete_instances',
          );
          assert.match(orphan.message, /Orphan detected/);
          assert.equal((await provider.listInstances()).length, 3, 'nothing deleted by a refused call');
          assert.deepEqual(await provider.deleteInstances([], { force: true }), {
            instancesDeleted: 0,
            executionsDeleted: 0,
            eventsDeleted: 0,
            queueMessagesDeleted: 0,
          });
          const result = await provider.deleteInstances(['p', 'p::c', 'solo', 'ghost'], { force: true });
          assert.equal(result.instancesDeleted, 3);
          assert.equal(result.eventsDeleted, 3);
        }),
    );
  });

  describe(`${factory.name}: bulk deletion`, () => {
    it(
      'deletes terminal roots by ids, completedBefore and limit (ANDed), skips ' + 'running ones, cascades to children',
      () =>
        withHarness(factory, async ({ provider, advanceClock }) => {
          for (const id of ['a', 'b', 'c']) {
            await seedInstance(provider, id);
            await complete(provider, id);
          }
          await seedChild(provider, 'a', 'a::child');
          await complete(provider, 'a::child');
          await advanceClock(60_000);
          const cutoff = (await fetchNow(provider)) - 1;
          await seedInstance(provider, 'late');
          await complete(provider, 'late');
          await seedInstance(provider, 'running');
          const none = { instancesDeleted: 0, executionsDeleted: 0, eventsDeleted: 0, queueMessagesDeleted: 0 };
          assert.deepEqual(
            await provider.deleteInstanceBulk({ instanceIds: [] }),
            none,
            'an empty id list selects nothing',
          );
          assert.deepEqual(await provider.deleteInstanceBulk({ instanceIds: ['ghost'] }), none);
          assert.deepEqual(
            await provider.deleteInstanceBulk({ instanceIds: ['running'] }),
            none,
            'running roots are skipped',
          );
          assert.deepEqual(await provider.deleteInstanceBulk({ instanceIds: ['late', 'b'], completedBefore: cutoff }), {
            ...none,
            instancesDeleted: 1,
            executionsDeleted: 1,
            eventsDeleted: 2,
          });
          assert.equal(
            (await provider.deleteInstanceBulk({ completedBefore: cutoff, limit: 1 })).instancesDeleted,
            2,
            'a takes its child along',
          );
          assert.deepEqual((await provider.listInstances()).sort(), ['c', 'late', 'running']);
          assert.equal(
            (await provider.deleteInstanceBulk({})).instancesDeleted,
            2,
            'an empty filter deletes every terminal root',
          );
          assert.deepEqual(await provider.listInstances(), ['running']);
        }),
    );
  });

  describe(`${factory.name}: prune`, () => {
    it('keeps the newest keepLast executions, never the current or a running one, and keeps instance KV', () =>
      withHarness(factory, async ({ provider }) => {
        await seedInstance(provider, 'many');
        await runTurn(provider, 'many', 2, [set('from-e1', 'kept')]);
        await runTurn(provider, 'many', 3, [{ kind: 'OrchestrationContinuedAsNew', input: '1' }], {
          status: 'ContinuedAsNew',
          output: '1',
        });
        await provider.enqueueOrchestratorWork({
          type: 'ContinueAsNew',
          instance: 'many',
          orchestration: 'Orch',
          input: '1',
          version: '1.0.0',
          carryForwardEvents: [],
          initialCustomStatus: null,
        });
        const second = await fetchItem(provider, 'many');
        await provider.ackOrchestrationItem(
          second.lockToken,
          turn('many', { executionId: 2, historyDelta: [started('many', 2)] }),
        );
        await continueAsNew(provider, 'many', 2);
        await continueAsNew(provider, 'many', 3);
        assert.deepEqual(await provider.listExecutions('many'), [1, 2, 3, 4]);
        assert.deepEqual(await provider.pruneExecutions('many', { keepLast: 2 }), {
          instancesProcessed: 1,
          executionsDeleted: 2,
          eventsDeleted: 5,
        });
        assert.deepEqual(await provider.listExecutions('many'), [3, 4]);
        for (const keepLast of [undefined, 0, 1]) {
          await provider.pruneExecutions('many', keepLast === undefined ? {} : { keepLast });
          assert.deepEqual(
            await provider.listExecutions('many'),
            [4],
            `keepLast ${String(keepLast)} keeps only the current execution`,
          );
        }
        assert.equal((await provider.getInstanceStatus('many')).status, 'Running', 'a running instance keeps running');
        assert.equal(
          await provider.getKvValue('many', 'from-e1'),
          'kept',
          'KV is instance-scoped and survives pruning',
        );
        await rejectsWith(provider.pruneExecutions('ghost'), 'not_found', 'prune_executions');
        await rejectsWith(provider.pruneExecutions('many', { keepLast: -1 }), 'invalid_argument');
      }));

    it('completedBefore only prunes executions that ended before the cutoff', () =>
      withHarness(factory, async ({ provider, advanceClock }) => {
        await seedInstance(provider, 'timed');
        await continueAsNew(provider, 'timed', 1);
        await advanceClock(60_000);
        const cutoff = await fetchNow(provider);
        await continueAsNew(provider, 'timed', 2);
        assert.equal((await provider.pruneExecutions('timed', { completedBefore: cutoff })).executionsDeleted, 1);
        assert.deepEqual(await provider.listExecutions('timed'), [2, 3]);
      }));

    it('bulk prune processes matching instances in one call, running ones included, and respects the limit', () =>
      withHarness(factory, async ({ provider }) => {
        for (const id of ['x', 'y', 'z']) {
          await seedInstance(provider, id);
          await continueAsNew(provider, id, 1);
          await continueAsNew(provider, id, 2);
        }
        assert.deepEqual(await provider.pruneExecutionsBulk({ instanceIds: ['x', 'ghost'] }), {
          instancesProcessed: 1,
          executionsDeleted: 2,
          eventsDeleted: 4,
        });
        assert.deepEqual(await provider.listExecutions('x'), [3]);
        assert.equal((await provider.pruneExecutionsBulk({ instanceIds: [] })).instancesProcessed, 0);
        const limited = await provider.pruneExecutionsBulk({ limit: 2 }, { keepLast: 2 });
        assert.equal(limited.instancesProcessed, 2);
        assert.equal(limited.executionsDeleted, 1, 'x has nothing left to prune; y keeps two of three');
        assert.equal((await provider.getInstanceStatus('z')).status, 'Running');
      }));
  });

  describe(`${factory.name}: instance statistics`, () => {
    it("reports the current execution's history and the merged KV view; null for an unknown instance", () =>
      withHarness(factory, async ({ provider }) => {
        assert.equal(await provider.getInstanceStats('ghost'), null);
        await seedInstance(provider, 'st');
        await runTurn(provider, 'st', 2, [set('a', 'xyz'), set('b', 'é')]);
        let stats = await provider.getInstanceStats('st');
        assert.equal(stats?.historyEventCount, 3);
        assert.ok((stats?.historySizeBytes ?? 0) > 100);
        assert.equal(stats?.kvUserKeyCount, 2);
        assert.equal(stats?.kvTotalValueBytes, 5, 'UTF-8 bytes of the values');
        assert.equal(stats?.queuePendingCount, 0);
        await runTurn(provider, 'st', 4, [{ kind: 'KeyValueCleared', key: 'a' }]);
        await complete(provider, 'st', 1, 5);
        stats = await provider.getInstanceStats('st');
        assert.equal(stats?.kvUserKeyCount, 1, 'tombstones hide cleared keys');
        assert.equal(stats?.kvTotalValueBytes, 2);
        assert.equal(stats?.historyEventCount, 5);
      }));
  });
}

/** The store clock: the nowMs of a fetch of a throw-away instance. */
async function fetchNow(provider: Provider): Promise<number> {
  const id = `clock-${Math.random().toString(36).slice(2)}`;
  await provider.enqueueOrchestratorWork(startItem(id));
  const item = await fetchItem(provider, id);
  await provider.abandonOrchestrationItem(item.lockToken);
  await provider.deleteInstances([id]);
  return item.nowMs;
}
