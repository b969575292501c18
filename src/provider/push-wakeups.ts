/**
 * Push wake-ups of one provider object, shared by every runtime and client of this process that
 * uses it: one subscription to the store's optional `subscribeToWakeups` capability while anything
 * listens, fanned out to queue listeners (the runtime's worker pools, see
 * src/runtime/queue-gate.ts) and to status watches (a Client waiting for an instance).
 */
import type { Provider, WakeupEvent, WakeupSubscription } from './contract';
import { DueTimes } from './due-times';
import { notifyLocal } from './local-wakeups';

/** While live, a waiting client re-reads status at least this often (a missed hint costs this). */
export const STATUS_SAFETY_MS = 5_000;

/** What one worker pool hears about its queue. */
export interface QueueListener {
  /** `count` items were announced ready. */
  grant(count: number): void;
  /** An item becomes visible in `dueInMs`. */
  due(dueInMs: number): void;
  /** Nothing missed may be assumed (the channel came up or went down): look again. */
  drainAll(): void;
  /** Nobody uses the listener any more. */
  dispose(): void;
}

export type WakeupQueue = 'orchestrator' | 'worker';

/** Where the channel's outages and recoveries are reported (the runtime installs its logger). */
export type ChannelReport = (level: 'info' | 'warn', message: string) => void;
let report: ChannelReport = () => undefined;

/** Sends the push channel's outage and recovery messages to `reporter`. */
export function reportWakeupChannelTo(reporter: ChannelReport): void {
  report = reporter;
}

/** Status hints of one instance (see {@link PushWakeups.watchStatus}). */
export class StatusWatch {
  private fired = false;
  private fires = 0;
  private wake: (() => void) | null = null;

  constructor(private readonly onClose: () => void) {}

  /** Forgets hints seen so far (call right before reading the status). */
  reset(): void {
    this.fired = false;
  }

  /** True when a hint arrived since the watch opened or was last {@link reset}. */
  get hasFired(): boolean {
    return this.fired;
  }

  /** Hints heard since the watch opened (one per notification; {@link reset} keeps the count). */
  get fireCount(): number {
    return this.fires;
  }

  fire(): void {
    this.fired = true;
    this.fires += 1;
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
  private readonly gates = { orchestrator: new Set<QueueListener>(), worker: new Set<QueueListener>() };
  private readonly keyedWorkerGates = new Map<string, QueueListener>();
  private subscription: WakeupSubscription | null = null;
  private users = 0;
  private readonly statusWatches = new Map<string, Set<StatusWatch>>();
  private wasLive = false;
  private outageLogged = false;
  private channelEpoch = 0;
  /** Delayed items announced so far: a pool that opens its gate later learns them too. */
  private readonly dueTimes = { orchestrator: new DueTimes(), worker: new DueTimes() };

  constructor(private readonly provider: Provider) {}

  /** True while hints flow: workers sleep on the gates instead of polling. */
  get live(): boolean {
    return this.subscription?.live === true;
  }

  /**
   * Changes whenever hints may have been missed: the subscription opened or closed, the channel
   * came up or went down. Live with the same epoch at two moments: every hint sent between them
   * arrives.
   */
  get epoch(): number {
    return this.channelEpoch;
  }

  /** Registers a user (dispatcher, worker pool, waiting client); returns its release. */
  acquire(): () => void {
    if (this.provider.subscribeToWakeups === undefined) return () => undefined;
    this.users += 1;
    if (this.subscription === null) {
      this.channelEpoch += 1;
      this.subscription = this.provider.subscribeToWakeups((event) => this.onEvent(event));
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.users -= 1;
      if (this.users > 0 || this.subscription === null) return;
      this.subscription.unsubscribe();
      this.subscription = null;
      this.channelEpoch += 1;
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

  private grant(queue: WakeupQueue, ready: number): void {
    for (const gate of [...this.gates[queue]]) gate.grant(ready);
  }

  /**
   * The worker-queue listener of the pool identified by `key` (compared as JSON; include something
   * unique per runtime), made by `create` on first use and kept until nothing in the process uses
   * push wake-ups any more.
   */
  workerListener<L extends QueueListener>(key: unknown, create: () => L): L {
    const text = JSON.stringify(key);
    let listener = this.keyedWorkerGates.get(text);
    if (listener === undefined) {
      listener = create();
      this.keyedWorkerGates.set(text, listener);
      this.gates.worker.add(listener);
      this.armKnownDueTimes('worker', listener);
    }
    return listener as L;
  }

  /** The listeners registered on `queue` now (for diagnostics and tests). */
  listeners(queue: WakeupQueue): QueueListener[] {
    return [...this.gates[queue]];
  }

  /** Registers the listener of one worker pool on `queue`; returns its release (call when the pool stopped). */
  listen(queue: WakeupQueue, listener: QueueListener): () => void {
    const releaseUse = this.acquire();
    this.gates[queue].add(listener);
    this.armKnownDueTimes(queue, listener);
    return () => {
      if (!this.gates[queue].delete(listener)) return;
      listener.dispose();
      releaseUse();
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
  private due(queue: WakeupQueue, dueInMs: number): void {
    this.dueTimes[queue].add(dueInMs);
    for (const gate of this.gates[queue]) gate.due(dueInMs);
  }

  private armKnownDueTimes(queue: WakeupQueue, gate: QueueListener): void {
    for (const dueInMs of this.dueTimes[queue].pending()) gate.due(dueInMs);
  }

  private onEvent(event: WakeupEvent): void {
    if (event.kind === 'queue') {
      this.grant(event.queue, event.ready);
      if (event.dueInMs !== null) this.due(event.queue, event.dueInMs);
    } else if (event.kind === 'status') {
      for (const watch of [...(this.statusWatches.get(event.instanceId) ?? [])]) watch.fire();
    } else if (event.kind === 'live') {
      this.channelEpoch += 1;
      if (this.outageLogged) report('info', 'push wake-ups restored');
      this.wasLive = true;
      this.outageLogged = false;
      this.grant('orchestrator', event.orchestratorReady);
      this.grant('worker', event.workerReady);
      for (const dueInMs of event.orchestratorDueInMs) this.due('orchestrator', dueInMs);
      for (const dueInMs of event.workerDueInMs) this.due('worker', dueInMs);
      this.wakeEverything();
    } else {
      this.channelEpoch += 1;
      if (this.wasLive && !this.outageLogged) {
        this.outageLogged = true;
        report('warn', `push wake-ups lost, polling until the connection is back: ${event.error.message}`);
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
