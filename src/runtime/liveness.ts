/**
 * Liveness accounting: work that only the safety fetch found.
 *
 * Every ready item is meant to reach a worker through a wake-up (a notification credit, a due
 * timer, an eager hand-off). The safety fetch (push-wakeups.ts, every SAFETY_FETCH_MS) exists
 * only as a net for what no wake-up can announce: work whose lock expired because its holder
 * died. Anything else it finds was a lost wake-up, which a user sees as a ten-second stall, so
 * each find is counted here, logged at WARN with the item, and exported to Prometheus
 * (`durox_safety_fetch_hits_total`). The test runner fails a test file whose process counted an
 * `unannounced` hit (scripts/liveness-guard.js), and the bench report prints the counts.
 *
 * Cause: an item fetched for the first time (attempt 1) was never locked before, so nothing but
 * a wake-up could have announced it: `unannounced`. A redelivered item (attempt > 1) had a holder
 * whose lock ran out, and an activity pinned to a session whose owner's session lock lapsed was
 * blocked by that owner: `expired_lock`, the net doing its job.
 */
import { log, RUNTIME_TARGET } from './logger';

export type SafetyFetchQueue = 'orchestrator' | 'worker';
export type SafetyFetchCause = 'unannounced' | 'expired_lock';

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
}

const totals: Record<SafetyFetchQueue, Record<SafetyFetchCause, number>> = {
  orchestrator: { unannounced: 0, expired_lock: 0 },
  worker: { unannounced: 0, expired_lock: 0 },
};

/** Counts and logs one item that only the safety fetch found; returns its cause. */
export function recordSafetyFetchHit(hit: Omit<SafetyFetchHit, 'cause'>): SafetyFetchCause {
  const cause: SafetyFetchCause = hit.attemptCount > 1 || hit.sessionTakenOver === true ? 'expired_lock' : 'unannounced';
  totals[hit.queue][cause] += 1;
  const message =
    cause === 'unannounced'
      ? `the safety fetch found ${hit.queue} work that no wake-up announced (a lost wake-up)`
      : `the safety fetch found ${hit.queue} work whose previous lock expired`;
  log('warn', RUNTIME_TARGET, message, {
    instance_id: hit.instanceId,
    activity_name: hit.activityName,
    attempt: hit.attemptCount,
    cause,
  });
  return cause;
}

/** Safety-fetch hits of this process by queue and cause, since it started. */
export function safetyFetchHits(): Record<SafetyFetchQueue, Record<SafetyFetchCause, number>> {
  return { orchestrator: { ...totals.orchestrator }, worker: { ...totals.worker } };
}
