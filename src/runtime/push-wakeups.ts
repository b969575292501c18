/**
 * Push wake-ups (performance issue 7): idle dispatchers and waiting clients sleep until the store
 * says there is news, instead of polling every `dispatcherPollIntervalMs`.
 *
 * One {@link PushWakeups} per provider object subscribes to `provider.subscribeToWakeups` while
 * anything in the process uses it. Each worker pool (a runtime's dispatcher, its activity
 * slots) has a {@link QueueGate} of its own:
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
 *   alone.
 * - Every claimed or reserved item has exactly one owner: a reserved worker, an inbox place that
 *   a worker drains before it sleeps, or the queue again (given back at once).
 * - A delayed item's due time reaches every pool, including pools that open after it was
 *   announced (PushWakeups remembers due times; the provider replays them to late subscribers).
 */
import { setMaxListeners } from 'node:events';
import type { Provider, WakeupEvent, WakeupSubscription } from '../provider/contract';
import { DueTimes } from '../provider/due-times';
import { notifyLocal } from './local-wakeups';
import { log, RUNTIME_TARGET } from './logger';

/** Idle safety fetch per queue while push wake-ups are live (finds work of crashed peers). */
export const SAFETY_FETCH_MS = 10_000;
/** While live, a waiting client re-reads status at least this often (a missed hint costs this). */
export const STATUS_SAFETY_MS = 5_000;

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

interface Waiter<T> {
  resolve: (wake: Wake<T>) => void;
}

/**
 * Credits and timers of one queue, and the idle workers waiting on it. `T` is what another pool
 * may hand straight to an idle worker (see eager-dispatch.ts).
 */
export class QueueGate<T = never> {
  private credits = 0;
  /** Total credits ever granted; lets an empty fetch discard only credits it has answered. */
  private received = 0;
  private pendingDrain = false;
  private waiters: Array<Waiter<T>> = [];
  /** Idle workers set aside for items another pool is about to hand over. */
  private reserved: Array<Waiter<T>> = [];
  /**
   * Handed-off items no idle worker took: the next worker to look runs them before fetching. At
   * most `inboxCapacity` are promised at once, so none waits longer than about one item's work.
   */
  private inbox: T[] = [];
  private inboxCapacity = 0;
  private inboxPromised = 0;
  private dueTimes: number[] = [];
  private dueTimer: NodeJS.Timeout | undefined;
  private safetyTimer: NodeJS.Timeout | undefined;

  /** A snapshot to pass to {@link fetchedNothing} after an empty fetch. */
  get mark(): number {
    return this.received;
  }

  grant(count: number): void {
    if (count < 0) return;
    this.received += count;
    this.credits += count;
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

  /** Lets up to `capacity` handed-off items wait for a busy worker (0: only idle workers take them). */
  setInboxCapacity(capacity: number): void {
    this.inboxCapacity = capacity;
  }

  /**
   * Promises up to `max` items a worker: idle workers are set aside first, then places in the
   * inbox. Returns how many; call {@link handOff} for each item that comes and
   * {@link unreserve} for each that does not.
   */
  reserve(max: number): number {
    const idle = this.waiters.splice(0, Math.max(0, max));
    this.reserved.push(...idle);
    const queued = Math.max(0, Math.min(max - idle.length, this.inboxCapacity - this.inbox.length - this.inboxPromised));
    this.inboxPromised += queued;
    return idle.length + queued;
  }

  /**
   * Promises up to `max` inbox places to items the caller is about to fetch along with its own
   * (a batch fetch). With `announcedOnly`, at most as many as there are credits, which it uses up:
   * those items were announced, and this fetch answers the announcements.
   */
  promiseQueued(max: number, announcedOnly: boolean): number {
    let count = Math.max(0, Math.min(max, this.inboxCapacity - this.inbox.length - this.inboxPromised));
    if (announcedOnly) {
      count = Math.min(count, this.credits);
      this.credits -= count;
    }
    this.inboxPromised += count;
    return count;
  }

  /** Gives back `count` promises (their items did not come): reserved workers are idle again. */
  unreserve(count: number): void {
    const back = this.reserved.splice(0, count);
    this.waiters.unshift(...back);
    this.inboxPromised = Math.max(0, this.inboxPromised - (count - back.length));
    if (back.length > 0 && this.credits > 0) this.grant(0);
  }

  /** Gives `item` to a reserved, else idle, worker, else to the inbox; false when the pool is full. */
  handOff(item: T): boolean {
    const reserved = this.reserved.shift();
    if (reserved !== undefined) {
      reserved.resolve({ handedOff: item });
      return true;
    }
    // Otherwise the item uses up an inbox promise, wherever it goes.
    const promised = this.inboxPromised > 0;
    if (promised) this.inboxPromised -= 1;
    const idle = this.waiters.shift();
    if (idle !== undefined) {
      idle.resolve({ handedOff: item });
      return true;
    }
    if (!promised && this.inbox.length >= this.inboxCapacity) return false;
    this.inbox.push(item);
    return true;
  }

  /** The oldest handed-off item waiting for a worker, if any. */
  takeHandedOff(): T | undefined {
    return this.inbox.shift();
  }

  /** Empties the inbox (the pool is stopping); the caller gives the items back. */
  clearInbox(): T[] {
    const items = this.inbox;
    this.inbox = [];
    this.inboxPromised = 0;
    return items;
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
        this.reserved = this.reserved.filter((w) => w !== waiter);
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
    this.dueTimer = setTimeout(() => {
      const now = Date.now();
      while (this.dueTimes.length > 0 && this.dueTimes[0] <= now) {
        this.dueTimes.shift();
        this.drainOne();
      }
      this.armDueTimer();
    }, Math.max(0, this.dueTimes[0] - Date.now()));
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

/** Status hints of one instance (see {@link PushWakeups.watchStatus}). */
export class StatusWatch {
  private fired = false;
  private wake: (() => void) | null = null;

  constructor(private readonly onClose: () => void) {}

  /** Forgets hints seen so far (call right before reading the status). */
  reset(): void {
    this.fired = false;
  }

  fire(): void {
    this.fired = true;
    this.wake?.();
  }

  /** Sleeps until a hint arrived since the last {@link reset}, or `ms`. */
  wait(ms: number): Promise<void> {
    if (this.fired || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.wake?.(), ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
    });
  }

  close(): void {
    this.wake?.();
    this.onClose();
  }
}

/** Push wake-ups of one provider object, shared by its runtimes and clients in this process. */
export class PushWakeups {
  /**
   * One gate per worker pool (each runtime's dispatcher and activity pool): every gate gets every
   * credit, as if each pool ran in a process of its own. Pools differ in what they can run (tag
   * filters, registrations), so one pool's empty fetch or abandon must not use up another's wake-up.
   */
  private readonly gates = { orchestrator: new Set<QueueGate<unknown>>(), worker: new Set<QueueGate<unknown>>() };
  private readonly keyedWorkerGates = new Map<string, QueueGate<unknown>>();
  private subscription: WakeupSubscription | null = null;
  private users = 0;
  private readonly statusWatches = new Map<string, Set<StatusWatch>>();
  private wasLive = false;
  private outageLogged = false;
  /** Delayed items announced so far: a pool that opens its gate later learns them too. */
  private readonly dueTimes = { orchestrator: new DueTimes(), worker: new DueTimes() };

  constructor(private readonly provider: Provider) {}

  /** True while hints flow: workers sleep on the gates instead of polling. */
  get live(): boolean {
    return this.subscription?.live === true;
  }

  /** Registers a user (dispatcher, worker pool, waiting client); returns its release. */
  acquire(): () => void {
    if (this.provider.subscribeToWakeups === undefined) return () => undefined;
    this.users += 1;
    if (this.subscription === null) this.subscription = this.provider.subscribeToWakeups((event) => this.onEvent(event));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.users -= 1;
      if (this.users > 0 || this.subscription === null) return;
      this.subscription.unsubscribe();
      this.subscription = null;
      this.wasLive = false;
      this.dueTimes.orchestrator.clear();
      this.dueTimes.worker.clear();
      for (const gate of this.keyedWorkerGates.values()) {
        gate.dispose();
        this.gates.worker.delete(gate);
      }
      this.keyedWorkerGates.clear();
    };
  }

  private grant(queue: 'orchestrator' | 'worker', ready: number): void {
    for (const gate of [...this.gates[queue]]) gate.grant(ready);
  }

  /**
   * The worker gate of the pool identified by `key` (compared as JSON; include something unique
   * per runtime), kept until nothing in the process uses push wake-ups any more.
   */
  workerGate<T>(key: unknown): QueueGate<T> {
    const text = JSON.stringify(key);
    let gate = this.keyedWorkerGates.get(text);
    if (gate === undefined) {
      gate = new QueueGate<unknown>();
      this.keyedWorkerGates.set(text, gate);
      this.gates.worker.add(gate);
      this.armKnownDueTimes('worker', gate);
    }
    return gate as QueueGate<T>;
  }

  /** A gate for one worker pool on `queue`, with its release (call when the pool stopped). */
  openGate<T>(queue: 'orchestrator' | 'worker'): { gate: QueueGate<T>; release: () => void } {
    const gate = new QueueGate<T>();
    const releaseUse = this.acquire();
    this.gates[queue].add(gate as QueueGate<unknown>);
    this.armKnownDueTimes(queue, gate as QueueGate<unknown>);
    return {
      gate,
      release: () => {
        if (!this.gates[queue].delete(gate as QueueGate<unknown>)) return;
        gate.dispose();
        releaseUse();
      },
    };
  }

  /**
   * Watches status hints of one instance. Create it before reading the status, so a hint that
   * arrives during the read is not missed; `close` it when done.
   */
  watchStatus(instanceId: string): StatusWatch {
    const watch = new StatusWatch(() => {
      const set = this.statusWatches.get(instanceId);
      set?.delete(watch);
      if (set?.size === 0) this.statusWatches.delete(instanceId);
    });
    let set = this.statusWatches.get(instanceId);
    if (set === undefined) {
      set = new Set();
      this.statusWatches.set(instanceId, set);
    }
    set.add(watch);
    return watch;
  }

  /** Records a delayed item and arms every gate of its queue. */
  private due(queue: 'orchestrator' | 'worker', dueInMs: number): void {
    this.dueTimes[queue].add(dueInMs);
    for (const gate of this.gates[queue]) gate.due(dueInMs);
  }

  private armKnownDueTimes(queue: 'orchestrator' | 'worker', gate: QueueGate<unknown>): void {
    for (const dueInMs of this.dueTimes[queue].pending()) gate.due(dueInMs);
  }

  private onEvent(event: WakeupEvent): void {
    if (event.kind === 'queue') {
      this.grant(event.queue, event.ready);
      if (event.dueInMs !== null) this.due(event.queue, event.dueInMs);
    } else if (event.kind === 'status') {
      for (const watch of [...(this.statusWatches.get(event.instanceId) ?? [])]) watch.fire();
    } else if (event.kind === 'live') {
      if (this.outageLogged) log('info', RUNTIME_TARGET, 'push wake-ups restored');
      this.wasLive = true;
      this.outageLogged = false;
      this.grant('orchestrator', event.orchestratorReady);
      this.grant('worker', event.workerReady);
      for (const dueInMs of event.orchestratorDueInMs) this.due('orchestrator', dueInMs);
      for (const dueInMs of event.workerDueInMs) this.due('worker', dueInMs);
      this.wakeEverything();
    } else {
      if (this.wasLive && !this.outageLogged) {
        this.outageLogged = true;
        log('warn', RUNTIME_TARGET, `push wake-ups lost, polling until the connection is back: ${event.error.message}`);
      }
      this.wakeEverything();
    }
  }

  /** After a reconnect or an outage nothing missed may be assumed: everyone looks again. */
  private wakeEverything(): void {
    for (const gate of [...this.gates.orchestrator, ...this.gates.worker]) gate.drainAll();
    // Workers that polled while the channel was down sleep out their poll interval on the local
    // signals, not on the gates: wake them too, or work announced now waits up to one interval.
    for (const channel of ['orchestrator', 'worker', 'status'] as const) notifyLocal(this.provider, channel);
    for (const watches of [...this.statusWatches.values()]) for (const watch of [...watches]) watch.fire();
  }
}

const byProvider = new WeakMap<Provider, PushWakeups>();

/** The push wake-ups of a provider object (created on first use). */
export function pushWakeups(provider: Provider): PushWakeups {
  let push = byProvider.get(provider);
  if (push === undefined) {
    push = new PushWakeups(provider);
    byProvider.set(provider, push);
  }
  return push;
}
