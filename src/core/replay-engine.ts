/**
 * Stage B of a turn (docs/replay.md, "One turn"): re-runs the orchestration from the start
 * over the working history, binds emitted actions to recorded events by position, converts new
 * actions to new events, and decides how the turn ends. Pure: no I/O, time comes in as `nowMs`.
 *
 * The replay loop is written once, as a generator that yields wherever the code must be polled:
 * generators are polled synchronously, async functions are awaited (async-driver.ts), so both
 * kinds see the same deliveries at the same history positions.
 */
import {
  actionMatchesEvent,
  describeAction,
  describeEvent,
  isActionEvent,
  newEventData,
  type EmittedAction,
} from './actions';
import { displayMessage, nondeterminismError } from './error-details';
import { AsyncDriver, isAsyncFunction } from './async-driver';
import { GeneratorDriver } from './generator-driver';
import { OrchestrationContext } from './orchestration-context';
import { ReplayState, type DroppableKind } from './replay-state';
import { TaskBuilder } from './task-builder';
import type { KvEntry } from './turn-types';
import type { OrchestrationFunction, TraceLevel } from './turn-api';
import type { ErrorDetails, HistoryEvent, HistoryEventData, HistoryEventKind } from './types';

/** A new event produced by the engine, before the turn stamps instance/execution/time on it. */
export interface NewEvent {
  eventId: number;
  sourceEventId?: number;
  data: HistoryEventData;
}

/** How the turn ends (before limits and dispatch). */
export type ReplayDecision =
  | { kind: 'continue' }
  | { kind: 'completed'; output: string }
  | { kind: 'failed'; details: ErrorDetails }
  | { kind: 'cancelled'; reason: string }
  | { kind: 'continueAsNew'; input: string; version: string | null };

export interface ReplayInput {
  instanceId: string;
  executionId: number;
  orchestrationName: string;
  orchestrationVersion: string;
  /** Baseline history plus this turn's new events so far (OrchestrationStarted, completions). */
  history: HistoryEvent[];
  /** How many leading events of `history` were persisted before this turn. */
  persistedLen: number;
  handler: OrchestrationFunction;
  input: string;
  kvSnapshot: Record<string, KvEntry>;
  initialCustomStatus: string | null;
  nowMs: number;
  trace: (level: TraceLevel, message: string) => void;
  /** Async orchestrations: fail on non-durable resources (timers, I/O) created by the code. */
  asyncGuards: boolean;
}

export interface ReplayOutput {
  decision: ReplayDecision;
  /** True when the decision is a nondeterminism/infrastructure abort: no new work may be dispatched. */
  aborted: boolean;
  /** New action events (emission order), then dropped-future and terminal subscription breadcrumbs. */
  newEvents: NewEvent[];
  /** Event ids of futures dropped by the code whose breadcrumbs this turn records, by kind. */
  droppedThisTurn: Array<{ eventId: number; kind: DroppableKind }>;
  customStatus: string | null;
  kv: Map<string, KvEntry>;
  /** Unconsumed queue messages, oldest first (continue-as-new carry-forward before the cap). */
  unconsumedQueueMessages: Array<[string, string]>;
}

/** Raised inside the replay loop; becomes OrchestrationFailed{configuration/Nondeterminism}. */
export class NondeterminismError extends Error {}

const MAX_QUIESCENCE_ROUNDS = 100;

const COMPLETION_SOURCE_KIND: Partial<Record<HistoryEventKind, HistoryEventKind>> = {
  ActivityCompleted: 'ActivityScheduled',
  ActivityFailed: 'ActivityScheduled',
  TimerFired: 'TimerCreated',
  SubOrchestrationCompleted: 'SubOrchestrationScheduled',
  SubOrchestrationFailed: 'SubOrchestrationScheduled',
};

const BREADCRUMB_KIND: Record<DroppableKind, HistoryEventKind> = {
  activity: 'ActivityCancelRequested',
  subOrchestration: 'SubOrchestrationCancelRequested',
  waitEvent: 'ExternalSubscribedCancelled',
  dequeue: 'QueueSubscriptionCancelled',
};

const BREADCRUMB_LABEL: Partial<Record<HistoryEventKind, string>> = {
  ActivityCancelRequested: 'activity',
  SubOrchestrationCancelRequested: 'sub-orchestration',
  ExternalSubscribedCancelled: 'external event',
  QueueSubscriptionCancelled: 'queue subscription',
};

/** A point in the replay loop where the code must be polled. */
type PollDue = 'poll';

class Replay {
  private readonly state: ReplayState;
  private readonly driver: GeneratorDriver | AsyncDriver;
  /** Open schedules: event id → schedule kind. */
  private readonly open = new Map<number, HistoryEventKind>();
  private readonly newEvents: NewEvent[] = [];
  private nextEventId: number;

  constructor(private readonly input: ReplayInput) {
    this.state = new ReplayState({
      nowMs: input.nowMs,
      actionEvents: input.history.filter(isActionEvent),
      kvSnapshot: input.kvSnapshot,
      initialCustomStatus: input.initialCustomStatus,
      trace: input.trace,
    });
    const info = {
      instanceId: input.instanceId,
      executionId: input.executionId,
      orchestrationName: input.orchestrationName,
      orchestrationVersion: input.orchestrationVersion,
    };
    this.driver = isAsyncFunction(input.handler)
      ? new AsyncDriver(input.handler, info, this.state, input.input, { guarded: input.asyncGuards })
      : new GeneratorDriver(
          input.handler,
          new OrchestrationContext(info, this.state),
          input.input,
          new TaskBuilder(this.state),
        );
    this.nextEventId = input.history.reduce((max, event) => Math.max(max, event.eventId), 0) + 1;
  }

  run(): ReplayOutput | Promise<ReplayOutput> {
    if (this.driver instanceof AsyncDriver) return this.runAsync(this.driver);
    const driver = this.driver;
    try {
      const steps = this.replay();
      let step = steps.next();
      while (!step.done) {
        driver.poll();
        step = steps.next();
      }
      return step.value;
    } catch (error) {
      return this.caught(error);
    } finally {
      this.state.seal();
    }
  }

  private async runAsync(driver: AsyncDriver): Promise<ReplayOutput> {
    driver.enter();
    try {
      const steps = this.replay();
      let step = steps.next();
      while (!step.done) {
        await driver.poll();
        step = steps.next();
      }
      return step.value;
    } catch (error) {
      return this.caught(error);
    } finally {
      this.state.seal();
      driver.leave();
    }
  }

  private caught(error: unknown): ReplayOutput {
    if (!(error instanceof NondeterminismError)) throw error;
    return this.abort(nondeterminismError(error.message));
  }

  private abort(details: ErrorDetails): ReplayOutput {
    return {
      decision: { kind: 'failed', details },
      aborted: true,
      newEvents: [],
      droppedThisTurn: [],
      customStatus: this.state.customStatus,
      kv: this.state.kv,
      unconsumedQueueMessages: [],
    };
  }

  private *replay(): Generator<PollDue, ReplayOutput, void> {
    const history = this.input.history;
    if (history.length === 0 || history[0].kind !== 'OrchestrationStarted') {
      throw new NondeterminismError('corrupted history: the first event is not OrchestrationStarted');
    }
    this.state.replaying = this.input.persistedLen > 0;
    let mustPoll = true;
    for (let i = 0; i < history.length; i++) {
      if (i >= this.input.persistedLen) this.state.replaying = false;
      if (mustPoll) {
        yield 'poll';
        mustPoll = false;
        if (this.driver.result) break;
      }
      mustPoll = this.apply(history[i], i);
    }
    this.state.replaying = false;
    if (mustPoll) yield 'poll';

    let converted = this.convertPending();
    let rounds = 0;
    while (converted > 0 && !this.driver.result) {
      if (++rounds > MAX_QUIESCENCE_ROUNDS) {
        return this.abort({
          category: 'infrastructure',
          operation: 'replay',
          message: `orchestration kept emitting new actions for more than ${MAX_QUIESCENCE_ROUNDS} rounds in one turn`,
          retryable: false,
        });
      }
      yield 'poll';
      converted = this.convertPending();
    }
    return this.finalize();
  }

  /** Applies one history event; returns whether the code must be polled before the next one. */
  private apply(event: HistoryEvent, index: number): boolean {
    if (isActionEvent(event)) {
      const front = this.state.pending.shift();
      if (!front) throw new NondeterminismError(`history schedule but no emitted action: ${describeEvent(event)}`);
      if (!actionMatchesEvent(front.action, event)) {
        throw new NondeterminismError(
          `schedule mismatch: action=${describeAction(front.action)} vs event=${describeEvent(event)}`,
        );
      }
      return this.bind(front, event);
    }
    const sourceKind = COMPLETION_SOURCE_KIND[event.kind];
    if (sourceKind) {
      const source = event.sourceEventId ?? -1;
      const openKind = this.open.get(source);
      if (openKind === undefined)
        throw new NondeterminismError(
          `completion without open schedule: ${describeEvent(event)} (source event ${source})`,
        );
      if (openKind !== sourceKind)
        throw new NondeterminismError(
          `completion kind mismatch: ${describeEvent(event)} answers ${openKind}#${source}`,
        );
      this.open.delete(source);
      const token = this.state.eventToToken.get(source)!;
      switch (event.kind) {
        case 'ActivityCompleted':
        case 'SubOrchestrationCompleted':
          this.state.results.set(token, { ok: true, raw: event.result });
          break;
        case 'ActivityFailed':
        case 'SubOrchestrationFailed':
          this.state.results.set(token, { ok: false, error: displayMessage(event.details) });
          break;
        default:
          this.state.results.set(token, { ok: true, raw: null });
      }
      return true;
    }
    switch (event.kind) {
      case 'OrchestrationStarted':
        if (index > 0)
          throw new NondeterminismError(`corrupted history: OrchestrationStarted at position ${index + 1}`);
        return false;
      case 'ExternalEvent': {
        const delivered = this.state.deliverExternal(event.name, event.data);
        if (!delivered && !this.state.replaying) {
          // duroxide's semantics: an event nobody waits for yet is dropped. Say so once, when it arrives.
          this.state.log(
            'warn',
            `event '${event.name}' arrived before the orchestration waited for it (no ` +
              `waitForEvent('${event.name}') pending) and was dropped; ` +
              'raise it later, or use client.enqueueEvent with ctx.dequeueEvent when events may come first',
          );
        }
        return delivered;
      }
      case 'QueueEventDelivered':
        this.state.addQueueMessage(event.name, event.data);
        return true;
      case 'ExternalSubscribedCancelled':
        this.state.cancelExternalByEvent(event.sourceEventId ?? -1);
        return false;
      case 'QueueSubscriptionCancelled':
        this.state.cancelQueueByEvent(event.sourceEventId ?? -1);
        return false;
      default:
        return false;
    }
  }

  /** Binds an action to its event; returns whether a poll is due (queue subscriptions). */
  private bind(emitted: EmittedAction, event: HistoryEvent): boolean {
    this.state.bind(emitted.token, event.eventId);
    switch (event.kind) {
      case 'ActivityScheduled':
      case 'TimerCreated':
      case 'SubOrchestrationScheduled':
        this.open.set(event.eventId, event.kind);
        return false;
      case 'ExternalSubscribed':
        this.state.registerExternalSubscription(emitted.token, event.name);
        return false;
      case 'QueueSubscribed':
        this.state.registerQueueSubscription(emitted.token, event.name);
        return true;
      default:
        return false;
    }
  }

  /** Records every unmatched emitted action as a new event; returns how many. */
  private convertPending(): number {
    let count = 0;
    while (this.state.pending.length > 0) {
      const emitted = this.state.pending.shift()!;
      const eventId = this.nextEventId++;
      const data = newEventData(emitted.action, eventId, this.input.nowMs);
      this.newEvents.push({ eventId, data });
      this.bind(emitted, { ...data, eventId } as HistoryEvent);
      count++;
    }
    return count;
  }

  private finalize(): ReplayOutput {
    const history = this.input.history;
    const cancel = history.find((event) => event.kind === 'OrchestrationCancelRequested');
    let decision: ReplayDecision;
    const droppedThisTurn: ReplayOutput['droppedThisTurn'] = [];
    if (cancel && cancel.kind === 'OrchestrationCancelRequested') {
      decision = { kind: 'cancelled', reason: cancel.reason };
    } else if (this.state.continueAsNew) {
      decision = { kind: 'continueAsNew', ...this.state.continueAsNew };
    } else {
      droppedThisTurn.push(...this.reconcileDroppedFutures());
      const result = this.driver.result ?? (this.driver instanceof AsyncDriver ? this.driver.stuckResult() : null);
      if (!result) decision = { kind: 'continue' };
      else if (result.kind === 'returned') decision = { kind: 'completed', output: result.output };
      else decision = { kind: 'failed', details: result.details };
    }
    if (decision.kind !== 'continue') this.recordTerminalSubscriptionCancels();
    return {
      decision,
      aborted: false,
      newEvents: this.newEvents,
      droppedThisTurn,
      customStatus: this.state.customStatus,
      kv: this.state.kv,
      unconsumedQueueMessages: this.state.unconsumedQueueMessages(),
    };
  }

  /**
   * Records breadcrumbs for futures the code dropped (once per schedule) and checks that every
   * persisted `dropped_future` breadcrumb was reproduced by this run of the code.
   */
  private reconcileDroppedFutures(): Array<{ eventId: number; kind: DroppableKind }> {
    const existing = new Map<number, HistoryEvent>();
    for (const event of this.input.history) {
      if (BREADCRUMB_LABEL[event.kind] && event.sourceEventId !== undefined) existing.set(event.sourceEventId, event);
    }
    const droppedEventIds = new Set<number>();
    const recorded: Array<{ eventId: number; kind: DroppableKind }> = [];
    for (const [token, kind] of this.state.dropped) {
      const eventId = this.state.tokenToEvent.get(token);
      if (eventId === undefined) continue;
      droppedEventIds.add(eventId);
      if (existing.has(eventId)) continue;
      const breadcrumbKind = BREADCRUMB_KIND[kind];
      this.newEvents.push({
        eventId: this.nextEventId++,
        sourceEventId: eventId,
        data: { kind: breadcrumbKind, reason: 'dropped_future' } as HistoryEventData,
      });
      recorded.push({ eventId, kind });
    }
    for (const [source, event] of existing) {
      const reason = (event as { reason?: string }).reason;
      if (reason === 'dropped_future' && !droppedEventIds.has(source)) {
        throw new NondeterminismError(
          `cancellation mismatch (${BREADCRUMB_LABEL[event.kind]}): history records a ` +
            `dropped future for event ${source} but the code did not drop it`,
        );
      }
    }
    return recorded;
  }

  /** Outstanding subscriptions are cancelled before a terminal event. */
  private recordTerminalSubscriptionCancels(): void {
    const cancelled = new Set<number>();
    for (const event of [
      ...this.input.history,
      ...this.newEvents.map((e) => ({ ...e.data, sourceEventId: e.sourceEventId })),
    ]) {
      if (
        (event.kind === 'ExternalSubscribedCancelled' || event.kind === 'QueueSubscriptionCancelled') &&
        event.sourceEventId !== undefined
      ) {
        cancelled.add(event.sourceEventId);
      }
    }
    const outstanding = this.state.outstandingSubscriptions();
    const crumbs = [
      ...outstanding.external.map((id) => ({ id, kind: 'ExternalSubscribedCancelled' as const })),
      ...outstanding.queue.map((id) => ({ id, kind: 'QueueSubscriptionCancelled' as const })),
    ].sort((a, b) => a.id - b.id);
    for (const crumb of crumbs) {
      if (cancelled.has(crumb.id)) continue;
      this.newEvents.push({
        eventId: this.nextEventId++,
        sourceEventId: crumb.id,
        data: { kind: crumb.kind, reason: 'orchestration_terminal' },
      });
    }
  }
}

/** Runs Stage B for one turn: synchronously for generators, as a promise for async functions. */
export function replayOrchestration(input: ReplayInput): ReplayOutput | Promise<ReplayOutput> {
  return new Replay(input).run();
}
