/**
 * Observability without touching the runtime: {@link instrumentProvider} wraps any provider so
 * that the Runtime and Client using it emit Prometheus metrics, OpenTelemetry spans and
 * structured logs. Everything a runtime does goes through its provider (start, fetch, ack,
 * abandon, renew), so the provider boundary sees every turn and every activity.
 *
 * Trace context travels inside the stored work items as an extra `traceContext` field (W3C
 * traceparent text): the client's start span is carried by StartOrchestration, a turn's span by
 * the activities and sub-orchestrations it schedules, an activity's span by its completion. The
 * store keeps work items as JSON text, so the field survives the database and reaches the
 * process that fetches the item; runtimes ignore fields they do not know.
 *
 *   const provider = instrumentProvider(await PostgresProvider.connect(url), { metrics });
 *   new Runtime(provider, options); new Client(provider);
 */
import { SpanKind, SpanStatusCode, context, trace, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { describeNonError } from '../core/thrown';
import type { ActivityCompletionItem, ActivityExecuteItem, OrchestratorWorkItem } from '../core/types';
import type {
  ActivityClaim,
  OrchestrationItem,
  OrchestrationTurnAck,
  Provider,
  TurnAck,
  TurnAckOutcome,
  TurnClaim,
  WorkItemAck,
  WorkItemAckOutcome,
  WorkItemLease,
} from '../provider/contract';
import { isLockLost } from '../provider/errors';
import { log, type LogLevel } from '../runtime/logger';
import type { DuroxMetrics } from './prometheus';

/** Log target of the instrumentation's structured records. */
export const OBSERVABILITY_TARGET = 'durox::observability';

/** Options of {@link instrumentProvider}. */
export interface InstrumentOptions {
  /** Metrics to feed; omit for traces and logs only. */
  metrics?: DuroxMetrics;
  /** Tracer for the spans (default: `trace.getTracer('durox')` of the registered OpenTelemetry SDK). */
  tracer?: Tracer;
  /**
   * Level of a structured log record per turn and per activity (instance_id, execution_id, name,
   * duration_ms) through the process logger (`initTracing` with logFormat 'json' makes them JSON
   * lines). Omitted: no records, so the instrumentation never installs a logger by itself.
   */
  logLevel?: LogLevel;
}

interface Lease {
  span: Span;
  startedAt: bigint;
  label: string;
  instanceId: string;
  executionId: number;
}

/** W3C traceparent of a span, or undefined when the span carries no valid context. */
function traceparentOf(span: Span): string | undefined {
  const c = span.spanContext();
  if (!trace.isSpanContextValid(c)) return undefined;
  return `00-${c.traceId}-${c.spanId}-${(c.traceFlags & 1).toString(16).padStart(2, '0')}`;
}

/** The context whose parent is the remote span named by `traceparent` (root context when absent or malformed). */
function contextFrom(traceparent: unknown): Context {
  const match =
    typeof traceparent === 'string' ? /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(traceparent) : null;
  if (match === null) return context.active();
  return trace.setSpanContext(context.active(), {
    traceId: match[1],
    spanId: match[2],
    traceFlags: parseInt(match[3], 16),
    isRemote: true,
  });
}

function carried(item: unknown): unknown {
  return typeof item === 'object' && item !== null ? (item as { traceContext?: unknown }).traceContext : undefined;
}

function withContext<T extends object>(item: T, traceparent: string | undefined): T {
  return traceparent === undefined ? item : { ...item, traceContext: traceparent };
}

function seconds(since: bigint): number {
  return Number(process.hrtime.bigint() - since) / 1e9;
}

/** Wraps `provider`; every method not instrumented here is passed through unchanged. */
export function instrumentProvider<P extends Provider>(provider: P, options: InstrumentOptions = {}): P {
  const metrics = options.metrics;
  const tracer = options.tracer ?? trace.getTracer('durox');
  const logLevel = options.logLevel;
  const turns = new Map<string, Lease>();
  const activities = new Map<string, Lease>();

  function finish(leases: Map<string, Lease>, token: string, outcome: string, error?: unknown): Lease | undefined {
    const lease = leases.get(token);
    if (lease === undefined) return undefined;
    leases.delete(token);
    if (error !== undefined) {
      lease.span.recordException(error instanceof Error ? error : describeNonError(error));
      lease.span.setStatus({
        code: SpanStatusCode.ERROR,
        message: error instanceof Error ? error.message : describeNonError(error),
      });
    }
    lease.span.setAttribute('durox.outcome', outcome);
    lease.span.end();
    const duration = seconds(lease.startedAt);
    if (leases === turns) metrics?.turnDuration.observe({ orchestration: lease.label, outcome }, duration);
    else metrics?.activityDuration.observe({ activity: lease.label, outcome }, duration);
    if (logLevel !== undefined)
      log(logLevel, OBSERVABILITY_TARGET, `${leases === turns ? 'turn' : 'activity'} ${outcome}`, {
        instance_id: lease.instanceId,
        execution_id: lease.executionId,
        name: lease.label,
        duration_ms: Math.round(duration * 1000),
      });
    return lease;
  }

  async function guarded<T>(
    leases: Map<string, Lease>,
    token: string,
    kind: string,
    work: () => Promise<T>,
    outcome: string,
  ): Promise<T> {
    try {
      const result = await work();
      finish(leases, token, outcome);
      return result;
    } catch (error) {
      if (isLockLost(error)) metrics?.lockSteals.inc({ kind });
      finish(leases, token, isLockLost(error) ? 'lock_lost' : 'error', error);
      throw error;
    }
  }

  /** The ack with the turn's trace context on the work it sends (activities, children, parents). */
  function withTurnContext(lockToken: string, ack: OrchestrationTurnAck): OrchestrationTurnAck {
    const lease = turns.get(lockToken);
    const parent = lease === undefined ? undefined : traceparentOf(lease.span);
    return {
      ...ack,
      workerItems: ack.workerItems.map((w) => withContext(w, parent)),
      orchestratorItems: ack.orchestratorItems.map((o) =>
        o.type === 'StartOrchestration' || o.type === 'SubOrchCompleted' || o.type === 'SubOrchFailed'
          ? withContext(o, parent)
          : o,
      ),
    };
  }

  /** Counts a committed turn's outcome and the orchestrations it started. */
  function countTurn(ack: OrchestrationTurnAck, label: string | undefined): void {
    const status = ack.metadata?.status;
    const name = ack.metadata?.orchestrationName ?? label ?? 'unknown';
    if (status === 'Completed' || status === 'ContinuedAsNew')
      metrics?.orchestrationsCompleted.inc({ orchestration: name });
    if (status === 'Failed') metrics?.orchestrationsFailed.inc({ orchestration: name });
    for (const o of ack.orchestratorItems) {
      if (o.type === 'StartOrchestration') metrics?.orchestrationsStarted.inc({ orchestration: o.orchestration });
    }
  }

  /** Starts the span of a turn whose batch was fetched or claimed. */
  function openTurn(item: OrchestrationItem): void {
    if (item.attemptCount > 1) metrics?.retries.inc({ kind: 'orchestration' });
    const parent = item.messages.map(carried).find((c) => c !== undefined);
    const span = tracer.startSpan(
      'durox.turn',
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          'durox.instance_id': item.instanceId,
          'durox.execution_id': item.executionId,
          'durox.orchestration': item.orchestrationName,
          'durox.attempt': item.attemptCount,
        },
      },
      contextFrom(parent),
    );
    turns.set(item.lockToken, {
      span,
      startedAt: process.hrtime.bigint(),
      label: item.orchestrationName,
      instanceId: item.instanceId,
      executionId: item.executionId,
    });
  }

  /** Starts the span of an activity whose work item was fetched or claimed. */
  function openActivity(lease: WorkItemLease): void {
    if (lease.attemptCount > 1) metrics?.retries.inc({ kind: 'activity' });
    const item: ActivityExecuteItem = lease.item;
    const span = tracer.startSpan(
      'durox.activity',
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          'durox.instance_id': item.instance,
          'durox.execution_id': item.executionId,
          'durox.activity': item.name,
          'durox.activity_id': item.id,
          'durox.attempt': lease.attemptCount,
        },
      },
      contextFrom(carried(item)),
    );
    activities.set(lease.lockToken, {
      span,
      startedAt: process.hrtime.bigint(),
      label: item.name,
      instanceId: item.instance,
      executionId: item.executionId,
    });
  }

  const overrides: Partial<Provider> = {
    async enqueueOrchestratorWork(item: OrchestratorWorkItem, opts?: { delayMs?: number }): Promise<void> {
      if (item?.type !== 'StartOrchestration') return provider.enqueueOrchestratorWork(item, opts);
      const span = tracer.startSpan('durox.client.start', {
        kind: SpanKind.PRODUCER,
        attributes: { 'durox.instance_id': item.instance, 'durox.orchestration': item.orchestration },
      });
      try {
        await provider.enqueueOrchestratorWork(withContext(item, traceparentOf(span)), opts);
        metrics?.orchestrationsStarted.inc({ orchestration: item.orchestration });
      } catch (error) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
        throw error;
      } finally {
        span.end();
      }
    },

    async fetchOrchestrationItem(opts: { lockTimeoutMs: number }): Promise<OrchestrationItem | null> {
      const item = await provider.fetchOrchestrationItem(opts);
      if (item !== null) openTurn(item);
      return item;
    },

    async fetchOrchestrationItems(opts: { lockTimeoutMs: number; maxItems: number }): Promise<OrchestrationItem[]> {
      const items = await provider.fetchOrchestrationItems(opts);
      items.forEach(openTurn);
      return items;
    },

    async ackOrchestrationItem(
      lockToken: string,
      ack: OrchestrationTurnAck,
      claim?: ActivityClaim | null,
    ): Promise<WorkItemLease[]> {
      const label = turns.get(lockToken)?.label;
      const traced = withTurnContext(lockToken, ack);
      const claimed = await guarded(
        turns,
        lockToken,
        'orchestration',
        () => provider.ackOrchestrationItem(lockToken, traced, claim),
        ack.metadata?.status ?? 'running',
      );
      countTurn(ack, label);
      claimed.forEach(openActivity);
      return claimed;
    },

    async ackOrchestrationItems(acks: readonly TurnAck[]): Promise<TurnAckOutcome[]> {
      const outcomes: TurnAckOutcome[] = [];
      const labels = acks.map((turn) => turns.get(turn.lockToken)?.label);
      const traced = acks.map((turn) => ({ ...turn, ack: withTurnContext(turn.lockToken, turn.ack) }));
      let results: TurnAckOutcome[];
      try {
        results = await provider.ackOrchestrationItems(traced);
      } catch (error) {
        for (const turn of acks) finish(turns, turn.lockToken, 'error', error);
        throw error;
      }
      results.forEach((outcome, index) => {
        const turn = acks[index];
        if (outcome.ok) {
          finish(turns, turn.lockToken, turn.ack.metadata?.status ?? 'running');
          countTurn(turn.ack, labels[index]);
          outcome.claimedWorkItems.forEach(openActivity);
        } else {
          if (isLockLost(outcome.error)) metrics?.lockSteals.inc({ kind: 'orchestration' });
          finish(turns, turn.lockToken, isLockLost(outcome.error) ? 'lock_lost' : 'error', outcome.error);
        }
        outcomes.push(outcome);
      });
      return outcomes;
    },

    async abandonOrchestrationItem(
      lockToken: string,
      opts?: { delayMs?: number; ignoreAttempt?: boolean },
    ): Promise<void> {
      await guarded(
        turns,
        lockToken,
        'orchestration',
        () => provider.abandonOrchestrationItem(lockToken, opts),
        'abandoned',
      );
    },

    async renewOrchestrationItemLock(lockToken: string, extendMs: number): Promise<void> {
      try {
        await provider.renewOrchestrationItemLock(lockToken, extendMs);
      } catch (error) {
        if (isLockLost(error)) metrics?.lockSteals.inc({ kind: 'orchestration' });
        throw error;
      }
    },

    async fetchWorkItem(opts): Promise<WorkItemLease | null> {
      const lease = await provider.fetchWorkItem(opts);
      if (lease !== null) openActivity(lease);
      return lease;
    },

    // Offered only when the provider has it (see the proxy below).
    async fetchWorkItemGroup(requests): Promise<Array<WorkItemLease | null>> {
      const group = provider.fetchWorkItemGroup?.bind(provider);
      const leases =
        group === undefined
          ? await Promise.all(requests.map((options) => provider.fetchWorkItem(options)))
          : await group(requests);
      for (const lease of leases) if (lease !== null) openActivity(lease);
      return leases;
    },

    async ackWorkItem(
      lockToken: string,
      completion: ActivityCompletionItem | null,
      claim?: TurnClaim | null,
    ): Promise<OrchestrationItem | null> {
      const lease = activities.get(lockToken);
      const parent = lease === undefined ? undefined : traceparentOf(lease.span);
      const traced = completion === null ? null : withContext(completion, parent);
      const outcome = completion === null ? 'dropped' : completion.type === 'ActivityFailed' ? 'failed' : 'completed';
      const turn = await guarded(
        activities,
        lockToken,
        'activity',
        () => provider.ackWorkItem(lockToken, traced, claim),
        outcome,
      );
      if (turn !== null) openTurn(turn);
      return turn;
    },

    async ackWorkItems(acks: readonly WorkItemAck[]): Promise<WorkItemAckOutcome[]> {
      const traced = acks.map((ack) => {
        const parent = activities.get(ack.lockToken);
        const completion =
          ack.completion === null
            ? null
            : withContext(ack.completion, parent === undefined ? undefined : traceparentOf(parent.span));
        return { ...ack, completion };
      });
      let outcomes: WorkItemAckOutcome[];
      try {
        outcomes = await provider.ackWorkItems(traced);
      } catch (error) {
        for (const ack of acks) finish(activities, ack.lockToken, 'error', error);
        throw error;
      }
      outcomes.forEach((outcome, index) => {
        const ack = acks[index];
        if (outcome.ok) {
          finish(
            activities,
            ack.lockToken,
            ack.completion === null ? 'dropped' : ack.completion.type === 'ActivityFailed' ? 'failed' : 'completed',
          );
          if (outcome.claimedTurn !== null) openTurn(outcome.claimedTurn);
        } else {
          if (isLockLost(outcome.error)) metrics?.lockSteals.inc({ kind: 'activity' });
          finish(activities, ack.lockToken, isLockLost(outcome.error) ? 'lock_lost' : 'error', outcome.error);
        }
      });
      return outcomes;
    },

    async abandonWorkItem(lockToken: string, opts?: { delayMs?: number; ignoreAttempt?: boolean }): Promise<void> {
      await guarded(activities, lockToken, 'activity', () => provider.abandonWorkItem(lockToken, opts), 'abandoned');
    },

    async renewWorkItemLock(lockToken: string, extendMs: number): Promise<void> {
      try {
        await provider.renewWorkItemLock(lockToken, extendMs);
      } catch (error) {
        if (isLockLost(error)) metrics?.lockSteals.inc({ kind: 'activity' });
        throw error;
      }
    },
  };

  return new Proxy(provider, {
    get(target, property, receiver) {
      // A fused ack or start commits a turn that was never fetched, so it would have no turn span
      // and no turn metrics: an instrumented provider does not offer them, and its runtime acks each step.
      if (
        property === 'ackWorkItemWithTurn' ||
        property === 'ackWorkItemsWithTurns' ||
        property === 'startOrchestrationWithTurn' ||
        property === 'startOrchestrationsWithTurns'
      )
        return undefined;
      if (property === 'fetchWorkItemGroup' && provider.fetchWorkItemGroup === undefined) return undefined;
      if (typeof property === 'string' && Object.prototype.hasOwnProperty.call(overrides, property)) {
        return overrides[property as keyof Provider];
      }
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
