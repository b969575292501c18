/** The session manager against a fake provider that records its calls: no database. */
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import type { Provider } from '../../src/provider/contract';
import type { FaultLog } from '../../src/runtime/fault-log';
import { SESSION_RENEWAL_BUFFER_MS, SessionManager } from '../../src/runtime/session-manager';
import { renewalIntervalMs } from '../../src/runtime/lock-renewal';

/** A provider offering only the two session calls the manager makes; records them. */
function fakeSessionProvider(options: { failRenewals?: boolean } = {}) {
  const renewals: Array<{ owners: string[]; lockMs: number; idleMs: number }> = [];
  let cleanups = 0;
  const provider = {
    async renewSessionLocks(owners: string[], lockMs: number, idleMs: number) {
      renewals.push({ owners, lockMs, idleMs });
      if (options.failRenewals === true) throw new Error('connection reset');
      return 0;
    },
    async cleanupOrphanedSessions() {
      cleanups += 1;
      return 0;
    },
  } as unknown as Provider;
  return { provider, renewals, cleanups: () => cleanups };
}

/** A fault log that records what failed and what recovered. */
function recordingFaults() {
  const events: string[] = [];
  const faults = {
    failed: (op: string) => void events.push(`failed ${op}`),
    recovered: (op: string) => void events.push(`recovered ${op}`),
  } as unknown as FaultLog;
  return { faults, events };
}

const BASE = { maxSessionsPerRuntime: 2, sessionIdleTimeoutMs: 60_000, workerNodeId: null, runtimeId: 'rt1' };

test('owner identity: one per slot, or the node id shared by every slot', () => {
  const { provider } = fakeSessionProvider();
  assert.equal(new SessionManager(provider, BASE, recordingFaults().faults).ownerFor(3), 'work-3-rt1');
  assert.equal(
    new SessionManager(provider, { ...BASE, workerNodeId: 'node-a' }, recordingFaults().faults).ownerFor(3),
    'node-a',
  );
});

test('capacity: running sessions plus session-capable fetches in flight; at capacity a fetch claims no new session', () => {
  const { provider } = fakeSessionProvider();
  const sessions = new SessionManager(provider, BASE, recordingFaults().faults);
  const endA = sessions.begin('a');
  const fetch = sessions.reserveFetch(0);
  assert.equal(fetch.config.claimNewSessions, undefined, 'below capacity: may claim a new session');
  assert.equal(
    sessions.reserveFetch(1).config.claimNewSessions,
    false,
    'one running + one fetch in flight = capacity 2',
  );
  fetch.release();
  fetch.release(); // idempotent
  const again = sessions.reserveFetch(1);
  assert.equal(again.config.claimNewSessions, undefined, 'the released fetch freed its place');
  again.release();
  const endA2 = sessions.begin('a');
  assert.equal(sessions.activeCount, 1, 'two activities of one session count once');
  endA();
  assert.equal(sessions.activeCount, 1);
  endA2();
  assert.equal(sessions.activeCount, 0);
  assert.equal(sessions.begin(null)(), undefined, 'an activity without a session counts nothing');
});

test('holdsSessions stays true for the idle timeout after the last session activity', () => {
  mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  try {
    const { provider } = fakeSessionProvider();
    const sessions = new SessionManager(provider, { ...BASE, sessionIdleTimeoutMs: 10_000 }, recordingFaults().faults);
    assert.equal(sessions.holdsSessions, false);
    const end = sessions.begin('s');
    mock.timers.tick(5_000);
    end();
    mock.timers.tick(9_999);
    assert.equal(sessions.holdsSessions, true);
    mock.timers.tick(1);
    assert.equal(sessions.holdsSessions, false);
  } finally {
    mock.timers.reset();
  }
});

test('renews the locks of every owner identity each interval, reports failures, and stops', async () => {
  mock.timers.enable({ apis: ['setInterval'] });
  try {
    const fake = fakeSessionProvider({ failRenewals: true });
    const { faults, events } = recordingFaults();
    const sessions = new SessionManager(fake.provider, { ...BASE, sessionIdleTimeoutMs: 20_000 }, faults);
    sessions.start(2);
    await Promise.resolve();
    assert.equal(fake.cleanups(), 1, 'an orphan sweep at start');
    const every = renewalIntervalMs(20_000, SESSION_RENEWAL_BUFFER_MS);
    mock.timers.tick(every);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(fake.renewals, [{ owners: ['work-0-rt1', 'work-1-rt1'], lockMs: 20_000, idleMs: 20_000 }]);
    assert.ok(events.includes('failed renew_session_locks'));
    sessions.stop();
    mock.timers.tick(every * 3);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(fake.renewals.length, 1, 'no renewal after stop');
  } finally {
    mock.timers.reset();
  }
});
