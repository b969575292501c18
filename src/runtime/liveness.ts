/**
 * Liveness accounting: work that only the safety fetch found.
 *
 * Every ready item is meant to reach a worker through a wake-up (a notification credit, a due
 * timer, an eager hand-off). The safety fetch (queue-gate.ts, every SAFETY_FETCH_MS) exists
 * only as a net for what no wake-up can announce: work whose lock expired because its holder
 * died. Anything else it finds was a lost wake-up, which a user sees as a ten-second stall, so
 * each find is counted here, logged at WARN with the item, and exported to Prometheus
 * (`durox_safety_fetch_hits_total`). The test runner fails a test file whose process counted an
 * `unannounced` hit (scripts/liveness-guard.js), and the bench report prints the counts.
 *
 * Cause: an item fetched for the first time (attempt 1) was never locked before, so nothing but
 * a wake-up could have announced it: `unannounced`. A redelivered item (attempt > 1) had a holder
 * whose lock ran out, and an activity pinned to a session whose owner's session lock lapsed was
 * blocked by that owner: `expired_lock`, the net doing its job. The safety timer fires at any
 * moment, also while work streams in: a first delivery that had been visible for less than
 * {@link ANNOUNCEMENT_GRACE_MS} may simply have been fetched before its own notification arrived
 * (its enqueue's commit and the notification's delivery take a few milliseconds): `raced`, which
 * nobody waited for. A first delivery found while the store is out or within
 * {@link OUTAGE_GRACE_MS} after a store call last failed is `outage`: LISTEN/NOTIFY is not
 * durable across a failover (a notification of a commit on the old primary dies with it, and the
 * push channel and the pool's connections come back at different moments), so the net catching
 * such work is expected; the runtime drains after recovering (worker-loop.ts) to keep it rare.
 * Only an item older than the grace, found when the store has been healthy, waited for the net
 * without cause: a lost wake-up.
 */
import { msSinceLastStoreFailure } from '../provider/availability';
import { log, RUNTIME_TARGET } from './logger';

export type SafetyFetchQueue = 'orchestrator' | 'worker';
export type SafetyFetchCause = 'unannounced' | 'expired_lock' | 'raced' | 'outage';

/**
 * A first delivery younger than this, found by the safety fetch, raced its own announcement.
 * Far above a notification's delivery time (milliseconds, tens under load), far below the
 * safety fetch's period, so a lost wake-up that made anyone wait is still counted.
 */
export const ANNOUNCEMENT_GRACE_MS = 1_000;

/**
 * A first delivery found by the safety fetch this soon after a store call failed is put down to
 * the outage (see above): longer than a failover's recovery takes to settle on the store's
 * connections (seconds), shorter than a safety period and a half.
 */
export const OUTAGE_GRACE_MS = 15_000;

/** One item that the safety fetch found. */
export interface SafetyFetchHit {
  queue: SafetyFetchQueue;
  cause: SafetyFetchCause;
  instanceId: string;
  /** The activity's name for worker items. */
  activityName?: string;
  attemptCount: number;
  /** The item's session was taken over from an owner whose session lock lapsed. */
  sessionTakenOver?: boolean;
  /** How long the item had been visible when the safety fetch took it (ms), if the store says. */
  waitedMs?: number;
}

const totals: Record<SafetyFetchQueue, Record<SafetyFetchCause, number>> = {
  orchestrator: { unannounced: 0, expired_lock: 0, raced: 0, outage: 0 },
  worker: { unannounced: 0, expired_lock: 0, raced: 0, outage: 0 },
};

/** Why the safety fetch found `hit` (see the cause rules above). */
export function safetyFetchCause(hit: Omit<SafetyFetchHit, 'cause'>): SafetyFetchCause {
  if (hit.attemptCount > 1 || hit.sessionTakenOver === true) return 'expired_lock';
  if (hit.waitedMs !== undefined && hit.waitedMs < ANNOUNCEMENT_GRACE_MS) return 'raced';
  const sinceFailure = msSinceLastStoreFailure();
  if (sinceFailure !== null && sinceFailure < OUTAGE_GRACE_MS) return 'outage';
  return 'unannounced';
}

const MESSAGES: Record<SafetyFetchCause, (queue: SafetyFetchQueue) => string> = {
  unannounced: (queue) => `the safety fetch found ${queue} work that no wake-up announced (a lost wake-up)`,
  expired_lock: (queue) => `the safety fetch found ${queue} work whose previous lock expired`,
  raced: (queue) => `the safety fetch took ${queue} work a moment before its announcement arrived`,
  outage: (queue) => `the safety fetch found ${queue} work that became ready while the store recovered from an outage`,
};

/** Counts and logs one item that only the safety fetch found; returns its cause. */
export function recordSafetyFetchHit(hit: Omit<SafetyFetchHit, 'cause'>): SafetyFetchCause {
  const cause = safetyFetchCause(hit);
  totals[hit.queue][cause] += 1;
  log(cause === 'raced' ? 'debug' : 'warn', RUNTIME_TARGET, MESSAGES[cause](hit.queue), {
    instance_id: hit.instanceId,
    activity_name: hit.activityName,
    attempt: hit.attemptCount,
    waited_ms: hit.waitedMs,
    cause,
  });
  return cause;
}

/** Safety-fetch hits of this process by queue and cause, since it started. */
export function safetyFetchHits(): Record<SafetyFetchQueue, Record<SafetyFetchCause, number>> {
  return { orchestrator: { ...totals.orchestrator }, worker: { ...totals.worker } };
}
