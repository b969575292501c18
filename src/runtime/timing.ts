/** Small timing helpers shared by the dispatchers. */

/** Resolves after `ms`, or at once when `signal` aborts. Never rejects. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** `base * 2^(attempt-1)` with the exponent capped at 6, then capped at `maxMs` (section 1.9). */
export function unregisteredBackoffMs(attempt: number, baseMs: number, maxMs: number): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 6);
  return Math.min(baseMs * 2 ** exponent, maxMs);
}

/** `base * 2^n`, capped at `maxMs`: the pause after the n-th consecutive failure (n from 0). */
export function exponentialBackoffMs(failures: number, baseMs: number, maxMs: number): number {
  return Math.min(baseMs * 2 ** Math.min(failures, 20), maxMs);
}
