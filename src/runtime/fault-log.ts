/**
 * Logs provider outages once per outage and operation, not once per failed poll, says when the
 * cause changes during an outage (the connection refused, then the node read-only while a
 * failover promotes the standby) and when the operation works again, after how long.
 *
 * An outage ends only after the operation has kept working for {@link RECOVERY_SETTLE_MS}: during a
 * database restart some calls succeed on a fresh connection just before the server shuts down,
 * and logging each such flap as a new outage would print a pair of lines per worker loop.
 */
import { isReadOnlyNodeError, ProviderError } from '../provider/errors';
import { recordOutageFailure, recordOutageRecovery } from '../provider/availability';
import { log, RUNTIME_TARGET } from './logger';

/** How long an operation must keep working before its outage is reported as over. */
export const RECOVERY_SETTLE_MS = 2000;

interface Outage {
  failures: number;
  startedAt: number;
  cause: string;
  /** When the operation first worked again (the outage's end, once the recovery settles). */
  recoveredAt: number;
  /** Pending "works again" report; cleared when the operation fails again first. */
  settle: NodeJS.Timeout | null;
}

export class FaultLog {
  private readonly outages = new Map<string, Outage>();

  failed(operation: string, error: unknown): void {
    const outage = this.outages.get(operation);
    const cause = causeOf(error);
    const now = Date.now();
    recordOutageFailure(now);
    if (outage === undefined) {
      this.outages.set(operation, { failures: 1, startedAt: now, cause, recoveredAt: now, settle: null });
      log('warn', RUNTIME_TARGET, `${operation} failed; retrying with backoff: ${messageOf(error)}`, {
        operation,
        cause,
      });
      return;
    }
    outage.failures += 1;
    if (cause !== outage.cause) {
      log(
        'warn',
        RUNTIME_TARGET,
        `${operation} still failing, now because ${cause} (before: ${outage.cause}): ${messageOf(error)}`,
        { operation, cause },
      );
      outage.cause = cause;
    }
    if (outage.settle !== null) {
      // It failed again before the recovery settled: still the same outage.
      clearTimeout(outage.settle);
      outage.settle = null;
    }
  }

  recovered(operation: string): void {
    const outage = this.outages.get(operation);
    if (outage === undefined || outage.settle !== null) return;
    outage.recoveredAt = Date.now();
    outage.settle = setTimeout(() => {
      this.outages.delete(operation);
      recordOutageRecovery(outage.recoveredAt);
      const seconds = ((outage.recoveredAt - outage.startedAt) / 1000).toFixed(1);
      log(
        'warn',
        RUNTIME_TARGET,
        `${operation} works again after ${outage.failures} failed attempt(s) over ${seconds} s`,
        {
          operation,
          outage_ms: outage.recoveredAt - outage.startedAt,
        },
      );
    }, RECOVERY_SETTLE_MS);
    outage.settle.unref();
  }
}

/**
 * A short name for why a call failed, coarse enough that one outage does not flap between
 * causes (a refused connection and a terminated one are both "unreachable"), fine enough to
 * tell a read-only standby: it means a failover is in progress or the URL points at a standby.
 */
export function causeOf(error: unknown): string {
  if (isReadOnlyNodeError(error)) return 'the node is a read-only standby';
  if (error instanceof ProviderError) return error.code === 'unavailable' ? 'the database is unreachable' : error.code;
  return error instanceof Error ? error.name : typeof error;
}

/** The message of an unknown thrown value. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
