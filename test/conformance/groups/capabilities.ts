/** Capability filtering by pinned Durox version (docs/runtime.md, "Registration and versions"). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HistoryEvent } from '../../../src/core/types';
import type { Provider, VersionRange } from '../../../src/provider/contract';
import { withHarness, type ProviderTestFactory } from '../harness';
import { event, fetchItem, LOCK_MS, rejectsWith, started, startItem, turn } from '../fixtures';

function startedAt(instanceId: string, duroxVersion: string, executionId = 1): HistoryEvent {
  return { ...started(instanceId, executionId), duroxVersion };
}

/** Creates instances whose execution 1 was started by Durox `duroxVersion`, then queues one message for each. */
async function pinned(
  provider: Provider,
  ...instances: Array<[instanceId: string, duroxVersion: string]>
): Promise<void> {
  for (const [instanceId, duroxVersion] of instances) {
    await provider.enqueueOrchestratorWork(startItem(instanceId));
    const item = await fetchItem(provider, instanceId);
    await provider.ackOrchestrationItem(
      item.lockToken,
      turn(instanceId, { historyDelta: [startedAt(instanceId, duroxVersion)] }),
    );
  }
  for (const [instanceId] of instances) {
    await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: instanceId, name: 'e', data: '1' });
  }
}

function fetchIn(provider: Provider, versionRange: VersionRange | null) {
  return provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS, versionRange });
}

export function defineCapabilityTests(factory: ProviderTestFactory): void {
  describe(`${factory.name}: capability filtering`, () => {
    it('serves only instances pinned inside the inclusive range; no filter serves all', () =>
      withHarness(factory, async ({ provider }) => {
        await pinned(provider, ['v1', '1.0.0'], ['v1-top', '1.9.99'], ['v2', '2.0.0']);
        const v1 = { min: '1.0.0', max: '1.9.99' };
        const first = await fetchIn(provider, v1);
        const second = await fetchIn(provider, v1);
        assert.deepEqual([first?.instanceId, second?.instanceId].sort(), ['v1', 'v1-top'], 'both ends are inclusive');
        assert.equal(await fetchIn(provider, v1), null, '2.0.0 is outside');
        assert.equal((await fetchIn(provider, { min: '2.0.0', max: '2.0.0' }))?.instanceId, 'v2');
        await provider.abandonOrchestrationItem(first!.lockToken);
        assert.equal((await fetchIn(provider, null))?.instanceId, first!.instanceId, 'no filter serves any version');
      }));

    it('a skipped instance is never locked, and a second filtered fetch of a locked one gets nothing', () =>
      withHarness(factory, async ({ provider, openPeer }) => {
        const peer = await openPeer();
        await pinned(provider, ['new', '3.1.0']);
        assert.equal(await fetchIn(provider, { min: '0.0.0', max: '3.0.99' }), null);
        const item = await fetchIn(peer, { min: '3.0.0', max: '3.99.0' });
        assert.equal(item?.instanceId, 'new', 'a compatible fetcher gets it at once');
        assert.equal(item?.attemptCount, 1, 'the incompatible fetch counted no delivery');
        assert.equal(await fetchIn(provider, { min: '3.0.0', max: '3.99.0' }), null);
      }));

    it('unpinned executions (new instances, no or bad version) match every range', () =>
      withHarness(factory, async ({ provider }) => {
        await provider.enqueueOrchestratorWork(startItem('brand-new'));
        assert.equal((await fetchIn(provider, { min: '9.0.0', max: '9.0.0' }))?.instanceId, 'brand-new');
        await pinned(provider, ['odd', 'not-a-version']);
        assert.equal((await fetchIn(provider, { min: '9.0.0', max: '9.0.0' }))?.instanceId, 'odd');
      }));

    it('the pinned version stays for the execution, and a continue-as-new execution gets its own', () =>
      withHarness(factory, async ({ provider }) => {
        await pinned(provider, ['can', '1.0.0']);
        let item = await fetchIn(provider, { min: '1.0.0', max: '1.0.0' });
        await provider.ackOrchestrationItem(
          item!.lockToken,
          turn('can', { historyDelta: [event('can', 1, 2, { kind: 'CustomStatusUpdated', status: 'x' })] }),
        );
        await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'can', name: 'e', data: '1' });
        item = await fetchIn(provider, { min: '1.0.0', max: '1.0.0' });
        assert.ok(item, 'later acks keep the pinned version');
        await provider.ackOrchestrationItem(
          item.lockToken,
          turn('can', {
            historyDelta: [event('can', 1, 3, { kind: 'OrchestrationContinuedAsNew', input: '1' })],
            orchestratorItems: [
              {
                type: 'ContinueAsNew',
                instance: 'can',
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
        item = await fetchIn(provider, { min: '1.0.0', max: '1.0.0' });
        await provider.ackOrchestrationItem(
          item!.lockToken,
          turn('can', { executionId: 2, historyDelta: [startedAt('can', '2.0.0', 2)] }),
        );
        await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'can', name: 'e', data: '2' });
        assert.equal(
          await fetchIn(provider, { min: '1.0.0', max: '1.99.99' }),
          null,
          'execution 2 inherits nothing from execution 1',
        );
        assert.equal((await fetchIn(provider, { min: '2.0.0', max: '2.0.0' }))?.executionId, 2);
      }));

    it(
      'the filter runs before history is decoded: an excluded corrupted instance ' +
        'yields nothing, not a history error',
      () =>
        withHarness(factory, async ({ provider, corruptHistory }) => {
          await pinned(provider, ['broken', '99.0.0']);
          await corruptHistory('broken');
          assert.equal(await fetchIn(provider, { min: '0.0.0', max: '1.0.0' }), null);
          const item = await fetchIn(provider, null);
          assert.ok(item?.historyError, 'without a filter the corruption is reported under a held lock');
        }),
    );

    it('refuses malformed ranges before any SQL', () =>
      withHarness(factory, async ({ provider }) => {
        for (const range of [
          { min: '1.0', max: '2.0.0' },
          { min: '1.0.0', max: 'latest' },
          { min: '', max: '1.0.0' },
        ]) {
          await rejectsWith(fetchIn(provider, range), 'invalid_argument', 'fetch_orchestration_item');
        }
      }));
  });
}
