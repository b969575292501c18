/**
 * Logs provider outages once per outage and operation, not once per failed poll, and says when
 * the operation works again.
 */
import { log, RUNTIME_TARGET } from './logger';

export class FaultLog {
  private readonly failing = new Map<string, number>();

  failed(operation: string, error: unknown): void {
    const count = this.failing.get(operation) ?? 0;
    this.failing.set(operation, count + 1);
    if (count === 0) {
      log('warn', RUNTIME_TARGET, `${operation} failed; retrying with backoff: ${messageOf(error)}`, { operation });
    }
  }

  recovered(operation: string): void {
    const count = this.failing.get(operation);
    if (count === undefined) return;
    this.failing.delete(operation);
    log('warn', RUNTIME_TARGET, `${operation} works again after ${count} failed attempt(s)`, { operation });
  }
}

/** The message of an unknown thrown value. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
