/**
 * The mutable state of one replay: emitted actions waiting for their events, token bindings,
 * delivered results, event subscriptions, queue mailboxes, custom status and key-value state.
 * Tasks read it when polled; the replay loop feeds it from history. It is also the host of the
 * synchronous `ctx` methods.
 */
import type { Action, EmittedAction } from './actions';
import type { OrchestrationContextHost } from './orchestration-context';
import type { KvEntry } from './turn-types';
import type { TraceLevel } from './turn-api';
import type { HistoryEvent } from './types';

/** A task's settled value: decoded on success, the error display string on failure. */
export type Outcome = { ok: true; value: unknown } | { ok: false; error: string };

/** What a schedule delivered, before decoding. */
export type RawResult = { ok: true; raw: string | null } | { ok: false; error: string };

/** Kinds of futures that leave a breadcrumb when dropped (timers leave none). */
/** Actions that carry a flow key and a priority level (activities, children, detached starts). */
type FlowAction = Extract<Action, { flowKey: string | null }>;

function takesFlowSettings(action: Action): action is FlowAction {
  return action.kind === 'activity' || action.kind === 'subOrchestration' || action.kind === 'detached';
}

export type DroppableKind = 'activity' | 'subOrchestration' | 'waitEvent' | 'dequeue';

interface ExternalSubscription {
  token: number;
  name: string;
  arrival: string | undefined;
  cancelled: boolean;
}

interface QueueSubscription {
  token: number;
  name: string;
  message: string | undefined;
  cancelled: boolean;
}

interface QueueArrival {
  name: string;
  data: string;
  consumed: boolean;
}

export interface ReplayStateOptions {
  nowMs: number;
  /** Schedule/side-effect events of the working history, in order (for key-value timestamps). */
  actionEvents: HistoryEvent[];
  kvSnapshot: Record<string, KvEntry>;
  initialCustomStatus: string | null;
  trace: (level: TraceLevel, message: string) => void;
}

export class ReplayState implements OrchestrationContextHost {
  replaying = false;
  /** Emitted actions not yet bound to an event, in emission order. */
  readonly pending: EmittedAction[] = [];
  readonly tokenToEvent = new Map<number, number>();
  readonly eventToToken = new Map<number, number>();
  readonly results = new Map<number, RawResult>();
  /** Dropped futures in drop order (token → kind). */
  readonly dropped = new Map<number, DroppableKind>();
  continueAsNew: { input: string; version: string | null } | null = null;
  customStatus: string | null;
  readonly kv = new Map<string, KvEntry>();

  private sealed = false;
  private nextToken = 1;
  private emittedCount = 0;
  private readonly externalByName = new Map<string, ExternalSubscription[]>();
  private readonly externalByToken = new Map<number, ExternalSubscription>();
  private readonly queueByToken = new Map<number, QueueSubscription>();
  private readonly queueArrivals: QueueArrival[] = [];

  constructor(private readonly options: ReplayStateOptions) {
    this.customStatus = options.initialCustomStatus;
    for (const [key, entry] of Object.entries(options.kvSnapshot)) this.kv.set(key, { ...entry });
  }

  // --- actions and bindings -----------------------------------------------------------------

  /** Records an action requested by the code and returns its token. */
  emit(action: Action): number {
    const token = this.nextToken++;
    this.emittedCount++;
    this.pending.push({ token, action });
    return token;
  }

  /**
   * Sets the tag of an activity action that is not bound yet. Async orchestrations emit an
   * activity when `scheduleActivity` is called, so `withTag` right after it has to reach the
   * already-emitted action.
   */
  retag(token: number, tag: string): void {
    const emitted = this.pending.find((p) => p.token === token);
    if (emitted === undefined || emitted.action.kind !== 'activity') {
      throw new Error('withTag must be called on the task scheduleActivity returned, before anything is awaited');
    }
    emitted.action.tag = tag;
  }

  /**
   * Sets the flow key of an activity, sub-orchestration or detached-start action that is not bound
   * yet (as {@link retag} the tag).
   */
  setFlowKey(token: number, flowKey: string): void {
    const emitted = this.pending.find((p) => p.token === token);
    if (emitted === undefined || !takesFlowSettings(emitted.action)) {
      throw new Error('withFlowKey must be called on the task it schedules, before anything is awaited');
    }
    emitted.action.flowKey = flowKey;
  }

  /**
   * Sets the priority level of an activity, sub-orchestration or detached-start action that is not
   * bound yet (as {@link retag} the tag).
   */
  setPriority(token: number, priority: number): void {
    const emitted = this.pending.find((p) => p.token === token);
    if (emitted === undefined || !takesFlowSettings(emitted.action)) {
      throw new Error('withPriority must be called on the task it schedules, before anything is awaited');
    }
    emitted.action.priority = priority;
  }

  bind(token: number, eventId: number): void {
    this.tokenToEvent.set(token, eventId);
    this.eventToToken.set(eventId, token);
  }

  isBound(token: number): boolean {
    return this.tokenToEvent.has(token);
  }

  /** Marks a future as dropped (race loser); subscriptions stop matching at once. */
  drop(token: number, kind: DroppableKind): void {
    if (this.dropped.has(token)) return;
    this.dropped.set(token, kind);
    const external = this.externalByToken.get(token);
    if (external) external.cancelled = true;
    const queue = this.queueByToken.get(token);
    if (queue) queue.cancelled = true;
  }

  // --- external events ----------------------------------------------------------------------

  registerExternalSubscription(token: number, name: string): void {
    const sub: ExternalSubscription = { token, name, arrival: undefined, cancelled: this.dropped.has(token) };
    this.externalByToken.set(token, sub);
    const list = this.externalByName.get(name) ?? [];
    list.push(sub);
    this.externalByName.set(name, list);
  }

  /**
   * Delivers a raised event to the earliest active subscription of that name that has no
   * arrival yet (positional, causal). Returns false when there is none: the event is dropped.
   */
  deliverExternal(name: string, data: string): boolean {
    const target = this.externalByName.get(name)?.find((sub) => !sub.cancelled && sub.arrival === undefined);
    if (!target) return false;
    target.arrival = data;
    return true;
  }

  externalArrival(token: number): string | undefined {
    return this.externalByToken.get(token)?.arrival;
  }

  cancelExternalByEvent(eventId: number): void {
    const token = this.eventToToken.get(eventId);
    const sub = token === undefined ? undefined : this.externalByToken.get(token);
    if (sub) sub.cancelled = true;
  }

  // --- queues -------------------------------------------------------------------------------

  registerQueueSubscription(token: number, name: string): void {
    this.queueByToken.set(token, { token, name, message: undefined, cancelled: this.dropped.has(token) });
  }

  addQueueMessage(name: string, data: string): void {
    this.queueArrivals.push({ name, data, consumed: false });
  }

  /** A bound dequeue takes the oldest unconsumed message of its queue (once; later polls see the same). */
  dequeue(token: number): string | undefined {
    const sub = this.queueByToken.get(token);
    if (!sub || sub.cancelled) return undefined;
    if (sub.message !== undefined) return sub.message;
    const arrival = this.queueArrivals.find((a) => a.name === sub.name && !a.consumed);
    if (!arrival) return undefined;
    arrival.consumed = true;
    sub.message = arrival.data;
    return sub.message;
  }

  cancelQueueByEvent(eventId: number): void {
    const token = this.eventToToken.get(eventId);
    const sub = token === undefined ? undefined : this.queueByToken.get(token);
    if (sub) sub.cancelled = true;
  }

  /** Messages no dequeue consumed, oldest first across all queues. */
  unconsumedQueueMessages(): Array<[string, string]> {
    return this.queueArrivals.filter((a) => !a.consumed).map((a) => [a.name, a.data]);
  }

  /** Bound subscriptions that never received anything, as event ids by kind (breadcrumbs are checked by the caller). */
  outstandingSubscriptions(): { external: number[]; queue: number[] } {
    const external: number[] = [];
    const queue: number[] = [];
    for (const sub of this.externalByToken.values()) {
      const eventId = this.tokenToEvent.get(sub.token);
      if (eventId !== undefined && sub.arrival === undefined) external.push(eventId);
    }
    for (const sub of this.queueByToken.values()) {
      const eventId = this.tokenToEvent.get(sub.token);
      if (eventId !== undefined && sub.message === undefined) queue.push(eventId);
    }
    return { external, queue };
  }

  // --- context host -------------------------------------------------------------------------

  isReplaying(): boolean {
    return this.replaying;
  }

  getCustomStatus(): string | null {
    return this.customStatus;
  }

  setCustomStatus(status: string | null): void {
    this.customStatus = status;
    this.emit({ kind: 'customStatus', status });
  }

  getValue(key: string): string | null {
    return this.kv.get(key)?.value ?? null;
  }

  setValue(key: string, value: string): void {
    const lastUpdatedAtMs = this.recordedSetTimestamp(key, value) ?? this.options.nowMs;
    this.kv.set(key, { value, lastUpdatedAtMs });
    this.emit({ kind: 'kvSet', key, value, lastUpdatedAtMs });
  }

  clearValue(key: string): void {
    this.kv.delete(key);
    this.emit({ kind: 'kvClear', key });
  }

  clearAllValues(): void {
    this.kv.clear();
    this.emit({ kind: 'kvClearAll' });
  }

  kvEntries(): Array<[string, KvEntry]> {
    return [...this.kv.entries()];
  }

  trace(level: TraceLevel, message: string): void {
    if (!this.replaying) this.options.trace(level, message);
  }

  /** Logs even while replaying: for engine diagnostics about the code, not the code's own traces. */
  log(level: TraceLevel, message: string): void {
    this.options.trace(level, message);
  }

  /** Ends the turn for the context: any later `ctx` call throws and is logged. */
  seal(): void {
    this.sealed = true;
  }

  isSealed(): boolean {
    return this.sealed;
  }

  assertOpen(method: string): void {
    if (!this.sealed) return;
    // Async code can outlive its turn (a continuation of a non-durable await); what it asks
    // for would belong to no turn, so it fails loudly instead of being dropped silently.
    const message =
      `ctx.${method}() called after the orchestration turn ended; orchestration code ` +
      `may only run while its turn drives it (did it await something that is not a ` +
      `ctx task?)`;
    this.log('error', message);
    throw new Error(message);
  }

  /**
   * Emitted actions bind to action events strictly in order, so the action about to be emitted
   * will bind to the n-th action event. When that event is the matching KeyValueSet, its
   * recorded time is reused so replayed reads (pruning) see the original timestamps.
   */
  private recordedSetTimestamp(key: string, value: string): number | undefined {
    const event = this.options.actionEvents[this.emittedCount];
    if (event && event.kind === 'KeyValueSet' && event.key === key && event.value === value)
      return event.lastUpdatedAtMs;
    return undefined;
  }
}
