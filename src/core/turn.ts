/**
 * One orchestration turn (docs/replay.md, "One turn"): picks the
 * execution, resolves the handler, stages completions, replays, and converts the decision into
 * the exact effects the provider commits. Implements the {@link TurnEngine} boundary.
 */
import { childInstanceId } from './actions';
import { stageCompletions } from './completions';
import { applicationError, cancelledError, displayMessage, nondeterminismError } from './error-details';
import { checkTurnLimits, MAX_CARRY_FORWARD_MESSAGES } from './limits';
import { replayOrchestration, type NewEvent, type ReplayOutput } from './replay-engine';
import type { OrchestrationTurnAck } from './turn-types';
import type { TurnEngine, TurnRequest, TurnResult } from './turn-api';
import {
  DUROX_VERSION,
  isTerminalEvent,
  type ContinueAsNewItem,
  type ErrorDetails,
  type HistoryEvent,
  type HistoryEventData,
  type HistoryEventOf,
  type OrchestratorWorkItem,
  type StartOrchestrationItem,
} from './types';

type StartItem = StartOrchestrationItem | ContinueAsNewItem;
type Started = HistoryEventOf<'OrchestrationStarted'>;
type TurnIdentity = Pick<TurnRequest, 'instanceId' | 'nowMs'>;

function isStartItem(item: OrchestratorWorkItem): item is StartItem {
  return item.type === 'StartOrchestration' || item.type === 'ContinueAsNew';
}

function startedOf(history: HistoryEvent[]): Started | undefined {
  const first = history[0];
  return first && first.kind === 'OrchestrationStarted' ? first : undefined;
}

/** Accumulates the effects of one turn on one execution. */
class TurnEffects {
  readonly delta: HistoryEvent[] = [];
  readonly workerItems: OrchestrationTurnAck['workerItems'] = [];
  readonly orchestratorItems: OrchestratorWorkItem[] = [];
  readonly cancelledActivities: OrchestrationTurnAck['cancelledActivities'] = [];
  private nextEventId: number;

  constructor(
    private readonly request: TurnIdentity,
    readonly executionId: number,
    readonly baseline: HistoryEvent[],
  ) {
    this.nextEventId = baseline.reduce((max, event) => Math.max(max, event.eventId), 0) + 1;
  }

  get working(): HistoryEvent[] {
    return [...this.baseline, ...this.delta];
  }

  get firstNewEventId(): number {
    return this.nextEventId;
  }

  /** Stamps and appends an event with the next event id. */
  append(data: HistoryEventData, sourceEventId?: number): HistoryEvent {
    return this.appendNew({ eventId: this.nextEventId, sourceEventId, data });
  }

  /** Appends an event that is already stamped (the start of an execution that was never committed). */
  carry(event: HistoryEvent): void {
    this.delta.push(event);
    this.nextEventId = Math.max(this.nextEventId, event.eventId + 1);
  }

  /** Stamps and appends an event whose id the engine assigned. */
  appendNew(event: NewEvent): HistoryEvent {
    const stamped = {
      eventId: event.eventId,
      ...(event.sourceEventId === undefined ? {} : { sourceEventId: event.sourceEventId }),
      instanceId: this.request.instanceId,
      executionId: this.executionId,
      timestampMs: this.request.nowMs,
      duroxVersion: DUROX_VERSION,
      ...event.data,
    };
    this.delta.push(stamped);
    this.nextEventId = Math.max(this.nextEventId, event.eventId + 1);
    return stamped;
  }

  /** Appends ActivityCancelRequested for every activity without completion or cancellation, and steals their locks. */
  cancelInFlightActivities(reason: string): void {
    const settled = new Set<number>();
    const scheduled: number[] = [];
    for (const event of this.working) {
      if (event.kind === 'ActivityScheduled') scheduled.push(event.eventId);
      else if (
        (event.kind === 'ActivityCompleted' ||
          event.kind === 'ActivityFailed' ||
          event.kind === 'ActivityCancelRequested') &&
        event.sourceEventId !== undefined
      ) {
        settled.add(event.sourceEventId);
      }
    }
    for (const id of scheduled) {
      if (settled.has(id)) continue;
      this.append({ kind: 'ActivityCancelRequested', reason }, id);
      this.cancelledActivities.push({
        instance: this.request.instanceId,
        executionId: this.executionId,
        activityId: id,
      });
    }
  }

  ack(metadata: OrchestrationTurnAck['metadata']): OrchestrationTurnAck {
    return {
      instanceId: this.request.instanceId,
      executionId: this.executionId,
      historyDelta: this.delta,
      workerItems: this.workerItems,
      orchestratorItems: this.orchestratorItems,
      metadata,
      cancelledActivities: this.cancelledActivities,
    };
  }
}

/** Parent notification for a child's terminal turn. */
function notifyParent(
  effects: TurnEffects,
  started: Started | undefined,
  result: { output: string } | { details: ErrorDetails },
): void {
  if (!started?.parentInstance || started.parentId === undefined) return;
  const link = {
    parentInstance: started.parentInstance,
    parentExecutionId: started.parentExecutionId ?? 1,
    parentId: started.parentId,
  };
  effects.orchestratorItems.push(
    'output' in result
      ? { type: 'SubOrchCompleted', ...link, result: result.output }
      : { type: 'SubOrchFailed', ...link, details: result.details },
  );
}

function baseMetadata(started: Started | undefined, name: string, version: string): OrchestrationTurnAck['metadata'] {
  return {
    orchestrationName: name,
    orchestrationVersion: version,
    parentInstanceId: started?.parentInstance ?? null,
    // Without a start event the turn knows no level: the stored one stays.
    ...(started === undefined ? {} : { priority: priorityOf(started) }),
  };
}

/** The priority level of the execution that `started` began (0 when it has none). */
function priorityOf(started: Started | undefined): number {
  return started?.priority ?? 0;
}

/** `{ priority }` for a level above the default, else nothing (work items and events stay as they were). */
function priorityField(priority: number): { priority?: number } {
  return priority > 0 ? { priority } : {};
}

/** Records a failure as the terminal event of the execution. */
function failExecution(
  effects: TurnEffects,
  started: Started | undefined,
  name: string,
  version: string,
  details: ErrorDetails,
): TurnResult {
  effects.append({ kind: 'OrchestrationFailed', details });
  effects.cancelInFlightActivities('orchestration_terminal_failed');
  notifyParent(effects, started, { details });
  return {
    kind: 'ack',
    ack: effects.ack({ ...baseMetadata(started, name, version), status: 'Failed', output: displayMessage(details) }),
    outcome: { kind: 'failed', details },
  };
}

/** Queues the work of the turn's new schedule events (activities, timers, children, detached starts). */
function dispatchNewWork(
  effects: TurnEffects,
  replay: ReplayOutput,
  instanceId: string,
  only: 'all' | 'detached',
  priority: number,
): void {
  const dropped = new Set(replay.droppedThisTurn.map((d) => d.eventId));
  for (const { eventId, data } of replay.newEvents) {
    if (data.kind === 'OrchestrationChained') {
      effects.orchestratorItems.push({
        type: 'StartOrchestration',
        instance: data.instance,
        orchestration: data.name,
        input: data.input,
        version: data.version ?? null,
        parentInstance: null,
        parentId: null,
        parentExecutionId: null,
        executionId: 1,
        ...(data.flowKey === undefined ? {} : { flowKey: data.flowKey }),
        ...priorityField(data.priority ?? priority),
      });
    }
    if (only === 'detached' || dropped.has(eventId)) continue;
    if (data.kind === 'ActivityScheduled') {
      effects.workerItems.push({
        type: 'ActivityExecute',
        instance: instanceId,
        executionId: effects.executionId,
        id: eventId,
        name: data.name,
        input: data.input,
        sessionId: data.sessionId ?? null,
        tag: data.tag ?? null,
        ...(data.flowKey === undefined ? {} : { flowKey: data.flowKey }),
        ...priorityField(data.priority ?? priority),
      });
    } else if (data.kind === 'TimerCreated') {
      effects.orchestratorItems.push({
        type: 'TimerFired',
        instance: instanceId,
        executionId: effects.executionId,
        id: eventId,
        fireAtMs: data.fireAtMs,
      });
    } else if (data.kind === 'SubOrchestrationScheduled') {
      effects.orchestratorItems.push({
        type: 'StartOrchestration',
        instance: childInstanceId(instanceId, { eventId, instance: data.instance }),
        orchestration: data.name,
        input: data.input,
        version: data.version ?? null,
        parentInstance: instanceId,
        parentId: eventId,
        parentExecutionId: effects.executionId,
        executionId: 1,
        ...(data.flowKey === undefined ? {} : { flowKey: data.flowKey }),
        ...priorityField(data.priority ?? priority),
      });
    }
  }
}

/** Withdraws dropped activities (lock stealing) and cancels dropped children started in earlier turns. */
function withdrawDroppedFutures(effects: TurnEffects, replay: ReplayOutput, instanceId: string): void {
  const newIds = new Set(replay.newEvents.map((e) => e.eventId));
  for (const { eventId, kind } of replay.droppedThisTurn) {
    if (kind === 'activity') {
      effects.cancelledActivities.push({ instance: instanceId, executionId: effects.executionId, activityId: eventId });
    } else if (kind === 'subOrchestration' && !newIds.has(eventId)) {
      const schedule = effects.baseline.find((e) => e.eventId === eventId);
      if (schedule?.kind === 'SubOrchestrationScheduled') {
        effects.orchestratorItems.push({
          type: 'CancelInstance',
          instance: childInstanceId(instanceId, schedule),
          reason: 'parent dropped sub-orchestration future',
        });
      }
    }
  }
}

/** Children started in earlier turns that have neither completed nor been cancelled. */
function outstandingChildren(history: HistoryEvent[], instanceId: string): string[] {
  const settled = new Set<number>();
  for (const event of history) {
    if (
      (event.kind === 'SubOrchestrationCompleted' ||
        event.kind === 'SubOrchestrationFailed' ||
        event.kind === 'SubOrchestrationCancelRequested') &&
      event.sourceEventId !== undefined
    ) {
      settled.add(event.sourceEventId);
    }
  }
  return history
    .filter(
      (event): event is HistoryEventOf<'SubOrchestrationScheduled'> =>
        event.kind === 'SubOrchestrationScheduled' && !settled.has(event.eventId),
    )
    .map((event) => childInstanceId(instanceId, event));
}

function discarded(request: TurnRequest): TurnResult {
  const started = startedOf(request.history);
  const effects = new TurnEffects(request, request.executionId, request.history);
  const name = started?.name ?? request.orchestrationName;
  const version = started?.version ?? request.orchestrationVersion ?? '';
  return { kind: 'ack', ack: effects.ack(baseMetadata(started, name, version)), outcome: { kind: 'discarded' } };
}

function runTurn(request: TurnRequest): TurnResult | Promise<TurnResult> {
  const startItem = request.messages.find(isStartItem);
  const terminal = request.history.find(isTerminalEvent);
  const restarts = terminal?.kind === 'OrchestrationContinuedAsNew' && startItem?.type === 'ContinueAsNew';
  if (terminal && !restarts) return discarded(request);
  if (request.history.length === 0 && !startItem) {
    // Queue messages that reached an instance before it exists are orphans; anything else waits for the start.
    if (request.messages.every((m) => m.type === 'QueueMessage')) return discarded(request);
    return { kind: 'unregistered', name: request.orchestrationName, version: request.orchestrationVersion };
  }

  const continuing = startItem?.type === 'ContinueAsNew' && request.history.length > 0;
  const newExecution = continuing || request.history.length === 0;
  const executionId = continuing ? request.executionId + 1 : request.executionId;
  const baseline = newExecution ? [] : request.history;
  const recorded = startedOf(baseline);
  if (!newExecution && !recorded) {
    const effects = new TurnEffects(request, executionId, baseline);
    const details = nondeterminismError('corrupted history: the first event is not OrchestrationStarted');
    return failExecution(effects, undefined, request.orchestrationName, request.orchestrationVersion ?? '', details);
  }
  const name = newExecution ? startItem!.orchestration : (recorded?.name ?? request.orchestrationName);
  const requestedVersion = newExecution ? startItem!.version : (recorded?.version ?? request.orchestrationVersion);
  const resolved = request.resolveHandler(name, requestedVersion);
  if (!resolved) return { kind: 'unregistered', name, version: requestedVersion };

  const effects = new TurnEffects(request, executionId, baseline);
  let started = recorded;
  const completionMessages: OrchestratorWorkItem[] = request.messages.filter((m) => !isStartItem(m));
  if (newExecution) {
    const item = startItem!;
    const data: HistoryEventData = { kind: 'OrchestrationStarted', name, version: resolved.version, input: item.input };
    if (item.priority !== undefined && item.priority > 0) data.priority = item.priority;
    if (item.type === 'StartOrchestration') {
      if (item.parentInstance !== null) data.parentInstance = item.parentInstance;
      if (item.parentId !== null) data.parentId = item.parentId;
      if (item.parentExecutionId !== null) data.parentExecutionId = item.parentExecutionId;
    } else {
      data.carryForwardEvents = item.carryForwardEvents;
      data.initialCustomStatus = item.initialCustomStatus;
      completionMessages.unshift(
        ...item.carryForwardEvents.map(([queue, payload]): OrchestratorWorkItem => ({
          type: 'QueueMessage',
          instance: request.instanceId,
          name: queue,
          data: payload,
        })),
      );
    }
    started = effects.append(data) as Started;
  }

  const staged = stageCompletions(effects.working, completionMessages, executionId, effects.firstNewEventId);
  staged.events.forEach((event) => effects.appendNew(event));
  if (staged.abort) return failExecution(effects, started, name, resolved.version, staged.abort);

  const replayed = replayOrchestration({
    instanceId: request.instanceId,
    executionId,
    orchestrationName: name,
    orchestrationVersion: resolved.version,
    history: effects.working,
    persistedLen: baseline.length,
    handler: resolved.handler,
    input: started?.input ?? '',
    kvSnapshot: request.kvSnapshot,
    initialCustomStatus:
      started?.initialCustomStatus !== undefined
        ? started.initialCustomStatus
        : executionId > 1
          ? request.customStatus
          : null,
    nowMs: request.nowMs,
    trace: (level, message) =>
      request.trace(level, message, {
        instance_id: request.instanceId,
        execution_id: executionId,
        orchestration_name: name,
        orchestration_version: resolved.version,
      }),
    asyncGuards: request.asyncGuards === true,
  });
  const context: ReplayedTurn = { request, effects, started, name, version: resolved.version, executionId };
  // Generators replay synchronously; only async orchestrations pay for a promise.
  return replayed instanceof Promise
    ? replayed.then((replay) => finishTurn(context, replay))
    : finishTurn(context, replayed);
}

/** What a turn knows when its replay ends. */
interface ReplayedTurn {
  request: TurnRequest;
  effects: TurnEffects;
  started: Started | undefined;
  name: string;
  version: string;
  executionId: number;
}

/** Applies the replay's decision: limits, new events, dispatch, terminal events. */
function finishTurn(
  { request, effects, started, name, version, executionId }: ReplayedTurn,
  replay: ReplayOutput,
): TurnResult {
  if (replay.aborted && replay.decision.kind === 'failed')
    return failExecution(effects, started, name, version, replay.decision.details);
  const limitViolation = checkTurnLimits(replay.newEvents, replay.kv);
  if (limitViolation)
    return failExecution(effects, started, name, version, applicationError('OrchestrationFailed', limitViolation));

  const historyBeforeReplay = effects.working;
  replay.newEvents.forEach((event) => effects.appendNew(event));
  const metadata = baseMetadata(started, name, version);
  const decision = replay.decision;
  switch (decision.kind) {
    case 'continue':
      dispatchNewWork(effects, replay, request.instanceId, 'all', priorityOf(started));
      withdrawDroppedFutures(effects, replay, request.instanceId);
      return { kind: 'ack', ack: effects.ack(metadata), outcome: { kind: 'continue' } };
    case 'completed':
    case 'failed': {
      dispatchNewWork(effects, replay, request.instanceId, 'detached', priorityOf(started));
      withdrawDroppedFutures(effects, replay, request.instanceId);
      if (decision.kind === 'completed') {
        effects.append({ kind: 'OrchestrationCompleted', output: decision.output });
        effects.cancelInFlightActivities('orchestration_terminal_completed');
        notifyParent(effects, started, { output: decision.output });
        return {
          kind: 'ack',
          ack: effects.ack({ ...metadata, status: 'Completed', output: decision.output }),
          outcome: { kind: 'completed', output: decision.output },
        };
      }
      return failExecution(effects, started, name, version, decision.details);
    }
    case 'cancelled': {
      const details = cancelledError(decision.reason);
      // Children scheduled in this very turn were never started, so they need no cancellation.
      for (const child of outstandingChildren(historyBeforeReplay, request.instanceId)) {
        effects.orchestratorItems.push({ type: 'CancelInstance', instance: child, reason: 'parent canceled' });
      }
      return failExecution(effects, started, name, version, details);
    }
    case 'continueAsNew': {
      const carryForwardEvents = replay.unconsumedQueueMessages.slice(0, MAX_CARRY_FORWARD_MESSAGES);
      if (replay.unconsumedQueueMessages.length > MAX_CARRY_FORWARD_MESSAGES) {
        request.trace(
          'warn',
          `continue-as-new carries at most ${MAX_CARRY_FORWARD_MESSAGES} queue messages; ` +
            `dropped ${replay.unconsumedQueueMessages.length - MAX_CARRY_FORWARD_MESSAGES}`,
          {
            instance_id: request.instanceId,
            execution_id: executionId,
            orchestration_name: name,
            orchestration_version: version,
          },
        );
      }
      effects.append({ kind: 'OrchestrationContinuedAsNew', input: decision.input });
      effects.cancelInFlightActivities('orchestration_terminal_continued_as_new');
      effects.orchestratorItems.push({
        type: 'ContinueAsNew',
        instance: request.instanceId,
        orchestration: name,
        input: decision.input,
        version: decision.version,
        carryForwardEvents,
        initialCustomStatus: replay.customStatus,
        ...priorityField(priorityOf(started)),
      });
      return {
        kind: 'ack',
        ack: effects.ack({ ...metadata, status: 'ContinuedAsNew', output: decision.input }),
        outcome: { kind: 'continuedAsNew', input: decision.input },
      };
    }
  }
}

function poisonTurn(
  request: Omit<TurnRequest, 'resolveHandler' | 'trace'>,
  attemptCount: number,
  maxAttempts: number,
): OrchestrationTurnAck {
  const startItem = request.messages.find(isStartItem);
  const terminal = request.history.find(isTerminalEvent);
  const continuing = terminal?.kind === 'OrchestrationContinuedAsNew' && startItem?.type === 'ContinueAsNew';
  const executionId = continuing ? request.executionId + 1 : request.executionId;
  const baseline = continuing ? [] : request.history;
  const effects = new TurnEffects(request, executionId, baseline);
  let started = startedOf(baseline);
  const name = started?.name ?? startItem?.orchestration ?? request.orchestrationName;
  const version = started?.version ?? startItem?.version ?? request.orchestrationVersion ?? '0.0.0';
  if (terminal && !continuing) return effects.ack(baseMetadata(started, name, version));
  if (!started) {
    const data: HistoryEventData = { kind: 'OrchestrationStarted', name, version, input: startItem?.input ?? '' };
    if (startItem?.priority !== undefined && startItem.priority > 0) data.priority = startItem.priority;
    if (startItem?.type === 'StartOrchestration') {
      if (startItem.parentInstance !== null) data.parentInstance = startItem.parentInstance;
      if (startItem.parentId !== null) data.parentId = startItem.parentId;
      if (startItem.parentExecutionId !== null) data.parentExecutionId = startItem.parentExecutionId;
    }
    started = effects.append(data) as Started;
  }
  const details: ErrorDetails = {
    category: 'poison',
    attemptCount,
    maxAttempts,
    messageType: { kind: 'Orchestration', instance: request.instanceId, executionId },
    message: `orchestration message delivered ${attemptCount} times without success`,
  };
  const result = failExecution(effects, started, name, version, details);
  if (result.kind !== 'ack') throw new Error('unreachable: failing an execution always acknowledges');
  return result.ack;
}

/**
 * The turn committed instead of `refused` when the store refuses that turn for good: the
 * execution fails with an infrastructure error like any failed execution (its in-flight
 * activities are cancelled, its parent is told). A refused turn that started the execution
 * keeps its OrchestrationStarted, so the failure has an execution to end.
 */
function infrastructureFailureTurn(
  request: Pick<TurnRequest, 'instanceId' | 'nowMs' | 'history'>,
  refused: OrchestrationTurnAck,
  message: string,
): OrchestrationTurnAck {
  const first = refused.historyDelta[0];
  const startsExecution = first?.kind === 'OrchestrationStarted';
  const effects = new TurnEffects(request, refused.executionId, startsExecution ? [] : request.history);
  if (startsExecution) effects.carry(first);
  const details: ErrorDetails = {
    category: 'infrastructure',
    operation: 'ack_orchestration_item',
    message,
    retryable: false,
  };
  const { orchestrationName, orchestrationVersion } = refused.metadata;
  const result = failExecution(effects, startedOf(effects.working), orchestrationName, orchestrationVersion, details);
  if (result.kind !== 'ack') throw new Error('unreachable: failing an execution always acknowledges');
  return result.ack;
}

/** The replay engine as the runtime sees it. */
export const turnEngine: TurnEngine = { runTurn, poisonTurn, infrastructureFailureTurn };
