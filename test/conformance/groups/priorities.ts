/**
 * Priorities (migration 0103): both queues and the parked activities of a flow key hand out the
 * highest level first and FIFO within a level (parked starts ranked with the parked activities,
 * migration 0104); a message to an existing instance takes the
 * instance's level; a future timer is never fetched early, whatever its level; and the
 * starvation bound holds on the store's clock: an item is overtaken by an item d levels higher
 * only when that one became fetchable less than d x PRIORITY_STEP_MS after it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PRIORITY_STEP_MS } from '../../../src/core/priority';
import type { ActivityExecuteItem } from '../../../src/core/types';
import type { Provider } from '../../../src/provider/contract';
import { withHarness, type ProviderTestFactory } from '../harness';
import { activity, fetchItem, LOCK_MS, rejectsWith, seedInstance, started, startItem, turn } from '../fixtures';

const ANY = { lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'any' as const } };

function prioritized(instance: string, id: number, priority: number): ActivityExecuteItem {
  return { ...activity(instance, id), ...(priority === 0 ? {} : { priority }) };
}

/** Fetches one activity at a time until none is left; returns their inputs in fetch order. */
async function drainActivities(provider: Provider): Promise<string[]> {
  const order: string[] = [];
  for (;;) {
    const lease = await provider.fetchWorkItem(ANY);
    if (lease === null) return order;
    order.push(lease.item.input);
    await provider.ackWorkItem(lease.lockToken, null);
  }
}

/** Fetches one turn at a time until none is left; returns their instances in fetch order. */
async function drainTurns(provider: Provider): Promise<string[]> {
  const order: string[] = [];
  for (;;) {
    const item = await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS });
    if (item === null) return order;
    order.push(item.instanceId);
    await provider.ackOrchestrationItem(item.lockToken, turn(item.instanceId));
  }
}

export function definePriorityTests(factory: ProviderTestFactory): void {
  describe(`${factory.name}: priorities`, () => {
    it('the worker queue hands out the highest level first, FIFO within a level', () =>
      withHarness(factory, async ({ provider }) => {
        const levels = [0, 5, 9, 0, 9, 5, 2];
        for (const [index, level] of levels.entries()) {
          await provider.enqueueWorkerWork(prioritized('p1', index + 1, level));
        }
        assert.deepEqual(await drainActivities(provider), ['"a3"', '"a5"', '"a2"', '"a6"', '"a7"', '"a1"', '"a4"']);
      }));

    it('the orchestrator queue hands out the highest level first; other messages take their instance level', () =>
      withHarness(factory, async ({ provider }) => {
        await provider.enqueueOrchestratorWork(startItem('low-1'));
        await provider.enqueueOrchestratorWork(startItem('mid', { priority: 4 }));
        await provider.enqueueOrchestratorWork(startItem('low-2'));
        await provider.enqueueOrchestratorWork(startItem('high', { priority: 8 }));
        const order: string[] = [];
        for (let i = 0; i < 4; i += 1) {
          const item = await fetchItem(provider);
          order.push(item.instanceId);
          const level = item.messages[0].type === 'StartOrchestration' ? (item.messages[0].priority ?? 0) : 0;
          await provider.ackOrchestrationItem(
            item.lockToken,
            turn(item.instanceId, {
              historyDelta: [started(item.instanceId)],
              metadata: { orchestrationName: 'Orch', orchestrationVersion: '1.0.0', priority: level },
            }),
          );
        }
        assert.deepEqual(order, ['high', 'mid', 'low-1', 'low-2']);
        assert.equal((await provider.getInstanceInfo('high'))?.priority, 8);
        assert.equal((await provider.getInstanceInfo('low-1'))?.priority, 0);

        // Events raised later, to the low instance first: the instances' own levels order them.
        for (const instance of ['low-1', 'mid', 'high']) {
          await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance, name: 'go', data: '1' });
        }
        assert.deepEqual(await drainTurns(provider), ['high', 'mid', 'low-1']);
      }));

    it('a message a turn sends takes its target level: its own, a start its item level, another instance its level', () =>
      withHarness(factory, async ({ provider }) => {
        await seedInstance(provider, 'quiet');
        await provider.enqueueOrchestratorWork(startItem('busy', { priority: 6 }));
        const item = await fetchItem(provider, 'busy');
        await provider.ackOrchestrationItem(
          item.lockToken,
          turn('busy', {
            historyDelta: [started('busy')],
            metadata: { orchestrationName: 'Orch', orchestrationVersion: '1.0.0', priority: 6 },
            orchestratorItems: [
              { type: 'ExternalRaised', instance: 'quiet', name: 'e', data: '1' },
              startItem('child-low'),
              { type: 'ExternalRaised', instance: 'busy', name: 'self', data: '1' },
              startItem('child-high', { priority: 9 }),
            ],
          }),
        );
        assert.deepEqual(await drainTurns(provider), ['child-high', 'busy', 'quiet', 'child-low']);
      }));

    it('a future timer is not fetched before it is due, whatever its level, and then goes first', () =>
      withHarness(factory, async ({ provider, advanceClock }) => {
        await provider.enqueueOrchestratorWork(startItem('timed', { priority: 9 }));
        const item = await fetchItem(provider, 'timed');
        await provider.ackOrchestrationItem(
          item.lockToken,
          turn('timed', {
            historyDelta: [started('timed')],
            metadata: { orchestrationName: 'Orch', orchestrationVersion: '1.0.0', priority: 9 },
          }),
        );
        const info = await provider.getInstanceInfo('timed');
        const fireAtMs = info!.updatedAt + 30_000;
        await provider.enqueueOrchestratorWork({
          type: 'TimerFired',
          instance: 'timed',
          executionId: 1,
          id: 2,
          fireAtMs,
        });
        await provider.enqueueOrchestratorWork(startItem('plain'));
        assert.deepEqual(await drainTurns(provider), ['plain'], 'the timer (rank in the past) is not due yet');
        await provider.enqueueOrchestratorWork(startItem('plain-2'));
        await advanceClock(30_000);
        assert.deepEqual(await drainTurns(provider), ['timed', 'plain-2']);
      }));

    it('starvation bound: d levels higher overtake only within d x PRIORITY_STEP_MS (store clock)', () =>
      withHarness(factory, async ({ provider, advanceClock }) => {
        // The test clock moves the store's clock; real time passing between the calls only adds to
        // it, so "inside the bound" keeps a margin (MARGIN_MS) and "at the bound" needs none.
        const MARGIN_MS = 5_000;
        const bound = 9 * PRIORITY_STEP_MS;
        // Arriving inside the bound: the level-9 item overtakes the waiting level-0 item.
        await provider.enqueueWorkerWork(prioritized('s', 1, 0));
        await advanceClock(bound - MARGIN_MS);
        await provider.enqueueWorkerWork(prioritized('s', 2, 9));
        assert.deepEqual(await drainActivities(provider), ['"a2"', '"a1"']);
        // Arriving at the bound or later: it no longer does.
        await provider.enqueueWorkerWork(prioritized('s', 3, 0));
        await advanceClock(bound);
        await provider.enqueueWorkerWork(prioritized('s', 4, 9));
        assert.deepEqual(await drainActivities(provider), ['"a3"', '"a4"']);
        // d = 3 levels (2 -> 5) are worth 3 steps, on the orchestrator queue too.
        await provider.enqueueOrchestratorWork(startItem('wait-2', { priority: 2 }));
        await advanceClock(3 * PRIORITY_STEP_MS - MARGIN_MS);
        await provider.enqueueOrchestratorWork(startItem('inside-5', { priority: 5 }));
        await advanceClock(MARGIN_MS);
        await provider.enqueueOrchestratorWork(startItem('at-bound-5', { priority: 5 }));
        assert.deepEqual(await drainTurns(provider), ['inside-5', 'wait-2', 'at-bound-5']);
      }));

    it('a free permit goes to the best activity of a turn, a permit given back to the best parked one', () =>
      withHarness(factory, async ({ provider }) => {
        await provider.setFlowLimit!('activity:Act', { maxActive: 1 });
        await seedInstance(provider, 'fp', {
          workerItems: [
            prioritized('fp', 2, 0),
            prioritized('fp', 3, 0),
            prioritized('fp', 4, 7),
            prioritized('fp', 5, 3),
          ],
        });
        // a4 (level 7) takes the free permit; each ack then hands it to the best parked activity.
        assert.deepEqual(await drainActivities(provider), ['"a4"', '"a5"', '"a2"', '"a3"']);
      }));

    it('a permit given back goes to the best parked start: parked starts rank like parked activities', () =>
      withHarness(factory, async ({ provider }) => {
        const ended = { orchestrationName: 'Orch', orchestrationVersion: '1.0.0', status: 'Completed' as const };
        await provider.setFlowLimit!('reports', { maxActive: 1 });
        await provider.enqueueOrchestratorWork(startItem('holder', { flowKey: 'reports' }));
        const holder = await fetchItem(provider, 'holder');
        await provider.enqueueOrchestratorWork(startItem('low', { flowKey: 'reports' }));
        await provider.enqueueOrchestratorWork(startItem('high', { flowKey: 'reports', priority: 9 }));
        assert.equal((await provider.getInstanceStatus('low')).status, 'Pending');
        assert.equal((await provider.getInstanceStatus('high')).status, 'Pending');
        await provider.ackOrchestrationItem(
          holder.lockToken,
          turn('holder', { historyDelta: [started('holder')], metadata: { ...ended, output: '"done"' } }),
        );
        const next = await fetchItem(provider);
        assert.equal(next.instanceId, 'high', 'the level-9 start parked second is admitted first');
        assert.equal((await provider.getInstanceStatus('low')).status, 'Pending');
        assert.equal(await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS }), null, 'low still waits');
        await provider.ackOrchestrationItem(
          next.lockToken,
          turn('high', { historyDelta: [started('high')], metadata: { ...ended, output: '"done"' } }),
        );
        assert.equal((await fetchItem(provider)).instanceId, 'low');
      }));

    it('a level outside 0..9 is refused and nothing is written', () =>
      withHarness(factory, async ({ provider }) => {
        await rejectsWith(
          provider.enqueueWorkerWork(prioritized('bad', 1, 10)),
          'invalid_argument',
          'enqueue_worker_work',
        );
        await rejectsWith(
          provider.enqueueOrchestratorWork(startItem('bad', { priority: -1 })),
          'invalid_argument',
          'enqueue_orchestrator_work',
        );
        await rejectsWith(
          provider.enqueueOrchestratorWork(startItem('bad', { priority: 1.5 })),
          'invalid_argument',
          'enqueue_orchestrator_work',
        );
        await provider.enqueueOrchestratorWork(startItem('good'));
        const item = await fetchItem(provider, 'good');
        await rejectsWith(
          provider.ackOrchestrationItem(
            item.lockToken,
            turn('good', { historyDelta: [started('good')], workerItems: [prioritized('good', 2, 12)] }),
          ),
          'invalid_argument',
          'ack_orchestration_item',
        );
        await provider.abandonOrchestrationItem(item.lockToken, { ignoreAttempt: true });
        assert.deepEqual(await drainTurns(provider), ['good'], 'only the valid start was queued');
        assert.equal(await provider.fetchWorkItem(ANY), null, 'no activity was queued');
      }));
  });
}
