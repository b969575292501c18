/**
 * Lock renewal timing (docs/runtime.md, "Lock renewal"), computed in milliseconds so that
 * sub-second and non-whole-second timeouts are honoured rather than truncated.
 */

const MIN_RENEWAL_INTERVAL_MS = 1000;
const LONG_TIMEOUT_THRESHOLD_MS = 15_000;

/**
 * How often a lock of `timeoutMs` is renewed: `timeout - buffer` for timeouts of 15 s or more,
 * otherwise half the timeout (rounded up); never more often than once a second.
 */
export function renewalIntervalMs(timeoutMs: number, bufferMs: number): number {
  const interval = timeoutMs >= LONG_TIMEOUT_THRESHOLD_MS ? timeoutMs - bufferMs : Math.ceil(timeoutMs / 2);
  return Math.max(MIN_RENEWAL_INTERVAL_MS, interval);
}

/** Outcome reported to the owner of a renewal loop. */
export type RenewalFailure = 'lock_lost';

/**
 * Renews a lock every interval until stopped. A renewal that reports the lock lost ends the loop
 * and calls `onLost`; other failures (connection blips) are retried at the next interval.
 */
export class LockRenewer {
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly renew: () => Promise<void>,
    private readonly intervalMs: number,
    private readonly isLockLost: (error: unknown) => boolean,
    private readonly onLost: () => void,
    private readonly onError: (error: unknown) => void,
    private readonly onRenewed: () => void = () => undefined,
  ) {}

  /** Starts renewing; the first renewal comes after `firstDelayMs` (a lock taken a while ago). */
  start(firstDelayMs = this.intervalMs): this {
    this.schedule(Math.max(0, firstDelayMs));
    return this;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(delayMs = this.intervalMs): void {
    if (this.stopped) return;
    // tick() catches every failure and reports it through onLost / onError, so it never rejects.
    this.timer = setTimeout(() => void this.tick(), delayMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.renew();
      this.onRenewed();
    } catch (error) {
      if (this.stopped) return;
      if (this.isLockLost(error)) {
        this.stopped = true;
        this.onLost();
        return;
      }
      this.onError(error);
    }
    this.schedule();
  }
}
