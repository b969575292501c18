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
 */
import { setMaxListeners } from 'node:events';
import type { Provider, WakeupEvent, WakeupSubscription } from '../provider/contract';
import { log, RUNTIME_TARGET } from './logger';

/** Idle safety fetch per queue while push wake-ups are live (finds work of crashed peers). */
export const SAFETY_FETCH_MS = 10_000;
/** While live, a waiting client re-reads status at least this often (a missed hint costs this). */
export const STATUS_SAFETY_MS = 5_000;

/** Why an idle worker woke: fetch once, or fetch until the queue is empty. */
export type WakeReason = 'once' | 'drain';

/**
 * Every idle slot of a pool waits with one abort listener on the pool's shared stop signal; allow
 * as many as there are slots (Node warns above 10 by default).
 */
export function allowWaiters(signal: AbortSignal, slots: number): void {
  if (slots > 10) setMaxListeners(slots + 10, signal);
}

interface Waiter {
  resolve: (reason: WakeReason) => void;
}

/** Credits and timers of one queue. */
export class QueueGate {
  private credits = 0;
  /** Total credits ever granted; lets an empty fetch discard only credits it has answered. */
  private received = 0;
  private pendingDrain = false;
  private waiters: Waiter[] = [];
  private dueTimes: number[] = [];
  private dueTimer: NodeJS.Timeout | undefined;
  private safetyTimer: NodeJS.Timeout | undefined;

  /** A snapshot to pass to {@link fetchedNothing} after an empty fetch. */
  get mark(): number {
    return this.received;
  }

  grant(count: number): void {
    if (count <= 0) return;
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

  /** Sleeps until a credit, a due item, the safety fetch or `signal`. */
  wait(signal: AbortSignal): Promise<WakeReason> {
    const ready = this.take();
    if (ready !== null || signal.aborted) return Promise.resolve(ready ?? 'once');
    return new Promise((resolve) => {
      const waiter: Waiter = {
        resolve: (reason) => {
          signal.removeEventListener('abort', onAbort);
          resolve(reason);
        },
      };
      const onAbort = (): void => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
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
      this.waiters.shift()?.resolve('drain');
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
  private readonly gates = { orchestrator: new Set<QueueGate>(), worker: new Set<QueueGate>() };
  private readonly keyedWorkerGates = new Map<string, QueueGate>();
  private subscription: WakeupSubscription | null = null;
  private users = 0;
  private readonly statusWatches = new Map<string, Set<StatusWatch>>();
  private wasLive = false;
  private outageLogged = false;

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
  workerGate(key: unknown): QueueGate {
    const text = JSON.stringify(key);
    let gate = this.keyedWorkerGates.get(text);
    if (gate === undefined) {
      gate = new QueueGate();
      this.keyedWorkerGates.set(text, gate);
      this.gates.worker.add(gate);
    }
    return gate;
  }

  /** A gate for one worker pool on `queue`, with its release (call when the pool stopped). */
  openGate(queue: 'orchestrator' | 'worker'): { gate: QueueGate; release: () => void } {
    const gate = new QueueGate();
    const releaseUse = this.acquire();
    this.gates[queue].add(gate);
    return {
      gate,
      release: () => {
        if (!this.gates[queue].delete(gate)) return;
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

  private onEvent(event: WakeupEvent): void {
    if (event.kind === 'queue') {
      this.grant(event.queue, event.ready);
      if (event.dueInMs !== null) for (const gate of this.gates[event.queue]) gate.due(event.dueInMs);
    } else if (event.kind === 'status') {
      for (const watch of [...(this.statusWatches.get(event.instanceId) ?? [])]) watch.fire();
    } else if (event.kind === 'live') {
      if (this.outageLogged) log('info', RUNTIME_TARGET, 'push wake-ups restored');
      this.wasLive = true;
      this.outageLogged = false;
      this.grant('orchestrator', event.orchestratorReady);
      this.grant('worker', event.workerReady);
      if (event.orchestratorDueInMs !== null) for (const gate of this.gates.orchestrator) gate.due(event.orchestratorDueInMs);
      if (event.workerDueInMs !== null) for (const gate of this.gates.worker) gate.due(event.workerDueInMs);
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
