/** Instance locking, lock expiration and renewal, including several providers at once. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { OrchestrationItem, Provider } from '../../../src/provider/contract';
import { withHarness, type ProviderTestFactory } from '../harness';
import { fetchItem, LOCK_MS, rejectsWith, seedInstance, started, startItem, turn } from '../fixtures';

async function openPeers(open: () => Promise<Provider>, count: number): Promise<Provider[]> {
  const peers: Provider[] = [];
  for (let i = 0; i < count; i += 1) peers.push(await open());
  return peers;
}

export function defineLockingTests(factory: ProviderTestFactory): void {
  describe(`${factory.name}: instance locking`, () => {
    it('locks an instance exclusively with a fresh token per fetch, without blocking other instances', () =>
      withHarness(factory, async ({ provider }) => {
        await provider.enqueueOrchestratorWork(startItem('a'));
        await provider.enqueueOrchestratorWork(startItem('b'));
        const a = await fetchItem(provider, 'a');
        const b = await fetchItem(provider, 'b');
        assert.notEqual(a.lockToken, b.lockToken);
        assert.equal(await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS }), null);
        await provider.abandonOrchestrationItem(a.lockToken);
        const again = await fetchItem(provider, 'a');
        assert.notEqual(again.lockToken, a.lockToken);
      }));

    it('delivers messages that arrive during a turn in the next turn only', () =>
      withHarness(factory, async ({ provider }) => {
        await seedInstance(provider, 'busy');
        await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'busy', name: 'first', data: '1' });
        const item = await fetchItem(provider, 'busy');
        await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'busy', name: 'second', data: '2' });
        assert.equal(await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS }), null, 'blocked while locked');
        await provider.ackOrchestrationItem(item.lockToken, turn('busy'));
        const next = await fetchItem(provider, 'busy');
        assert.deepEqual(
          next.messages.map((m) => (m.type === 'ExternalRaised' ? m.name : m.type)),
          ['second'],
        );
      }));

    it('hands each of 10 instances to exactly one of 10 concurrent fetchers on 3 providers', () =>
      withHarness(factory, async ({ provider, openPeer }) => {
        const peers = [provider, ...(await openPeers(openPeer, 2))];
        for (let i = 0; i < 10; i += 1) await provider.enqueueOrchestratorWork(startItem(`c${i}`));
        const items = await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            peers[i % peers.length].fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS }),
          ),
        );
        assert.ok(
          items.every((item) => item !== null),
          'no fetcher returned null while work was available',
        );
        assert.equal(new Set(items.map((item) => item?.instanceId)).size, 10);
      }));

    it('under contention no instance is handed to two holders at once', () =>
      withHarness(factory, async ({ provider, openPeer }) => {
        const peers = [provider, ...(await openPeers(openPeer, 3))];
        const instances = 12;
        for (let i = 0; i < instances; i += 1) await provider.enqueueOrchestratorWork(startItem(`h${i}`));
        const holders = new Map<string, string>();
        let turns = 0;
        const worker = async (p: Provider): Promise<void> => {
          for (;;) {
            const item = await p.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS });
            if (item === null) return;
            assert.equal(holders.has(item.instanceId), false, `${item.instanceId} handed out twice`);
            holders.set(item.instanceId, item.lockToken);
            await new Promise((resolve) => setImmediate(resolve));
            holders.delete(item.instanceId);
            await p.ackOrchestrationItem(
              item.lockToken,
              turn(item.instanceId, { historyDelta: [started(item.instanceId)] }),
            );
            turns += 1;
          }
        };
        await Promise.all(peers.flatMap((p) => [worker(p), worker(p)]));
        assert.equal(turns, instances);
        assert.equal((await provider.getSystemMetrics()).totalInstances, instances);
      }));

    // Regression: a fetch whose lock-free peek saw a batch that a concurrent ack then consumed
    // used to return a locked item with no messages.
    it('fetches racing acks and new messages never hand out an empty batch', () =>
      withHarness(factory, async ({ provider, openPeer }) => {
        const peers = [provider, ...(await openPeers(openPeer, 3))];
        const instances = 6;
        for (let i = 0; i < instances; i += 1) await seedInstance(provider, `r${i}`);
        for (let i = 0; i < instances; i += 1) {
          await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: `r${i}`, name: 'go', data: '0' });
        }
        let budget = 300;
        const worker = async (p: Provider, seed: number): Promise<void> => {
          let next = seed;
          while (budget > 0) {
            const item = await p.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS });
            if (item === null) continue;
            assert.ok(item.messages.length > 0, `empty batch handed out for ${item.instanceId}`);
            budget -= 1;
            next = (next * 7 + 3) % instances;
            const ping = { type: 'ExternalRaised' as const, instance: `r${next}`, name: 'go', data: String(budget) };
            await p.ackOrchestrationItem(item.lockToken, turn(item.instanceId, { orchestratorItems: [ping] }));
          }
        };
        await Promise.all(peers.flatMap((p, i) => [worker(p, i), worker(p, i + peers.length)]));
        assert.ok(budget <= 0);
      }));

    it('one instance fetched by many concurrent fetchers is won by exactly one', () =>
      withHarness(factory, async ({ provider, openPeer }) => {
        const peers = [provider, ...(await openPeers(openPeer, 3))];
        await provider.enqueueOrchestratorWork(startItem('solo'));
        const results = await Promise.all(
          Array.from({ length: 12 }, (_, i) =>
            peers[i % peers.length].fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS }),
          ),
        );
        assert.equal(results.filter((r) => r !== null).length, 1);
      }));

    it('an expired lock is taken over by another provider and the old holder is refused', () =>
      withHarness(factory, async ({ provider, openPeer, advanceClock }) => {
        const peer = await openPeer();
        await provider.enqueueOrchestratorWork(startItem('takeover'));
        const old = await fetchItem(provider, 'takeover');
        assert.equal(await peer.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS }), null);
        await advanceClock(LOCK_MS + 1);
        const fresh: OrchestrationItem = await fetchItem(peer, 'takeover');
        assert.equal(fresh.attemptCount, 2);
        await rejectsWith(
          provider.ackOrchestrationItem(old.lockToken, turn('takeover', { historyDelta: [started('takeover')] })),
          'lock_lost',
        );
        await rejectsWith(provider.renewOrchestrationItemLock(old.lockToken, LOCK_MS), 'lock_lost');
        await rejectsWith(provider.abandonOrchestrationItem(old.lockToken), 'lock_lost');
        await peer.ackOrchestrationItem(fresh.lockToken, turn('takeover', { historyDelta: [started('takeover')] }));
        assert.equal((await provider.readHistory('takeover')).length, 1);
      }));
  });

  describe(`${factory.name}: lock expiration and renewal`, () => {
    it('an unacknowledged lock expires and a successful ack releases at once', () =>
      withHarness(factory, async ({ provider, advanceClock }) => {
        await provider.enqueueOrchestratorWork(startItem('exp'));
        const first = await fetchItem(provider, 'exp');
        await advanceClock(LOCK_MS - 1000);
        assert.equal(await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS }), null);
        await advanceClock(1001);
        const second = await fetchItem(provider, 'exp');
        await provider.ackOrchestrationItem(second.lockToken, turn('exp', { historyDelta: [started('exp')] }));
        await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'exp', name: 'e', data: '1' });
        await fetchItem(provider, 'exp');
        assert.notEqual(first.lockToken, second.lockToken);
      }));

    it('abandon without delay makes the batch fetchable at once; with a delay only after it', () =>
      withHarness(factory, async ({ provider, advanceClock }) => {
        await provider.enqueueOrchestratorWork(startItem('ab'));
        const item = await fetchItem(provider, 'ab');
        await provider.abandonOrchestrationItem(item.lockToken);
        assert.equal((await provider.getQueueDepths()).orchestratorQueue, 1, 'visibility untouched');
        const again = await fetchItem(provider, 'ab');
        await provider.abandonOrchestrationItem(again.lockToken, { delayMs: 5_000 });
        assert.equal(await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS }), null);
        await advanceClock(5_001);
        await fetchItem(provider, 'ab');
      }));

    it('renews an orchestration lock with millisecond precision and never after expiry', () =>
      withHarness(factory, async ({ provider, advanceClock }) => {
        await provider.enqueueOrchestratorWork(startItem('renew'));
        const item = await provider.fetchOrchestrationItem({ lockTimeoutMs: 300 });
        assert.ok(item);
        await provider.renewOrchestrationItemLock(item.lockToken, 800);
        await advanceClock(600);
        assert.equal(
          await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS }),
          null,
          'sub-second renewal held',
        );
        await advanceClock(300);
        await rejectsWith(
          provider.renewOrchestrationItemLock(item.lockToken, 800),
          'lock_lost',
          'renew_orchestration_item_lock',
        );
        await fetchItem(provider, 'renew');
      }));

    it('work-item leases: renew extends, and renew or ack fail after expiry, after ack and for bad tokens', () =>
      withHarness(factory, async ({ provider, advanceClock }) => {
        await provider.enqueueWorkerWork({
          type: 'ActivityExecute',
          instance: 'w',
          executionId: 1,
          id: 1,
          name: 'A',
          input: '1',
          sessionId: null,
          tag: null,
        });
        const lease = await provider.fetchWorkItem({ lockTimeoutMs: 1_000, tagFilter: { mode: 'defaultOnly' } });
        assert.ok(lease);
        await rejectsWith(provider.renewWorkItemLock('bad-token', 1_000), 'lock_lost', 'renew_work_item_lock');
        await provider.renewWorkItemLock(lease.lockToken, 2_500);
        await advanceClock(2_000);
        assert.equal(
          await provider.fetchWorkItem({ lockTimeoutMs: 1_000, tagFilter: { mode: 'any' } }),
          null,
          'still held',
        );
        await advanceClock(600);
        await rejectsWith(provider.renewWorkItemLock(lease.lockToken, 1_000), 'lock_lost');
        await rejectsWith(
          provider.ackWorkItem(lease.lockToken, {
            type: 'ActivityCompleted',
            instance: 'w',
            executionId: 1,
            id: 1,
            result: '1',
          }),
          'lock_lost',
          'ack_work_item',
        );
        assert.equal((await provider.getQueueDepths()).orchestratorQueue, 0, 'no completion from an expired lease');
        const again = await provider.fetchWorkItem({ lockTimeoutMs: 1_000, tagFilter: { mode: 'any' } });
        assert.ok(again);
        assert.equal(again.attemptCount, 2);
        await provider.ackWorkItem(again.lockToken, null);
        await rejectsWith(provider.renewWorkItemLock(again.lockToken, 1_000), 'lock_lost');
        await rejectsWith(provider.ackWorkItem(again.lockToken, null), 'lock_lost');
      }));
  });
}
