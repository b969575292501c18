/**
 * A pure in-memory stand-in for the runtime loop around the turn engine: it keeps one instance's
 * history, applies each ack the way a provider would, and builds the messages tests feed in.
 */
import { turnEngine } from '../../src/core/turn';
import type { OrchestrationFunction, TraceLevel, TurnResult, Untyped } from '../../src/core/turn-api';
import type { KvEntry, OrchestrationTurnAck } from '../../src/core/turn-types';
import type { ErrorDetails, HistoryEvent, OrchestratorWorkItem } from '../../src/core/types';

export type Handlers = Partial<Record<string, OrchestrationFunction<Untyped>>>;

export class Sim {
  readonly instanceId: string;
  executionId = 1;
  history: HistoryEvent[] = [];
  kv: Record<string, KvEntry> = {};
  customStatus: string | null = null;
  nowMs = 1_000_000;
  traces: Array<{ level: TraceLevel; message: string }> = [];
  lastAck: OrchestrationTurnAck | null = null;
  /** Every (name, requested version) the engine asked the registry for. */
  resolutions: Array<[string, string | null]> = [];

  constructor(
    readonly handlers: Handlers,
    instanceId = 'inst',
  ) {
    this.instanceId = instanceId;
  }

  /** Options of every turn this simulator runs (async guards are on, as in the tests' runtimes). */
  asyncGuards = true;

  /** Runs one turn of a generator orchestration and applies its ack; returns the turn result. */
  turn(messages: OrchestratorWorkItem[]): TurnResult {
    const result = this.run(messages);
    if (result instanceof Promise) throw new Error('an async orchestration replays asynchronously: use turnAsync');
    return this.settle(result);
  }

  /** Runs one turn of any orchestration (generator or async) and applies its ack. */
  async turnAsync(messages: OrchestratorWorkItem[]): Promise<TurnResult> {
    return this.settle(await this.run(messages));
  }

  /** {@link ack} for async orchestrations. */
  async ackAsync(messages: OrchestratorWorkItem[]): Promise<OrchestrationTurnAck> {
    const result = await this.turnAsync(messages);
    if (result.kind !== 'ack') throw new Error(`expected an ack, got ${JSON.stringify(result)}`);
    return result.ack;
  }

  private settle(result: TurnResult): TurnResult {
    if (result.kind === 'ack') this.apply(result.ack);
    return result;
  }

  private run(messages: OrchestratorWorkItem[]): TurnResult | Promise<TurnResult> {
    return turnEngine.runTurn({
      instanceId: this.instanceId,
      orchestrationName: 'unknown',
      orchestrationVersion: null,
      executionId: this.executionId,
      history: this.history,
      messages,
      kvSnapshot: this.kv,
      customStatus: this.customStatus,
      nowMs: this.nowMs,
      resolveHandler: (name, version) => {
        this.resolutions.push([name, version]);
        const handler: OrchestrationFunction | undefined =
          this.handlers[version ? `${name}@${version}` : name] ?? this.handlers[name];
        return handler ? { version: version ?? '1.0.0', handler } : null;
      },
      trace: (level, message) => this.traces.push({ level, message }),
      asyncGuards: this.asyncGuards,
    });
  }

  /** Runs a turn and returns its ack (fails the test when the turn was not acknowledged). */
  ack(messages: OrchestratorWorkItem[]): OrchestrationTurnAck {
    const result = this.turn(messages);
    if (result.kind !== 'ack') throw new Error(`expected an ack, got ${JSON.stringify(result)}`);
    return result.ack;
  }

  private apply(ack: OrchestrationTurnAck): void {
    this.lastAck = ack;
    if (ack.executionId !== this.executionId) {
      this.executionId = ack.executionId;
      this.history = [];
    }
    this.history = [...this.history, ...ack.historyDelta];
    for (const event of ack.historyDelta) {
      if (event.kind === 'CustomStatusUpdated') this.customStatus = event.status;
    }
    const terminal = ack.metadata.status !== undefined && ack.metadata.status !== 'Running';
    if (terminal) {
      for (const event of this.history) {
        if (event.kind === 'KeyValueSet')
          this.kv[event.key] = { value: event.value, lastUpdatedAtMs: event.lastUpdatedAtMs };
        else if (event.kind === 'KeyValueCleared') delete this.kv[event.key];
        else if (event.kind === 'KeyValuesCleared') this.kv = {};
      }
    }
  }

  kinds(): string[] {
    return this.history.map((e) => e.kind);
  }

  find<K extends HistoryEvent['kind']>(kind: K): Extract<HistoryEvent, { kind: K }>[] {
    return this.history.filter((e): e is Extract<HistoryEvent, { kind: K }> => e.kind === kind);
  }

  last(): HistoryEvent {
    return this.history[this.history.length - 1];
  }

  /** The id of the n-th (0-based) event of a kind. */
  idOf(kind: HistoryEvent['kind'], n = 0): number {
    return this.find(kind)[n].eventId;
  }

  /** Message builders bound to this instance and its current execution. */
  start(name: string, input: unknown = null, extra: Partial<OrchestratorWorkItem> = {}): OrchestratorWorkItem {
    return {
      type: 'StartOrchestration',
      instance: this.instanceId,
      orchestration: name,
      input: JSON.stringify(input),
      version: null,
      parentInstance: null,
      parentId: null,
      parentExecutionId: null,
      executionId: 1,
      ...extra,
    } as OrchestratorWorkItem;
  }

  done(id: number, value: unknown, raw = false): OrchestratorWorkItem {
    return {
      type: 'ActivityCompleted',
      instance: this.instanceId,
      executionId: this.executionId,
      id,
      result: raw ? String(value) : JSON.stringify(value),
    };
  }

  failed(id: number, message: string, details?: ErrorDetails): OrchestratorWorkItem {
    return {
      type: 'ActivityFailed',
      instance: this.instanceId,
      executionId: this.executionId,
      id,
      details: details ?? { category: 'application', kind: 'ActivityFailed', message, retryable: false },
    };
  }

  fired(id: number): OrchestratorWorkItem {
    const timer = this.history.find((e) => e.eventId === id);
    const fireAtMs = timer && timer.kind === 'TimerCreated' ? timer.fireAtMs : 0;
    return { type: 'TimerFired', instance: this.instanceId, executionId: this.executionId, id, fireAtMs };
  }

  raise(name: string, data: unknown): OrchestratorWorkItem {
    return { type: 'ExternalRaised', instance: this.instanceId, name, data: JSON.stringify(data) };
  }

  enqueue(name: string, data: unknown): OrchestratorWorkItem {
    return { type: 'QueueMessage', instance: this.instanceId, name, data: JSON.stringify(data) };
  }

  subDone(parentId: number, value: unknown): OrchestratorWorkItem {
    return {
      type: 'SubOrchCompleted',
      parentInstance: this.instanceId,
      parentExecutionId: this.executionId,
      parentId,
      result: JSON.stringify(value),
    };
  }

  subFailed(parentId: number, message: string): OrchestratorWorkItem {
    return {
      type: 'SubOrchFailed',
      parentInstance: this.instanceId,
      parentExecutionId: this.executionId,
      parentId,
      details: { category: 'application', kind: 'OrchestrationFailed', message, retryable: false },
    };
  }

  cancel(reason: string): OrchestratorWorkItem {
    return { type: 'CancelInstance', instance: this.instanceId, reason };
  }
}

/** The status and output of a turn, for compact assertions. */
export function outcomeOf(result: TurnResult): string {
  if (result.kind !== 'ack') return result.kind;
  const o = result.outcome;
  switch (o.kind) {
    case 'completed':
      return `completed:${o.output}`;
    case 'failed':
      return `failed:${o.details.category}:${o.details.category === 'configuration' ? o.details.message : o.details.category === 'application' ? o.details.message : ''}`;
    case 'continuedAsNew':
      return `continuedAsNew:${o.input}`;
    default:
      return o.kind;
  }
}
