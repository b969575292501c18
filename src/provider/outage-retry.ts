/**
 * Retries bounded by time, not by count: a call that fails with a retryable error (the database
 * unreachable, a node that went read-only in a failover) is repeated with exponential back-off and
 * full jitter until it succeeds or the outage has lasted {@link OutageRetryPolicy.maxOutageMs}.
 * A planned failover stops writes for about a second and an unplanned one for about 50 s (the
 * pg_auto_failover monitor's default timeouts), so a count of quick retries gives up long before
 * the new primary takes writes, while a time budget rides the outage out.
 */

/** Waits `ms`, or less when `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** How long and how often to retry. */
export interface OutageRetryPolicy {
  /** Give up once the failures have lasted this long, in ms. */
  maxOutageMs: number;
  /** First pause, in ms; doubles after each failure. */
  baseDelayMs: number;
  /** Longest pause, in ms. */
  maxDelayMs: number;
}

/** Default outage budget: longer than an unplanned failover with pg_auto_failover's default timeouts (~50 s). */
export const DEFAULT_MAX_OUTAGE_MS = 90_000;

/** The default policy: 90 s budget, pauses of 25 ms doubling up to 2 s, jittered. */
export const DEFAULT_OUTAGE_RETRY: OutageRetryPolicy = {
  maxOutageMs: DEFAULT_MAX_OUTAGE_MS,
  baseDelayMs: 25,
  maxDelayMs: 2000,
};

/** The policy with `maxOutageMs` replaced (the other settings stay the defaults). */
export function outageRetryPolicy(maxOutageMs: number = DEFAULT_MAX_OUTAGE_MS): OutageRetryPolicy {
  return { ...DEFAULT_OUTAGE_RETRY, maxOutageMs };
}

/**
 * The pause after the `failures`-th consecutive failure (from 1): a random point in the upper half of
 * `base * 2^(failures-1)` capped at `maxDelayMs`, so many callers that failed together do not
 * retry together.
 */
export function jitteredDelayMs(
  failures: number,
  policy: OutageRetryPolicy,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.baseDelayMs * 2 ** Math.min(Math.max(failures - 1, 0), 20), policy.maxDelayMs);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** What the caller hears about each failed attempt (for logs and metrics). */
export type RetryObserver = (error: unknown, attempt: number, elapsedMs: number) => void;

/**
 * Runs `operation` until it succeeds, repeating it while `isRetryable` accepts its error and the
 * failures have lasted less than `policy.maxOutageMs`. The last error is rethrown when the budget
 * is spent, at once for an error that is not retryable, and when `signal` aborts.
 */
export async function retryThroughOutage<T>(
  operation: () => Promise<T>,
  policy: OutageRetryPolicy,
  isRetryable: (error: unknown) => boolean,
  options: { signal?: AbortSignal; onFailure?: RetryObserver; now?: () => number } = {},
): Promise<T> {
  const now = options.now ?? Date.now;
  const started = now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation();
    } catch (error) {
      const elapsed = now() - started;
      if (!isRetryable(error) || options.signal?.aborted === true) throw error;
      options.onFailure?.(error, attempt, elapsed);
      const pause = jitteredDelayMs(attempt, policy);
      if (elapsed + pause > policy.maxOutageMs) throw error;
      await sleep(pause, options.signal);
    }
  }
}
