/**
 * Availability accounting of this process: which database node its connections use, how often
 * that node changed (failovers), and how long the database was out. Process-global like
 * liveness.ts, so every runtime and Client on every provider adds to the same figures, which
 * Prometheus reads at scrape time (`durox_failovers_total`, `durox_database_outage_seconds_total`).
 * Its messages go to the reporter the runtime installs (its logger), as the push channel's do.
 */

/** Where node choices and failovers are told. */
export type AvailabilityReport = (level: 'info' | 'warn', message: string, fields: Record<string, string>) => void;

let report: AvailabilityReport = () => undefined;

/** Sends node choices and failover messages to `reporter`. */
export function reportAvailabilityTo(reporter: AvailabilityReport): void {
  report = reporter;
}

const totals = { failovers: 0, outageMs: 0, outages: 0 };
/** When the open database outage started (null: none open), and the last failure seen. */
let outageStartedAt: number | null = null;
let lastFailureAt = 0;

/**
 * A connection landed on `node` (described by `role`), chosen by the multi-host node selector.
 * A node other than the one chosen before is a failover: counted and logged.
 */
export function recordNodeChosen(node: string, role: string, previous: string | null): void {
  if (previous === null) {
    report('info', `database node ${node} chosen: it is ${role}`, { node });
    return;
  }
  if (previous === node) {
    report('info', `database node ${node} chosen again: it is ${role}`, { node });
    return;
  }
  totals.failovers += 1;
  report('warn', `failover: connections moved from ${previous} to ${node}, which is ${role}`, { node, previous });
}

/**
 * A store call failed with a retryable error (fault-log.ts): opens the database outage unless one
 * is open already.
 */
export function recordOutageFailure(now: number = Date.now()): void {
  if (outageStartedAt === null) {
    outageStartedAt = now;
    totals.outages += 1;
  }
  lastFailureAt = now;
}

/**
 * An operation works again and kept working (its recovery settled, fault-log.ts): the outage
 * ends at `recoveredAt`, unless some call failed after that. Returns the outage's length when it ended.
 */
export function recordOutageRecovery(recoveredAt: number): number | null {
  if (outageStartedAt === null || lastFailureAt > recoveredAt) return null;
  const lasted = Math.max(0, recoveredAt - outageStartedAt);
  totals.outageMs += lasted;
  outageStartedAt = null;
  return lasted;
}

/** Milliseconds since a store call last failed with a retryable error, or null if none ever did. */
export function msSinceLastStoreFailure(now: number = Date.now()): number | null {
  return lastFailureAt === 0 ? null : Math.max(0, now - lastFailureAt);
}

/** Figures of this process since it started; an outage in progress counts up to now. */
export function availabilityTotals(now: number = Date.now()): { failovers: number; outages: number; outageMs: number } {
  const ongoing = outageStartedAt === null ? 0 : Math.max(0, now - outageStartedAt);
  return { failovers: totals.failovers, outages: totals.outages, outageMs: totals.outageMs + ongoing };
}
