/**
 * Push wake-ups: idle dispatchers and waiting clients sleep until the store says there is news,
 * instead of polling every `dispatcherPollIntervalMs`.
 *
 * One {@link PushWakeups} (src/provider/push-wakeups.ts) per provider object subscribes to
 * `provider.subscribeToWakeups` while anything in the process uses it. Each worker pool (a
 * runtime's dispatcher, its activity slots) has a {@link QueueGate} of its own (wake-up credits
 * and due timers; the eager-dispatch inbox and reservations are in handoff-inbox.ts):
 * - A notification of `ready` items grants `ready` credits; each credit wakes ONE idle worker for
 *   ONE fetch (no thundering herd: an item announced once costs one fetch, not one per worker).
 * - A worker that finished an item fetches again only if a credit is left; otherwise it sleeps.
 *   This keeps round trips at the floor when work trickles in, and keeps every worker busy
 *   (the database never idles while work is ready) when it floods in.
 * - Delayed items (timers, retries) arm a local timer from the store's `dueInMs`; when it fires
 *   one worker "drains" (fetches until the queue answers empty).
 * - A rare safety fetch (every {@link SAFETY_FETCH_MS} per queue, by one worker) finds what
 *   no notification announces: work whose lock expired because its holder died.
 * - While the push channel is down (or the provider has none), workers poll as before.
 *
 * What keeps this free of lost wake-ups (each rule is tested; a break shows as a safety-fetch
 * hit, see liveness.ts):
 * - The store's side: a fetch returns every fetchable message committed before its scan (fetch
 *   scans read the clock after their snapshot), and whatever it skips because its instance is
 *   held is announced again when the holder releases it (the releasing ack or abandon announces
 *   the instance's waiting messages, see notifications.sql).
 * - So a fetch that comes back short answers every credit received before it was sent (its
 *   mark); credits received after the mark stay. A fetch that comes back full leaves the credits
 *   alone. A fetch that comes back empty while announcements arrived is followed by another
 *   (worker-loop.ts): those announcements woke workers whose fetches may have taken the very item
 *   it was woken for (scans skip rows other fetches hold), leaving theirs to nobody.
 * - Every claimed or reserved item has exactly one owner: a reserved worker, an inbox place that
 *   a worker drains before it sleeps, or the queue again (given back at once).
 * - A delayed item's due time reaches every pool, including pools that open after it was
 *   announced (PushWakeups remembers due times; the provider replays them to late subscribers).
 */
import { setMaxListeners } from 'node:events';
import type { PushWakeups, QueueListener, WakeupQueue } from '../provider/push-wakeups';

/** Idle safety fetch per queue while push wake-ups are live (finds work of crashed peers). */
export const SAFETY_FETCH_MS = 10_000;
/**
 * Why an idle worker woke: fetch once for announced work, fetch until the queue is empty, or
 * fetch until empty for the safety net (what its first fetch finds, no wake-up announced: that
 * is counted, see liveness.ts).
 */
export type WakeReason = 'once' | 'drain' | 'safety';

/**
 * Every idle slot of a pool waits with one abort listener on the pool's shared stop signal; allow
 * as many as there are slots (Node warns above 10 by default).
 */
export function allowWaiters(signal: AbortSignal, slots: number): void {
  if (slots > 10) setMaxListeners(slots + 10, signal);
}

/** What woke an idle worker: a reason to fetch, or an item handed to it (eager dispatch). */
export type Wake<T> = WakeReason | { handedOff: T };

/** An idle worker sleeping on a gate. */
export interface Waiter<T> {
  resolve: (wake: Wake<T>) => void;
}

/**
 * Credits and timers of one queue, and the idle workers waiting on it. `T` is what another pool
 * may hand straight to an idle worker (see handoff-inbox.ts and eager-dispatch.ts).
 */
export class QueueGate<T = never> implements QueueListener {
  private credits = 0;
  /** Total credits ever granted; lets an empty fetch discard only credits it has answered. */
  private received = 0;
  private pendingDrain = false;
  private waiters: Array<Waiter<T>> = [];
  /** Told when a worker stops waiting because its pool stops (the inbox forgets its reservation). */
  private waiterGone: (waiter: Waiter<T>) => void = () => undefined;
  private dueTimes: number[] = [];
  private dueTimer: NodeJS.Timeout | undefined;
  private safetyTimer: NodeJS.Timeout | undefined;

  /** How many workers sleep on the gate (for diagnostics and tests; reading it changes nothing). */
  get idleWorkers(): number {
    return this.waiters.length;
  }

  /** Which wake-ups are armed: a due item's, the safety fetch's (for diagnostics and tests). */
  get armedTimers(): { due: boolean; safety: boolean } {
    return { due: this.dueTimes.length > 0, safety: this.safetyTimer !== undefined };
  }

  /** A snapshot to pass to {@link fetchedNothing} after an empty fetch. */
  get mark(): number {
    return this.received;
  }

  grant(count: number): void {
    if (count < 0) return;
    this.received += count;
    this.credits += count;
    this.wakeForCredits();
  }

  /**
   * Gives back credits that a fetch took (a batch fetch's extra places, see takeCredits) when
   * that fetch failed: it answered nothing, so the announcements are still owed. Without this, a
   * store whose calls fail while its push channel is live (a failover: the listener reconnects
   * before the pool does) burned credits on every retry and stranded their items.
   */
  returnCredits(count: number): void {
    if (count <= 0) return;
    this.credits += count;
    this.wakeForCredits();
  }

  private wakeForCredits(): void {
    while (this.credits > 0 && this.waiters.length > 0) {
      this.credits -= 1;
      this.waiters.shift()?.resolve('once');
    }
  }

  /** Wakes one worker to drain, or the next one that looks. */
  drainOne(): void {
    const waiter = this.waiters.shift();
    if (waiter === undefined) this.pendingDrain = true;
    else waiter.resolve('drain');
  }

  /** Wakes every waiting worker to drain (the push channel came up or went down). */
  drainAll(): void {
    const waiters = this.waiters;
    this.waiters = [];
    // With nobody idle, the next worker to finish an item drains instead.
    if (waiters.length === 0) this.pendingDrain = true;
    for (const waiter of waiters) waiter.resolve('drain');
  }

  /** Arms a wake-up for an item that becomes visible in `dueInMs`. */
  due(dueInMs: number): void {
    const at = Date.now() + dueInMs;
    let i = this.dueTimes.length;
    while (i > 0 && this.dueTimes[i - 1] > at) i -= 1;
    this.dueTimes.splice(i, 0, at);
    if (i === 0) this.armDueTimer();
  }

  /** Work to do without sleeping, if any credit or drain is pending. */
  take(): WakeReason | null {
    if (this.pendingDrain) {
      this.pendingDrain = false;
      return 'drain';
    }
    if (this.credits > 0) {
      this.credits -= 1;
      return 'once';
    }
    return null;
  }

  /** An empty fetch answers every credit granted before `mark`: those are dropped. */
  fetchedNothing(mark: number): void {
    this.credits = Math.min(this.credits, this.received - mark);
  }

  /** Takes up to `max` idle workers off the gate (they are set aside for handed-off items). */
  takeIdle(max: number): Array<Waiter<T>> {
    return this.waiters.splice(0, Math.max(0, max));
  }

  /**
   * Puts set-aside workers back first in line. A drain or credit that came while they were set
   * aside found nobody idle and was left for the next worker to look: if nobody else looks, these
   * workers are the next, so one of them drains and credits wake others.
   */
  returnIdle(waiters: Array<Waiter<T>>): void {
    this.waiters.unshift(...waiters);
    if (waiters.length === 0) return;
    if (this.pendingDrain) {
      this.pendingDrain = false;
      this.waiters.shift()?.resolve('drain');
    }
    if (this.credits > 0) this.grant(0);
  }

  /** Uses up to `max` credits (a batch fetch answers that many announcements); returns how many. */
  takeCredits(max: number): number {
    const count = Math.max(0, Math.min(max, this.credits));
    this.credits -= count;
    return count;
  }

  /** Calls `gone` for a worker that stops waiting because its pool stops. */
  onWaiterGone(gone: (waiter: Waiter<T>) => void): void {
    this.waiterGone = gone;
  }

  /** Sleeps until a credit, a due item, the safety fetch, a handed-off item or `signal`. */
  wait(signal: AbortSignal): Promise<Wake<T>> {
    const ready = this.take();
    if (ready !== null || signal.aborted) return Promise.resolve(ready ?? 'once');
    return new Promise((resolve) => {
      const waiter: Waiter<T> = {
        resolve: (wake) => {
          signal.removeEventListener('abort', onAbort);
          resolve(wake);
        },
      };
      const onAbort = (): void => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        this.waiterGone(waiter);
        resolve('once');
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
      this.armSafetyTimer();
    });
  }

  /** Stops the timers (nobody uses the gate any more). */
  dispose(): void {
    clearTimeout(this.dueTimer);
    clearTimeout(this.safetyTimer);
    this.dueTimer = undefined;
    this.safetyTimer = undefined;
    this.dueTimes = [];
  }

  private armDueTimer(): void {
    clearTimeout(this.dueTimer);
    if (this.dueTimes.length === 0) return;
    this.dueTimer = setTimeout(
      () => {
        const now = Date.now();
        while (this.dueTimes.length > 0 && this.dueTimes[0] <= now) {
          this.dueTimes.shift();
          this.drainOne();
        }
        this.armDueTimer();
      },
      Math.max(0, this.dueTimes[0] - Date.now()),
    );
  }

  private armSafetyTimer(): void {
    if (this.safetyTimer !== undefined) return;
    this.safetyTimer = setTimeout(() => {
      this.safetyTimer = undefined;
      if (this.waiters.length === 0) return;
      this.waiters.shift()?.resolve('safety');
      if (this.waiters.length > 0) this.armSafetyTimer();
    }, SAFETY_FETCH_MS);
  }
}

/** A gate for one worker pool on `queue`, fed by the provider object's push wake-ups; with its release (call when the pool stopped). */
export function openGate<T>(push: PushWakeups, queue: WakeupQueue): { gate: QueueGate<T>; release: () => void } {
  const gate = new QueueGate<T>();
  return { gate, release: push.listen(queue, gate) };
}

/**
 * The worker gate of the pool identified by `key` (compared as JSON; include something unique
 * per runtime), kept until nothing in the process uses push wake-ups any more.
 */
export function workerGate<T>(push: PushWakeups, key: unknown): QueueGate<T> {
  return push.workerListener(key, () => new QueueGate<T>());
}
