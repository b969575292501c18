/**
 * In-process wake-ups: when a Client or a runtime in this process enqueues work on a provider,
 * idle workers of every runtime on that same provider object are woken at once instead of
 * sleeping out their poll interval, and waiting clients re-read status. Work enqueued by other
 * processes is still found by polling.
 */
import type { Provider } from './contract';

export type WakeChannel = 'orchestrator' | 'worker' | 'status';

/** One channel: waiters sleep until notified, timed out or aborted. */
export class WakeSignal {
  /** Bumped by every notification, so a notification during a fetch is not lost. */
  generation = 0;
  private waiters = new Set<() => void>();

  notify(): void {
    this.generation += 1;
    const waiters = this.waiters;
    this.waiters = new Set();
    for (const wake of waiters) wake();
  }

  /** Sleeps up to `ms`; returns at once if notified since `seenGeneration` was read. */
  wait(ms: number, seenGeneration: number, signal?: AbortSignal): Promise<void> {
    if (ms <= 0 || this.generation !== seenGeneration || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }
}

const byProvider = new WeakMap<Provider, Record<WakeChannel, WakeSignal>>();

/** The wake signal of one channel of a provider object. */
export function wakeSignal(provider: Provider, channel: WakeChannel): WakeSignal {
  let channels = byProvider.get(provider);
  if (channels === undefined) {
    channels = { orchestrator: new WakeSignal(), worker: new WakeSignal(), status: new WakeSignal() };
    byProvider.set(provider, channels);
  }
  return channels[channel];
}

/** Tells idle waiters of this process that `channel` may have news. */
export function notifyLocal(provider: Provider, channel: WakeChannel): void {
  wakeSignal(provider, channel).notify();
}
