/** Worker sessions (docs/runtime.md, "Sessions") and the batch activity fetch. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ActivityExecuteItem } from '../../../src/core/types';
import type { Provider, SessionFetchConfig, WorkItemLease } from '../../../src/provider/contract';
import { withHarness, type ProviderTestFactory } from '../harness';
import { activity, LOCK_MS, rejectsWith, seedInstance } from '../fixtures';

const SESSION_MS = 10_000;
const IDLE_MS = 60_000;

function onSession(instance: string, id: number, sessionId: string): ActivityExecuteItem {
  return { ...activity(instance, id), sessionId };
}

function owner(ownerId: string): SessionFetchConfig {
  return { ownerId, lockTimeoutMs: SESSION_MS };
}

function fetchAs(provider: Provider, session: SessionFetchConfig | null): Promise<WorkItemLease | null> {
  return provider.fetchWorkItem({ lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'defaultOnly' }, session });
}

/** Ids of the items `session` can fetch right now (each is acked so the next one shows). */
async function drainAs(provider: Provider, session: SessionFetchConfig | null): Promise<number[]> {
  const ids: number[] = [];
  for (;;) {
    const lease = await fetchAs(provider, session);
    if (lease === null) return ids;
    ids.push(lease.item.id);
    await provider.ackWorkItem(lease.lockToken, null);
  }
}

export function defineSessionTests(factory: ProviderTestFactory): void {
  describe(`${factory.name}: sessions`, () => {
    it('without a session config only items without a session are served; with one both kinds, FIFO', () =>
      withHarness(factory, async ({ provider }) => {
        await seedInstance(provider, 'mix');
        await provider.enqueueWorkerWork(onSession('mix', 1, 's1'));
        await provider.enqueueWorkerWork(activity('mix', 2));
        await provider.enqueueWorkerWork(onSession('mix', 3, 's1'));
        await provider.enqueueWorkerWork(activity('mix', 4));
        assert.deepEqual(await drainAs(provider, null), [2, 4]);
        const first = await fetchAs(provider, owner('A'));
        assert.equal(first?.item.id, 1);
        assert.equal(first?.item.sessionId, 's1', 'the session id survives the round trip');
        assert.deepEqual(await drainAs(provider, owner('A')), [3], 'the owner gets the next item of its session');
      }));

    it('a claimed session sticks to its owner; other owners claim other sessions; a shared owner id shares it', () =>
      withHarness(factory, async ({ provider, openPeer }) => {
        const peer = await openPeer();
        await seedInstance(provider, 'aff');
        await provider.enqueueWorkerWork(onSession('aff', 1, 's1'));
        const a = await fetchAs(provider, owner('A'));
        assert.equal(a?.item.id, 1);
        await provider.enqueueWorkerWork(onSession('aff', 2, 's1'));
        await provider.enqueueWorkerWork(onSession('aff', 3, 's2'));
        const b = await fetchAs(peer, owner('B'));
        assert.equal(b?.item.id, 3, 'B skips the session owned by A and claims s2');
        assert.equal(await fetchAs(peer, owner('B')), null, 's1 stays with A');
        const shared = await fetchAs(peer, owner('A'));
        assert.equal(shared?.item.id, 2, "any caller using the owner id A may fetch A's session");
      }));

    it('an expired session is taken over by another owner, and the original owner can reclaim a lapsed one', () =>
      withHarness(factory, async ({ provider, advanceClock }) => {
        await seedInstance(provider, 'exp');
        await provider.enqueueWorkerWork(onSession('exp', 1, 's1'));
        const a = await fetchAs(provider, owner('A'));
        await provider.ackWorkItem(a!.lockToken, null);
        await provider.enqueueWorkerWork(onSession('exp', 2, 's1'));
        assert.equal(await fetchAs(provider, owner('B')), null);
        await advanceClock(SESSION_MS + 1);
        const b = await fetchAs(provider, owner('B'));
        assert.equal(b?.item.id, 2, 'B takes over the lapsed session');
        await provider.ackWorkItem(b.lockToken, null);
        await provider.enqueueWorkerWork(onSession('exp', 3, 's1'));
        assert.equal(await fetchAs(provider, owner('A')), null, 'A lost it to B');
        await advanceClock(SESSION_MS + 1);
        assert.equal((await fetchAs(provider, owner('A')))?.item.id, 3, "after B's lease lapses A can claim again");
      }));

    it(
      'an activity whose lease expired is redelivered to the session owner, or to ' +
        'the new owner once the session lapsed',
      () =>
        withHarness(factory, async ({ provider, advanceClock }) => {
          await seedInstance(provider, 'redeliver');
          await provider.enqueueWorkerWork(onSession('redeliver', 1, 's1'));
          const lease = { lockTimeoutMs: 1_000, tagFilter: { mode: 'defaultOnly' } as const };
          const first = await provider.fetchWorkItem({ ...lease, session: owner('A') });
          await advanceClock(1_001);
          assert.equal(
            await provider.fetchWorkItem({ ...lease, session: owner('B') }),
            null,
            "the session is still A's",
          );
          const again = await provider.fetchWorkItem({ ...lease, session: owner('A') });
          assert.equal(again?.attemptCount, 2);
          await rejectsWith(provider.ackWorkItem(first!.lockToken, null), 'lock_lost');
          await advanceClock(SESSION_MS + 1);
          const taken = await provider.fetchWorkItem({ ...lease, session: owner('B') });
          assert.equal(taken?.item.id, 1, 'both leases lapsed: B gets the redelivery');
          assert.equal(taken?.attemptCount, 3);
        }),
    );

    it('an expired session does not block the ack of an item whose own lease is valid', () =>
      withHarness(factory, async ({ provider, advanceClock }) => {
        await seedInstance(provider, 'late');
        await provider.enqueueWorkerWork(onSession('late', 1, 's1'));
        const lease = await fetchAs(provider, owner('A'));
        await advanceClock(SESSION_MS + 1);
        await provider.ackWorkItem(lease!.lockToken, null);
      }));

    it('two owners racing for one session: it is never split, and the loser gets other work instead of nothing', () =>
      withHarness(factory, async ({ provider, openPeer }) => {
        const peer = await openPeer();
        await seedInstance(provider, 'race');
        for (let round = 0; round < 8; round += 1) {
          const session = `race-${round}`;
          await provider.enqueueWorkerWork(onSession('race', round * 10 + 1, session));
          await provider.enqueueWorkerWork(onSession('race', round * 10 + 2, session));
          await provider.enqueueWorkerWork(activity('race', round * 10 + 3));
          const [x, y] = await Promise.all([fetchAs(provider, owner(`A${round}`)), fetchAs(peer, owner(`B${round}`))]);
          assert.ok(
            x !== null && y !== null,
            'both fetchers get an item: a lost session claim moves on to the next candidate',
          );
          const sessionItems = [x, y].filter((lease) => lease.item.sessionId === session);
          assert.equal(sessionItems.length, 1, 'only one owner got an item of the session');
          const winner = sessionItems[0] === x ? `A${round}` : `B${round}`;
          const loser = winner.startsWith('A') ? `B${round}` : `A${round}`;
          const loserProvider = winner.startsWith('A') ? peer : provider;
          assert.equal(
            await fetchAs(loserProvider, owner(loser)),
            null,
            'the loser cannot fetch the other session item',
          );
          const rest = await fetchAs(provider, owner(winner));
          assert.equal(rest?.item.sessionId, session, 'the winner gets the rest of its session');
          for (const lease of [x, y, rest]) await provider.ackWorkItem(lease.lockToken, null);
        }
      }));

    it('renews active sessions, skips idle and expired ones, and counts what it renewed', () =>
      withHarness(factory, async ({ provider, advanceClock }) => {
        assert.equal(await provider.renewSessionLocks(['A'], SESSION_MS, IDLE_MS), 0, 'no sessions');
        assert.equal(await provider.renewSessionLocks([], SESSION_MS, IDLE_MS), 0);
        await seedInstance(provider, 'renew');
        await provider.enqueueWorkerWork(onSession('renew', 1, 's1'));
        await provider.enqueueWorkerWork(onSession('renew', 2, 's2'));
        const one = await fetchAs(provider, owner('A'));
        assert.equal(await provider.renewSessionLocks(['A'], SESSION_MS, IDLE_MS), 1);
        const two = await fetchAs(provider, owner('A'));
        assert.equal(await provider.renewSessionLocks(['A', 'nobody'], SESSION_MS, IDLE_MS), 2);
        assert.equal(await provider.renewSessionLocks(['B'], SESSION_MS, IDLE_MS), 0, 'only the owner renews');
        // Renewing at ~60% keeps the sessions past their original expiry.
        await advanceClock(6_000);
        assert.equal(await provider.renewSessionLocks(['A'], SESSION_MS, IDLE_MS), 2);
        await advanceClock(6_000);
        await provider.enqueueWorkerWork(onSession('renew', 3, 's1'));
        assert.equal(await fetchAs(provider, owner('B')), null, "still A's after the original expiry");
        // Idle: the last activity (fetch of item 2) is 12 s old.
        assert.equal(await provider.renewSessionLocks(['A'], SESSION_MS, 5_000), 0, 'idle sessions lapse');
        await provider.ackWorkItem(one!.lockToken, null);
        assert.equal(
          await provider.renewSessionLocks(['A'], SESSION_MS, 5_000),
          1,
          'an ack stamps activity on its session',
        );
        await provider.renewWorkItemLock(two!.lockToken, LOCK_MS);
        assert.equal(
          await provider.renewSessionLocks(['A'], SESSION_MS, 5_000),
          2,
          'a work-item renew stamps activity too',
        );
        await advanceClock(SESSION_MS + 1);
        assert.equal(
          await provider.renewSessionLocks(['A'], SESSION_MS, IDLE_MS),
          0,
          'an expired session is never revived',
        );
      }));

    it('cleanup removes expired sessions without items and keeps active ones and those with pending items', () =>
      withHarness(factory, async ({ provider, advanceClock }) => {
        await seedInstance(provider, 'clean');
        for (const [id, session] of [
          [1, 'done'],
          [2, 'pending'],
          [3, 'pending'],
        ] as const) {
          await provider.enqueueWorkerWork(onSession('clean', id, session));
        }
        const done = await fetchAs(provider, owner('A'));
        await provider.ackWorkItem(done!.lockToken, null);
        const pending = await fetchAs(provider, owner('A'));
        await provider.ackWorkItem(pending!.lockToken, null);
        assert.equal(await provider.cleanupOrphanedSessions(), 0, 'unexpired sessions are kept');
        await advanceClock(SESSION_MS + 1);
        assert.equal(await provider.cleanupOrphanedSessions(), 1, 'only the expired session without items goes');
        await provider.enqueueWorkerWork(onSession('clean', 4, 'done'));
        assert.equal((await fetchAs(provider, owner('B')))?.item.id, 3, 'B claims the lapsed session with items');
        assert.equal((await fetchAs(provider, owner('C')))?.item.id, 4, 'a new item re-creates a cleaned-up session');
        assert.equal(await provider.renewSessionLocks(['C'], SESSION_MS, IDLE_MS), 1);
      }));

    it('abandoned session items come back to the owner with their attempt counted, or not with ignoreAttempt', () =>
      withHarness(factory, async ({ provider }) => {
        await seedInstance(provider, 'abandon');
        await provider.enqueueWorkerWork(onSession('abandon', 1, 's1'));
        const first = await fetchAs(provider, owner('A'));
        await provider.abandonWorkItem(first!.lockToken);
        const second = await fetchAs(provider, owner('A'));
        assert.equal(second?.attemptCount, 2);
        await provider.abandonWorkItem(second.lockToken, { ignoreAttempt: true });
        assert.equal((await fetchAs(provider, owner('A')))?.attemptCount, 2);
      }));

    it('session ids with hostile text are stored and matched exactly', () =>
      withHarness(factory, async ({ provider }) => {
        await seedInstance(provider, 'hostile');
        const ids = ["s'); DROP TABLE sessions; --", 'S', 's', 's ', 'sé\u{1F600}', '%', '_'];
        for (const [index, sessionId] of ids.entries()) {
          await provider.enqueueWorkerWork(onSession('hostile', index + 1, sessionId));
        }
        // Each owner claims one distinct session; none can touch another's.
        const seen = new Map<string, string>();
        for (const [index] of ids.entries()) {
          const lease = await fetchAs(provider, owner(`owner-${index}`));
          assert.ok(lease, `owner-${index} claims a session`);
          seen.set(lease.item.sessionId!, `owner-${index}`);
          await provider.ackWorkItem(lease.lockToken, null);
        }
        assert.deepEqual([...seen.keys()].sort(), [...ids].sort());
        for (const [index, sessionId] of ids.entries()) {
          await provider.enqueueWorkerWork(onSession('hostile', 100 + index, sessionId));
        }
        for (const [sessionId, ownerId] of seen) {
          const lease = await fetchAs(provider, owner(ownerId));
          assert.equal(
            lease?.item.sessionId,
            sessionId,
            `${JSON.stringify(sessionId)} goes back to its own owner only`,
          );
        }
        await rejectsWith(fetchAs(provider, owner('')), 'invalid_argument', 'fetch_work_item');
        await rejectsWith(fetchAs(provider, owner('x'.repeat(513))), 'invalid_argument', 'fetch_work_item');
      }));
  });

  describe(`${factory.name}: batch activity fetch`, () => {
    it('locks up to maxItems items in order, each under its own token, honouring tags and sessions', () =>
      withHarness(factory, async ({ provider, openPeer }) => {
        const peer = await openPeer();
        await seedInstance(provider, 'batch');
        for (const id of [1, 2, 3, 4, 5])
          await provider.enqueueWorkerWork(activity('batch', id, id === 2 ? 'gpu' : null));
        await provider.enqueueWorkerWork(onSession('batch', 6, 's1'));
        const leases = await provider.fetchWorkItems({
          lockTimeoutMs: LOCK_MS,
          tagFilter: { mode: 'defaultOnly' },
          maxItems: 3,
        });
        assert.deepEqual(
          leases.map((l) => l.item.id),
          [1, 3, 4],
        );
        assert.equal(new Set(leases.map((l) => l.lockToken)).size, 3, 'one token per item');
        const rest = await peer.fetchWorkItems({
          lockTimeoutMs: LOCK_MS,
          tagFilter: { mode: 'any' },
          maxItems: 10,
          session: owner('B'),
        });
        assert.deepEqual(
          rest.map((l) => l.item.id),
          [2, 5, 6],
          'a concurrent batch never gets locked items',
        );
        await provider.ackWorkItem(leases[1].lockToken, null);
        await provider.abandonWorkItem(leases[0].lockToken);
        await provider.renewWorkItemLock(leases[2].lockToken, LOCK_MS);
        await rejectsWith(provider.ackWorkItem(leases[1].lockToken, null), 'lock_lost');
        assert.deepEqual(
          await provider.fetchWorkItems({ lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'none' }, maxItems: 5 }),
          [],
        );
        await rejectsWith(
          provider.fetchWorkItems({ lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'any' }, maxItems: 0 }),
          'invalid_argument',
        );
        await rejectsWith(
          provider.fetchWorkItems({ lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'any' }, maxItems: 1001 }),
          'invalid_argument',
        );
      }));

    it('a group fetch serves each request as a fetch alone, in order: its own tags, session owner and token', () =>
      withHarness(factory, async ({ provider }) => {
        assert.ok(typeof provider.fetchWorkItemGroup === 'function', 'the store offers group fetch');
        await seedInstance(provider, 'group');
        await provider.enqueueWorkerWork(onSession('group', 1, 's1'));
        for (const id of [2, 3]) await provider.enqueueWorkerWork(activity('group', id, id === 3 ? 'gpu' : null));
        const plain = { lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'defaultOnly' } } as const;
        const leases = await provider.fetchWorkItemGroup([
          plain, // no session: skips the session item, takes 2
          { ...plain, session: owner('A') }, // takes the session item and claims s1 for A
          plain, // 3 is tagged: nothing left for it
          { lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'tags', tags: ['gpu'] } },
        ]);
        assert.deepEqual(
          leases.map((l) => l?.item.id ?? null),
          [2, 1, null, 3],
        );
        assert.equal(new Set(leases.map((l) => l?.lockToken)).size, 4, 'one token per lease');
        await provider.enqueueWorkerWork(onSession('group', 4, 's1'));
        const [other, own] = await provider.fetchWorkItemGroup([
          { ...plain, session: owner('B') },
          { ...plain, session: owner('A') },
        ]);
        assert.equal(other, null, "s1 is A's now");
        assert.equal(own?.item.id, 4);
        for (const lease of [...leases, own]) if (lease) await provider.ackWorkItem(lease.lockToken, null);
        await rejectsWith(provider.fetchWorkItemGroup([]), 'invalid_argument', 'fetch_work_item_group');
        await rejectsWith(
          provider.fetchWorkItemGroup([plain, { ...plain, lockTimeoutMs: 0 }]),
          'invalid_argument',
          'fetch_work_item_group',
        );
      }));
  });
}
