/**
 * Logs provider outages once per outage and operation, not once per failed poll, and says when
 * the operation works again.
 *
 * An outage ends only after the operation has kept working for {@link RECOVERY_SETTLE_MS}: during a
 * database restart some calls succeed on a fresh connection just before the server shuts down,
 * and logging each such flap as a new outage would print a pair of lines per worker loop.
 */
import { log, RUNTIME_TARGET } from './logger';

/** How long an operation must keep working before its outage is reported as over. */
export const RECOVERY_SETTLE_MS = 2000;

interface Outage {
  failures: number;
  /** Pending "works again" report; cleared when the operation fails again first. */
  settle: NodeJS.Timeout | null;
}

export class FaultLog {
  private readonly outages = new Map<string, Outage>();

  failed(operation: string, error: unknown): void {
    const outage = this.outages.get(operation);
    if (outage === undefined) {
      this.outages.set(operation, { failures: 1, settle: null });
      log('warn', RUNTIME_TARGET, `${operation} failed; retrying with backoff: ${messageOf(error)}`, { operation });
      return;
    }
    outage.failures += 1;
    if (outage.settle !== null) {
      // It failed again before the recovery settled: still the same outage.
      clearTimeout(outage.settle);
      outage.settle = null;
    }
  }

  recovered(operation: string): void {
    const outage = this.outages.get(operation);
    if (outage === undefined || outage.settle !== null) return;
    outage.settle = setTimeout(() => {
      this.outages.delete(operation);
      log('warn', RUNTIME_TARGET, `${operation} works again after ${outage.failures} failed attempt(s)`, { operation });
    }, RECOVERY_SETTLE_MS);
    outage.settle.unref();
  }
}

/** The message of an unknown thrown value. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
