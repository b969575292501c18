/**
 * Availability accounting of this process: which database node its connections use, how often
 * that node changed (failovers), and how long the database was out. Process-global like
 * liveness.ts, so every runtime and Client on every provider adds to the same figures, which
 * Prometheus reads at scrape time (`durox_failovers_total`, `durox_database_outage_seconds_total`).
 */
import { log, RUNTIME_TARGET } from './logger';

const totals = { failovers: 0, outageMs: 0, outages: 0 };
/** Operations currently failing, per fault log, and when the first of them started failing. */
let failingOperations = 0;
let outageStartedAt: number | null = null;

/**
 * A connection landed on `node` (described by `role`), chosen by the multi-host node selector.
 * A node other than the one chosen before is a failover: counted and logged.
 */
export function recordNodeChosen(node: string, role: string, previous: string | null): void {
  if (previous === null) {
    log('info', RUNTIME_TARGET, `database node ${node} chosen: it is ${role}`, { node });
    return;
  }
  if (previous === node) {
    log('info', RUNTIME_TARGET, `database node ${node} chosen again: it is ${role}`, { node });
    return;
  }
  totals.failovers += 1;
  log('warn', RUNTIME_TARGET, `failover: connections moved from ${previous} to ${node}, which is ${role}`, { node, previous });
}

/** An operation started failing (see fault-log.ts): the database outage starts with the first. */
export function outageOperationStarted(now: number = Date.now()): void {
  if (failingOperations === 0) {
    outageStartedAt = now;
    totals.outages += 1;
  }
  failingOperations += 1;
}

/** An operation works again; the outage ends with the last; returns its length when it ended. */
export function outageOperationEnded(now: number = Date.now()): number | null {
  failingOperations = Math.max(0, failingOperations - 1);
  if (failingOperations > 0 || outageStartedAt === null) return null;
  const lasted = Math.max(0, now - outageStartedAt);
  totals.outageMs += lasted;
  outageStartedAt = null;
  return lasted;
}

/** Figures of this process since it started; an outage in progress counts up to now. */
export function availabilityTotals(now: number = Date.now()): { failovers: number; outages: number; outageMs: number } {
  const ongoing = outageStartedAt === null ? 0 : Math.max(0, now - outageStartedAt);
  return { failovers: totals.failovers, outages: totals.outages, outageMs: totals.outageMs + ongoing };
}
