/**
 * Fused start (docs/runtime.md, "Eager start and fused start"): one call creates an instance and
 * commits the first turn its caller ran in-process, or queues the start as an ordinary one when
 * that turn might not be the one a fetch would hand out.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { OrchestrationTurnAck } from '../../../src/core/turn-types';
import type { Provider } from '../../../src/provider/contract';
import { withHarness, type ProviderTestFactory } from '../harness';
import { activity, event, fetchItem, LOCK_MS, rejectsWith, started, startItem, turn } from '../fixtures';

const ANY_TAG = { mode: 'defaultOnly' } as const;

/** The store's clock, read off a fetch of an instance of its own (the runtime learns it the same way). */
async function storeNow(provider: Provider): Promise<number> {
  await provider.enqueueOrchestratorWork(startItem('store-clock'));
  const item = await fetchItem(provider, 'store-clock');
  await provider.ackOrchestrationItem(item.lockToken, turn('store-clock', { historyDelta: [started('store-clock')] }));
  return item.nowMs;
}

/** The first turn of `instanceId` as a runtime would run it: started, one activity scheduled. */
function firstTurn(instanceId: string, overrides: Partial<OrchestrationTurnAck> = {}): OrchestrationTurnAck {
  const scheduled = activity(instanceId, 2);
  return turn(instanceId, {
    historyDelta: [
      started(instanceId),
      event(instanceId, 1, 2, { kind: 'ActivityScheduled', name: scheduled.name, input: scheduled.input }),
      event(instanceId, 1, 3, { kind: 'CustomStatusUpdated', status: 'first' }),
    ],
    workerItems: [scheduled],
    ...overrides,
  });
}

export function defineFusedStartTests(factory: ProviderTestFactory): void {
  describe(`${factory.name}: fused start`, () => {
    it('creates the instance and commits its first turn and the activity it claims, in one call', () =>
      withHarness(factory, async ({ provider }) => {
        assert.ok(typeof provider.startOrchestrationWithTurn === 'function', 'the store offers fused start');
        const nowMs = await storeNow(provider);
        const outcome = await provider.startOrchestrationWithTurn(startItem('fs'), {
          ack: firstTurn('fs'),
          nowMs,
          claim: { workerItemIndexes: [0], lockTimeoutMs: LOCK_MS },
        });
        assert.ok(outcome.fused, 'the turn was committed');
        assert.deepEqual(
          outcome.claimedWorkItems.map((claimed) => claimed.item.id),
          [2],
        );
        assert.ok(
          outcome.nowMs >= nowMs && outcome.nowMs < nowMs + 2_000,
          `store clock ${outcome.nowMs - nowMs} ms on`,
        );
        const status = await provider.getInstanceStatus('fs');
        assert.equal(status.status, 'Running');
        assert.equal(status.customStatus, 'first', "the turn's custom status is projected");
        assert.deepEqual(
          (await provider.readHistory('fs')).map((e) => e.kind),
          ['OrchestrationStarted', 'ActivityScheduled', 'CustomStatusUpdated'],
        );
        assert.equal(
          await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS }),
          null,
          'the start message was never queued and the instance holds no lock',
        );
        assert.equal(
          await provider.fetchWorkItem({ lockTimeoutMs: LOCK_MS, tagFilter: ANY_TAG }),
          null,
          'the activity is locked for the caller',
        );
        const [lease] = outcome.claimedWorkItems;
        await provider.ackWorkItem(lease.lockToken, {
          type: 'ActivityCompleted',
          instance: 'fs',
          executionId: 1,
          id: 2,
          result: '"done"',
        });
        const next = await fetchItem(provider, 'fs');
        assert.deepEqual(
          next.messages.map((m) => m.type),
          ['ActivityCompleted'],
        );
        assert.equal(next.history.length, 3, 'the next turn replays the fused one');
      }));

    it("pins the execution to its OrchestrationStarted's duroxVersion, as a fetched first turn does", () =>
      withHarness(factory, async ({ provider }) => {
        const nowMs = await storeNow(provider);
        const [first, ...rest] = firstTurn('pinned').historyDelta;
        const outcome = await provider.startOrchestrationWithTurn!(startItem('pinned'), {
          ack: firstTurn('pinned', { historyDelta: [{ ...first, duroxVersion: '3.1.0' }, ...rest] }),
          nowMs,
          claim: null,
        });
        assert.ok(outcome.fused, 'the turn was committed');
        await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'pinned', name: 'e', data: '1' });
        const versionRange = (min: string, max: string) => ({ lockTimeoutMs: LOCK_MS, versionRange: { min, max } });
        assert.equal(await provider.fetchOrchestrationItem(versionRange('0.0.0', '3.0.99')), null, '3.1.0 is outside');
        assert.equal((await provider.fetchOrchestrationItem(versionRange('3.0.0', '3.99.0')))?.instanceId, 'pinned');
      }));

    it('queues the start when the instance exists, and leaves its history alone', () =>
      withHarness(factory, async ({ provider }) => {
        const nowMs = await storeNow(provider);
        const outcome = await provider.startOrchestrationWithTurn!(startItem('store-clock'), {
          ack: firstTurn('store-clock'),
          nowMs,
          claim: null,
        });
        assert.equal(outcome.fused, false);
        const item = await fetchItem(provider, 'store-clock');
        assert.deepEqual(
          item.messages.map((m) => m.type),
          ['StartOrchestration'],
          'queued for the turn to ignore, as any repeated start',
        );
        assert.deepEqual(
          item.history.map((e) => e.kind),
          ['OrchestrationStarted'],
        );
        await provider.ackOrchestrationItem(item.lockToken, turn('store-clock'));
      }));

    it('queues the start behind a message that arrived first, so the turn sees both', () =>
      withHarness(factory, async ({ provider }) => {
        const nowMs = await storeNow(provider);
        await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'early', name: 'go', data: '1' });
        const outcome = await provider.startOrchestrationWithTurn!(startItem('early'), {
          ack: firstTurn('early'),
          nowMs,
          claim: null,
        });
        assert.equal(outcome.fused, false);
        assert.equal((await provider.getInstanceStatus('early')).status, 'NotFound', 'nothing of the turn was written');
        const item = await fetchItem(provider, 'early');
        assert.deepEqual(
          item.messages.map((m) => m.type),
          ['ExternalRaised', 'StartOrchestration'],
        );
      }));

    it("queues the start when the turn ran at a clock the store's no longer agrees with", () =>
      withHarness(factory, async ({ provider, advanceClock }) => {
        const nowMs = await storeNow(provider);
        await advanceClock(10_000);
        const outcome = await provider.startOrchestrationWithTurn!(startItem('stale'), {
          ack: firstTurn('stale'),
          nowMs,
          claim: { workerItemIndexes: [0], lockTimeoutMs: LOCK_MS },
        });
        assert.equal(outcome.fused, false);
        assert.ok(outcome.nowMs >= nowMs + 10_000, "the reply tells the store's clock, to date the next start by");
        const item = await fetchItem(provider, 'stale');
        assert.deepEqual(
          item.messages.map((m) => m.type),
          ['StartOrchestration'],
        );
        assert.equal(item.history.length, 0, 'the turn runs again on a fetch, at the clock of the store');
        assert.equal(
          await provider.fetchWorkItem({ lockTimeoutMs: LOCK_MS, tagFilter: ANY_TAG }),
          null,
          'no activity was scheduled',
        );
      }));

    it('several starts in one call: each committed or queued as alone, a refused one leaves the others', () =>
      withHarness(factory, async ({ provider }) => {
        assert.ok(typeof provider.startOrchestrationsWithTurns === 'function', 'the store offers group fused start');
        const nowMs = await storeNow(provider);
        const messaging = firstTurn('g-talker', {
          orchestratorItems: [{ type: 'ExternalRaised', instance: 'someone-else', name: 'x', data: '1' }],
        });
        const outcomes = await provider.startOrchestrationsWithTurns([
          { item: startItem('g-new'), turn: { ack: firstTurn('g-new'), nowMs, claim: null } },
          { item: startItem('store-clock'), turn: { ack: firstTurn('store-clock'), nowMs, claim: null } },
          { item: startItem('g-talker'), turn: { ack: messaging, nowMs, claim: null } },
          // A second start of an instance the same call created: it finds the first's and is queued.
          { item: startItem('g-new'), turn: { ack: firstTurn('g-new'), nowMs, claim: null } },
        ]);
        assert.deepEqual(
          outcomes.map((element) => (element.ok ? element.outcome.fused : element.error.code)),
          [true, false, 'invalid_argument', false],
        );
        assert.deepEqual(
          (await provider.readHistory('g-new')).map((e) => e.kind),
          ['OrchestrationStarted', 'ActivityScheduled', 'CustomStatusUpdated'],
        );
        assert.equal(
          (await provider.getInstanceStatus('g-talker')).status,
          'NotFound',
          'the refused start wrote nothing',
        );
        const queued = [await fetchItem(provider), await fetchItem(provider)];
        assert.deepEqual(queued.map((item) => [item.instanceId, item.messages.map((m) => m.type)]).sort(), [
          ['g-new', ['StartOrchestration']],
          ['store-clock', ['StartOrchestration']],
        ]);
      }));

    it('refuses a flow-controlled start, a turn of another instance, one not starting with OrchestrationStarted and a turn messaging another instance', () =>
      withHarness(factory, async ({ provider }) => {
        const nowMs = await storeNow(provider);
        await rejectsWith(
          provider.startOrchestrationWithTurn!(startItem('flow', { flowKey: 'tenant' }), {
            ack: firstTurn('flow'),
            nowMs,
            claim: null,
          }),
          'invalid_argument',
        );
        await rejectsWith(
          provider.startOrchestrationWithTurn!(startItem('mine'), { ack: firstTurn('theirs'), nowMs, claim: null }),
          'invalid_argument',
        );
        const [, ...withoutStarted] = firstTurn('headless').historyDelta;
        await rejectsWith(
          provider.startOrchestrationWithTurn!(startItem('headless'), {
            ack: firstTurn('headless', { historyDelta: withoutStarted }),
            nowMs,
            claim: null,
          }),
          'invalid_argument',
        );
        const messaging = firstTurn('talker', {
          orchestratorItems: [{ type: 'ExternalRaised', instance: 'someone-else', name: 'x', data: '1' }],
        });
        await rejectsWith(
          provider.startOrchestrationWithTurn!(startItem('talker'), { ack: messaging, nowMs, claim: null }),
          'invalid_argument',
        );
        for (const instanceId of ['flow', 'mine', 'theirs', 'headless', 'talker', 'someone-else'])
          assert.equal(
            (await provider.getInstanceStatus(instanceId)).status,
            'NotFound',
            `${instanceId} was not written`,
          );
        assert.equal(await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS }), null, 'nothing was queued');
      }));
  });
}
