/**
 * The stored-procedure provider: every operation is exactly one call
 * `SELECT "<schema>".<procedure>($1, ...) AS result` returning one json value, so each operation
 * is one round trip and one transaction. Runs on any {@link SqlExecutor}: the `pg` pool
 * (PostgresProvider) and PGlite (embedded mode) share it.
 */
import type {
  ActivityCompletionItem,
  ActivityExecuteItem,
  ExecutionStatus,
  HistoryEvent,
  OrchestratorWorkItem,
  StartOrchestrationItem,
} from '../core/types';
import { MAX_PAGE_ROWS } from '../core/limits';
import type { OrchestrationTurnAck } from '../core/turn-types';
import type {
  ActivityClaim,
  DeleteInstancesResult,
  FusedAckOutcome,
  FusedWorkItemAck,
  FusedWorkItemAckOutcome,
  FusedTurn,
  FusedStart,
  FusedStartElementOutcome,
  FusedStartOutcome,
  ExecutionInfo,
  FetchWorkItemOptions,
  FlowLimitInfo,
  FlowLimitSettings,
  InstanceFilter,
  InstanceStats,
  InstanceTree,
  PruneOptions,
  PruneResult,
  VersionRange,
  InstanceInfo,
  InstancePage,
  InstancePageQuery,
  InstanceSummary,
  InstanceStatus,
  OrchestrationItem,
  Provider,
  QueueDepths,
  ThroughputBucket,
  SystemMetrics,
  StartTurn,
  TurnAck,
  TurnAckOutcome,
  TurnClaim,
  WorkItemAck,
  WorkItemAckOutcome,
  WakeupEvent,
  WakeupSubscription,
  WorkItemLease,
} from '../provider/contract';
import { buildAckArguments, orchestratorRow, turnClaimArgument, workerRow } from './ack-arguments';
import { decodeInstanceStatus, decodeOrchestrationItem, decodeWorkLeases } from './item-decoding';
import { beginTurnAck, publishCommittedStatus } from '../provider/local-completions';
import { toProviderError } from './error-mapping';
import {
  asRecord,
  decodeHistory,
  numberField,
  optionalNumberField,
  optionalStringField,
  resultValue,
} from './row-decoding';
import { quoteSchemaName } from './schema-name';
import type { QueryOptions, SqlExecutor } from './sql-executor';
import { WakeupHub } from './wakeup-hub';
import * as batch from './batch-operations';
import * as parity from './parity-operations';
import * as fusedStarts from './fused-start-operations';
import {
  invalidArgument,
  optionalDuration,
  requireId,
  requireInteger,
  requirePositiveDuration,
  requireText,
  type CallContext,
} from './validation';

const STATUSES = new Set(['Running', 'Completed', 'Failed', 'ContinuedAsNew']);
/** A procedure call's text is one per operation, run again and again: prepared once per connection. */
const PROCEDURE_CALL: QueryOptions = { prepared: true };
/** Provider over the Durox stored procedures of one schema. */
export class ProcedureProvider implements Provider {
  readonly name: string;
  /** Validated, quoted schema name used as the procedure prefix. */
  readonly schema: string;
  private readonly executor: SqlExecutor;
  private readonly quotedSchema: string;
  private readonly callTexts = new Map<string, string>();
  private readonly wakeups: WakeupHub;

  /**
   * @param executor driver surface (pool or PGlite); the schema must already be migrated.
   * @param schema schema holding the procedures, validated against `^[a-z_][a-z0-9_]{0,62}$`.
   * @param name provider name reported to the runtime (e.g. `postgres`).
   */
  constructor(executor: SqlExecutor, schema: string, name: string) {
    this.quotedSchema = quoteSchemaName(schema, 'create_provider');
    this.executor = executor;
    this.schema = schema;
    this.name = name;
    this.wakeups = new WakeupHub(executor, `SELECT ${this.quotedSchema}.listen_for_wakeups() AS result`);
  }

  // --- orchestration turns ------------------------------------------------------------------

  async fetchOrchestrationItem(options: {
    lockTimeoutMs: number;
    versionRange?: VersionRange | null;
  }): Promise<OrchestrationItem | null> {
    const operation = 'fetch_orchestration_item';
    const lockTimeoutMs = requirePositiveDuration(options?.lockTimeoutMs, 'lockTimeoutMs', { operation });
    const [minVersion, maxVersion] = parity.versionRangeArguments(options.versionRange);
    return decodeOrchestrationItem(await this.call(operation, [lockTimeoutMs, minVersion, maxVersion]), operation);
  }

  async fetchOrchestrationItems(options: {
    lockTimeoutMs: number;
    versionRange?: VersionRange | null;
    maxItems: number;
  }): Promise<OrchestrationItem[]> {
    return batch.fetchOrchestrationItems(this.procedureCall, options);
  }

  async ackOrchestrationItem(
    lockToken: string,
    ack: OrchestrationTurnAck,
    claim?: ActivityClaim | null,
  ): Promise<WorkItemLease[]> {
    const context = { operation: 'ack_orchestration_item', instanceId: ack?.instanceId };
    const token = requireId(lockToken, 'lockToken', context);
    const argument = buildAckArguments(ack, claim);
    const settle = beginTurnAck(this, ack.instanceId);
    try {
      const result = asRecord(
        await this.call(context.operation, [token, argument.ack, argument.claim], context.instanceId),
      );
      this.publishCommitted(result);
      return argument.claim === null ? [] : decodeWorkLeases(result?.claimedWorkItems, context.operation);
    } finally {
      settle();
    }
  }

  async ackOrchestrationItems(acks: readonly TurnAck[]): Promise<TurnAckOutcome[]> {
    return this.withTurnAcksInFlight(
      acks,
      (element) => element?.ack?.instanceId,
      () => batch.ackOrchestrationItems(this.procedureCall, acks, (record) => this.publishCommitted(record)),
    );
  }

  /**
   * Runs a group call of turn commits with each element's instance marked as having a turn ack in
   * flight (local-completions.ts). The call validates its elements; here only those whose instance
   * is a string are marked.
   */
  private async withTurnAcksInFlight<E, T>(
    elements: readonly E[],
    instanceOf: (element: E | undefined) => unknown,
    call: () => Promise<T>,
  ): Promise<T> {
    const list: ReadonlyArray<E | undefined> = Array.isArray(elements) ? elements : [];
    const settles = list.flatMap((element) => {
      const instance = instanceOf(element);
      return typeof instance === 'string' ? [beginTurnAck(this, instance)] : [];
    });
    try {
      return await call();
    } finally {
      for (const settle of settles) settle();
    }
  }

  /** Hands a turn ack's committed terminal status to clients of this object waiting for it. */
  private publishCommitted(result: Record<string, unknown> | null): void {
    const committed = asRecord(result?.committedStatus);
    if (committed === null || typeof result?.instanceId !== 'string') return;
    publishCommittedStatus(this, result.instanceId, decodeInstanceStatus(committed));
  }

  async abandonOrchestrationItem(
    lockToken: string,
    options: { delayMs?: number; ignoreAttempt?: boolean } = {},
  ): Promise<void> {
    const context = { operation: 'abandon_orchestration_item' };
    const token = requireId(lockToken, 'lockToken', context);
    const delayMs = optionalDuration(options.delayMs, 'delayMs', context);
    await this.call(context.operation, [token, delayMs, options.ignoreAttempt === true]);
  }

  async renewOrchestrationItemLock(lockToken: string, extendMs: number): Promise<void> {
    const context = { operation: 'renew_orchestration_item_lock' };
    const token = requireId(lockToken, 'lockToken', context);
    await this.call(context.operation, [token, requirePositiveDuration(extendMs, 'extendMs', context)]);
  }

  async enqueueOrchestratorWork(item: OrchestratorWorkItem, options: { delayMs?: number } = {}): Promise<void> {
    const context: CallContext = { operation: 'enqueue_orchestrator_work', instanceId: instanceOf(item) };
    const row = orchestratorRow(item, context);
    const delayMs = optionalDuration(options.delayMs, 'delayMs', context);
    const fireAtMs = item.type === 'TimerFired' ? item.fireAtMs : null;
    await this.call(
      context.operation,
      [row.targetInstance, row.kind, row.workItem, delayMs, fireAtMs],
      row.targetInstance,
    );
  }

  async startOrchestrationClaimed(item: StartOrchestrationItem, claim: TurnClaim): Promise<OrchestrationItem | null> {
    const context: CallContext = { operation: 'start_orchestration_claimed', instanceId: instanceOf(item) };
    if (item?.type !== 'StartOrchestration')
      throw invalidArgument(context, 'an eager start takes a StartOrchestration item');
    const row = orchestratorRow(item, context);
    const claimArgument = turnClaimArgument(claim, context);
    if (claimArgument === null) throw invalidArgument(context, 'an eager start needs a turn claim');
    const result = asRecord(
      await this.call(context.operation, [row.targetInstance, row.workItem, claimArgument], row.targetInstance),
    );
    return decodeOrchestrationItem(result?.claimedTurn, context.operation);
  }

  async startOrchestrationWithTurn(item: StartOrchestrationItem, turn: StartTurn): Promise<FusedStartOutcome> {
    return this.withTurnAcksInFlight(
      [item],
      (element) => element?.instance,
      () =>
        fusedStarts.startOrchestrationWithTurn(this.procedureCall, item, turn, (record) =>
          this.publishCommitted(record),
        ),
    );
  }

  async startOrchestrationsWithTurns(starts: readonly FusedStart[]): Promise<FusedStartElementOutcome[]> {
    return this.withTurnAcksInFlight(
      starts,
      (element) => element?.item?.instance,
      () =>
        fusedStarts.startOrchestrationsWithTurns(this.procedureCall, starts, (record) => this.publishCommitted(record)),
    );
  }

  // --- activities -----------------------------------------------------------------------------

  async enqueueWorkerWork(item: ActivityExecuteItem): Promise<void> {
    const context: CallContext = { operation: 'enqueue_worker_work', instanceId: instanceOf(item) };
    const row = workerRow(item, context);
    await this.call(
      context.operation,
      [row.instanceId, row.executionId, row.activityId, row.tag, row.workItem],
      row.instanceId,
    );
  }

  async fetchWorkItem(options: FetchWorkItemOptions): Promise<WorkItemLease | null> {
    return (await parity.fetchWorkLeases(this.procedureCall, options, 1))[0] ?? null;
  }

  async fetchWorkItems(options: FetchWorkItemOptions & { maxItems: number }): Promise<WorkItemLease[]> {
    return parity.fetchWorkLeases(this.procedureCall, options, options?.maxItems);
  }

  async fetchWorkItemGroup(requests: readonly FetchWorkItemOptions[]): Promise<Array<WorkItemLease | null>> {
    return parity.fetchWorkLeaseGroup(this.procedureCall, requests);
  }

  async renewSessionLocks(ownerIds: string[], extendMs: number, idleTimeoutMs: number): Promise<number> {
    return parity.renewSessionLocks(this.procedureCall, ownerIds, extendMs, idleTimeoutMs);
  }

  async cleanupOrphanedSessions(): Promise<number> {
    return parity.cleanupOrphanedSessions(this.procedureCall);
  }

  async ackWorkItem(
    lockToken: string,
    completion: ActivityCompletionItem | null,
    claim?: TurnClaim | null,
  ): Promise<OrchestrationItem | null> {
    const context: CallContext = { operation: 'ack_work_item', instanceId: completion?.instance };
    const token = requireId(lockToken, 'lockToken', context);
    if (completion === null || completion === undefined) {
      await this.call(context.operation, [token, null, null, null, null]);
      return null;
    }
    if (completion.type !== 'ActivityCompleted' && completion.type !== 'ActivityFailed') {
      throw invalidArgument(context, 'a work item completion must be ActivityCompleted or ActivityFailed');
    }
    const row = orchestratorRow(completion, context);
    const claimArgument = turnClaimArgument(claim, context);
    const result = asRecord(
      await this.call(
        context.operation,
        [token, row.targetInstance, row.kind, row.workItem, claimArgument],
        row.targetInstance,
      ),
    );
    return claimArgument === null ? null : decodeOrchestrationItem(result?.claimedTurn, context.operation);
  }

  async ackWorkItemWithTurn(
    lockToken: string,
    completion: ActivityCompletionItem,
    claim: TurnClaim,
    turn: FusedTurn,
  ): Promise<FusedAckOutcome> {
    const context: CallContext = { operation: 'ack_work_item_with_turn', instanceId: completion?.instance };
    const args = batch.fusedAckArguments({ lockToken, completion, claim, turn }, context);
    const settle = beginTurnAck(this, args.instanceId);
    try {
      const result = await this.call(
        context.operation,
        [args.lockToken, args.instanceId, args.kind, args.workItem, args.claimTurn, args.turn],
        args.instanceId,
      );
      return batch.decodeFusedOutcome(asRecord(result), context.operation, (record) => this.publishCommitted(record));
    } finally {
      settle();
    }
  }

  async ackWorkItemsWithTurns(acks: readonly FusedWorkItemAck[]): Promise<FusedWorkItemAckOutcome[]> {
    return this.withTurnAcksInFlight(
      acks,
      (element) => element?.completion?.instance,
      () => batch.ackWorkItemsWithTurns(this.procedureCall, acks, (record) => this.publishCommitted(record)),
    );
  }

  async ackWorkItems(acks: readonly WorkItemAck[]): Promise<WorkItemAckOutcome[]> {
    return batch.ackWorkItems(this.procedureCall, acks);
  }

  async renewWorkItemLock(lockToken: string, extendMs: number): Promise<void> {
    const context = { operation: 'renew_work_item_lock' };
    const token = requireId(lockToken, 'lockToken', context);
    await this.call(context.operation, [token, requirePositiveDuration(extendMs, 'extendMs', context)]);
  }

  async abandonWorkItem(lockToken: string, options: { delayMs?: number; ignoreAttempt?: boolean } = {}): Promise<void> {
    const context = { operation: 'abandon_work_item' };
    const token = requireId(lockToken, 'lockToken', context);
    const delayMs = optionalDuration(options.delayMs, 'delayMs', context);
    await this.call(context.operation, [token, delayMs, options.ignoreAttempt === true]);
  }

  // --- reads ----------------------------------------------------------------------------------

  async readHistory(instanceId: string, executionId?: number): Promise<HistoryEvent[]> {
    const context = { operation: 'read_history', instanceId };
    const id = requireId(instanceId, 'instanceId', context);
    const execution = executionId === undefined ? null : requireInteger(executionId, 'executionId', context, 1);
    const record = asRecord(await this.call(context.operation, [id, execution], id));
    return decodeHistory(record?.events ?? [], context.operation, id);
  }

  async getInstanceStatus(instanceId: string): Promise<InstanceStatus> {
    const context = { operation: 'get_instance_status', instanceId };
    const id = requireId(instanceId, 'instanceId', context);
    return decodeInstanceStatus(asRecord(await this.call(context.operation, [id], id)) ?? {});
  }

  async getKvValue(instanceId: string, key: string): Promise<string | null> {
    const context = { operation: 'get_kv_value', instanceId };
    const id = requireId(instanceId, 'instanceId', context);
    const record = asRecord(await this.call(context.operation, [id, requireText(key, 'key', context)], id));
    return record?.found === true ? String(record.value) : null;
  }

  async getKvAllValues(instanceId: string): Promise<Record<string, string>> {
    const context = { operation: 'get_kv_all_values', instanceId };
    const id = requireId(instanceId, 'instanceId', context);
    return (asRecord(await this.call(context.operation, [id], id)) ?? {}) as Record<string, string>;
  }

  // --- management -----------------------------------------------------------------------------

  async listInstances(options: { status?: ExecutionStatus } = {}): Promise<string[]> {
    const context = { operation: 'list_instances' };
    if (options.status !== undefined && !STATUSES.has(options.status)) {
      throw invalidArgument(context, `unknown status ${JSON.stringify(options.status)}`);
    }
    return (await this.call(context.operation, [options.status ?? null])) as string[];
  }

  async listExecutions(instanceId: string): Promise<number[]> {
    const context = { operation: 'list_executions', instanceId };
    const id = requireId(instanceId, 'instanceId', context);
    return ((await this.call(context.operation, [id], id)) as unknown[]).map(Number);
  }

  async getInstanceInfo(instanceId: string): Promise<InstanceInfo | null> {
    const context = { operation: 'get_instance_info', instanceId };
    const id = requireId(instanceId, 'instanceId', context);
    const record = asRecord(await this.call(context.operation, [id], id));
    if (record === null) return null;
    return {
      instanceId: String(record.instanceId),
      orchestrationName: String(record.orchestrationName),
      orchestrationVersion: String(record.orchestrationVersion),
      currentExecutionId: numberField(record, 'currentExecutionId'),
      status: record.status as ExecutionStatus,
      output: optionalStringField(record, 'output'),
      createdAt: numberField(record, 'createdAt'),
      updatedAt: numberField(record, 'updatedAt'),
      parentInstanceId: optionalStringField(record, 'parentInstanceId'),
      priority: numberField(record, 'priority'),
    };
  }

  async getExecutionInfo(instanceId: string, executionId: number): Promise<ExecutionInfo | null> {
    const context = { operation: 'get_execution_info', instanceId };
    const id = requireId(instanceId, 'instanceId', context);
    const execution = requireInteger(executionId, 'executionId', context, 1);
    const record = asRecord(await this.call(context.operation, [id, execution], id));
    if (record === null) return null;
    return {
      executionId: numberField(record, 'executionId'),
      status: record.status as ExecutionStatus,
      output: optionalStringField(record, 'output'),
      startedAt: numberField(record, 'startedAt'),
      completedAt: optionalNumberField(record, 'completedAt'),
      eventCount: numberField(record, 'eventCount'),
    };
  }

  async getSystemMetrics(): Promise<SystemMetrics> {
    const record = asRecord(await this.call('get_system_metrics', [])) ?? {};
    return {
      totalInstances: numberField(record, 'totalInstances'),
      totalExecutions: numberField(record, 'totalExecutions'),
      runningInstances: numberField(record, 'runningInstances'),
      completedInstances: numberField(record, 'completedInstances'),
      failedInstances: numberField(record, 'failedInstances'),
      totalEvents: numberField(record, 'totalEvents'),
    };
  }

  async getQueueDepths(): Promise<QueueDepths> {
    const record = asRecord(await this.call('get_queue_depths', [])) ?? {};
    return {
      orchestratorQueue: numberField(record, 'orchestratorQueue'),
      workerQueue: numberField(record, 'workerQueue'),
      timerQueue: numberField(record, 'timerQueue'),
    };
  }

  async setFlowLimit(flowKey: string, settings: FlowLimitSettings): Promise<FlowLimitInfo> {
    const context = { operation: 'set_flow_limit' };
    const key = requireFlowKey(flowKey, context);
    const maxActive = settings?.maxActive ?? null;
    if (maxActive !== null) requireInteger(maxActive, 'maxActive', context, 0);
    const perSecond = settings?.perSecond ?? null;
    if (perSecond !== null && (typeof perSecond !== 'number' || !Number.isFinite(perSecond) || perSecond <= 0)) {
      throw invalidArgument(context, `perSecond must be a positive number, got ${String(perSecond)}`);
    }
    const burst = settings?.burst ?? null;
    if (burst !== null && (perSecond === null || typeof burst !== 'number' || !Number.isFinite(burst) || burst < 1)) {
      throw invalidArgument(context, `burst must be a number >= 1 given with perSecond, got ${String(burst)}`);
    }
    const result = await this.call(context.operation, [key, JSON.stringify({ maxActive, perSecond, burst })]);
    return flowLimitInfo(asRecord(result) ?? {});
  }

  async getFlowLimits(): Promise<FlowLimitInfo[]> {
    const rows = (await this.call('get_flow_limits', [])) as unknown[];
    return rows.map((row) => flowLimitInfo(asRecord(row) ?? {}));
  }

  async deleteFlowLimit(flowKey: string): Promise<boolean> {
    const context = { operation: 'delete_flow_limit' };
    const record = asRecord(await this.call(context.operation, [requireFlowKey(flowKey, context)])) ?? {};
    return record.deleted === true;
  }

  async listInstancesPage(query: InstancePageQuery): Promise<InstancePage> {
    const context = { operation: 'list_instances_page' };
    const filter = pageFilterArgument(query, context);
    const record = asRecord(await this.call(context.operation, [JSON.stringify(filter)])) ?? {};
    const items = Array.isArray(record.items) ? record.items : [];
    const next = asRecord(record.nextCursor);
    return {
      items: items.map((row) => instanceSummary(asRecord(row) ?? {})),
      nextCursor:
        next === null ? null : { createdAt: numberField(next, 'createdAt'), instanceId: String(next.instanceId) },
    };
  }

  async getThroughput(sinceMs: number, bucketMs: number): Promise<ThroughputBucket[]> {
    const context = { operation: 'get_throughput' };
    const since = requireInteger(sinceMs, 'sinceMs', context, 0);
    const bucket = requireInteger(bucketMs, 'bucketMs', context, 1000);
    const rows = (await this.call(context.operation, [since, bucket])) as unknown[];
    return rows.map((row) => {
      const r = asRecord(row) ?? {};
      return {
        bucketStart: numberField(r, 'bucketStart'),
        started: numberField(r, 'started'),
        completed: numberField(r, 'completed'),
        failed: numberField(r, 'failed'),
      };
    });
  }

  // --- push wake-ups --------------------------------------------------------------------------

  /**
   * Push hints from the NOTIFY triggers (notifications.sql) over one shared LISTEN connection per
   * provider (opened on the first subscriber, closed 5 s after the last one leaves). An executor
   * without `subscribe` yields a subscription that is never live (the runtime polls).
   */
  subscribeToWakeups(listener: (event: WakeupEvent) => void): WakeupSubscription {
    return this.wakeups.subscribe(listener);
  }

  // --- deletion, pruning, trees and statistics (management.sql) ------------------------------

  async deleteInstance(instanceId: string, options?: { force?: boolean }): Promise<DeleteInstancesResult> {
    return parity.deleteInstance(this.procedureCall, instanceId, options);
  }

  async deleteInstances(instanceIds: string[], options?: { force?: boolean }): Promise<DeleteInstancesResult> {
    return parity.deleteInstances(this.procedureCall, instanceIds, options);
  }

  async deleteInstanceBulk(filter?: InstanceFilter): Promise<DeleteInstancesResult> {
    return parity.deleteInstanceBulk(this.procedureCall, filter);
  }

  async getInstanceTree(instanceId: string): Promise<InstanceTree> {
    return parity.getInstanceTree(this.procedureCall, instanceId);
  }

  async pruneExecutions(instanceId: string, options?: PruneOptions): Promise<PruneResult> {
    return parity.pruneExecutions(this.procedureCall, instanceId, options);
  }

  async pruneExecutionsBulk(filter?: InstanceFilter, options?: PruneOptions): Promise<PruneResult> {
    return parity.pruneExecutionsBulk(this.procedureCall, filter, options);
  }

  async getInstanceStats(instanceId: string): Promise<InstanceStats | null> {
    return parity.getInstanceStats(this.procedureCall, instanceId);
  }

  callsAreSlow(): boolean {
    return this.executor.callsAreSlow?.() ?? false;
  }

  callsRunInParallel(): boolean {
    return this.executor.runsCallsInParallel?.() ?? false;
  }

  async close(): Promise<void> {
    await this.wakeups.close();
    await this.executor.close();
  }

  // --- plumbing -------------------------------------------------------------------------------

  /** {@link call} bound to this provider, for the operation modules. */
  private readonly procedureCall: parity.ProcedureCall = (operation, params, instanceId) =>
    this.call(operation, params, instanceId);

  /** The one round trip of an operation: calls procedure `operation` and returns its json value. */
  protected async call(operation: string, params: unknown[], instanceId?: string): Promise<unknown> {
    let text = this.callTexts.get(operation);
    if (text === undefined) {
      const placeholders = params.map((_, i) => `$${i + 1}`).join(', ');
      text = `SELECT ${this.quotedSchema}.${operation}(${placeholders}) AS result`;
      this.callTexts.set(operation, text);
    }
    try {
      return resultValue(await this.executor.query(text, params, PROCEDURE_CALL));
    } catch (error) {
      throw toProviderError(error, operation, instanceId);
    }
  }
}

function instanceOf(item: unknown): string | undefined {
  const record = asRecord(item);
  if (record === null) return undefined;
  const id =
    record.type === 'SubOrchCompleted' || record.type === 'SubOrchFailed' ? record.parentInstance : record.instance;
  return typeof id === 'string' ? id : undefined;
}

/** The json filter of list_instances_page, validated so bad input never reaches the database. */
function pageFilterArgument(query: InstancePageQuery, context: CallContext): Record<string, unknown> {
  if (query === null || typeof query !== 'object') throw invalidArgument(context, 'query must be an object');
  const filter: Record<string, unknown> = { limit: requireInteger(query.limit, 'limit', context, 1) };
  if ((filter.limit as number) > MAX_PAGE_ROWS)
    throw invalidArgument(context, `limit must be at most ${MAX_PAGE_ROWS}, got ${String(query.limit)}`);
  if (query.status !== undefined) {
    if (!STATUSES.has(query.status)) throw invalidArgument(context, `unknown status ${JSON.stringify(query.status)}`);
    filter.status = query.status;
  }
  if (query.orchestrationName !== undefined)
    filter.orchestrationName = requireText(query.orchestrationName, 'orchestrationName', context);
  if (query.createdFromMs !== undefined)
    filter.createdFromMs = requireInteger(query.createdFromMs, 'createdFromMs', context, 0);
  if (query.createdToMs !== undefined)
    filter.createdToMs = requireInteger(query.createdToMs, 'createdToMs', context, 0);
  if (query.cursor !== undefined) {
    const cursor = asRecord(query.cursor);
    if (cursor === null) throw invalidArgument(context, 'cursor must be {createdAt, instanceId}');
    filter.cursorCreatedAt = requireInteger(cursor.createdAt, 'cursor.createdAt', context, 0);
    filter.cursorInstanceId = requireId(cursor.instanceId, 'cursor.instanceId', context);
  }
  return filter;
}

function instanceSummary(r: Record<string, unknown>): InstanceSummary {
  return {
    instanceId: String(r.instanceId),
    orchestrationName: String(r.orchestrationName),
    orchestrationVersion: String(r.orchestrationVersion),
    status: r.status as ExecutionStatus,
    currentExecutionId: numberField(r, 'currentExecutionId'),
    createdAt: numberField(r, 'createdAt'),
    updatedAt: numberField(r, 'updatedAt'),
    parentInstanceId: optionalStringField(r, 'parentInstanceId'),
    customStatus: optionalStringField(r, 'customStatus'),
    error: optionalStringField(r, 'error'),
    priority: r.priority === undefined || r.priority === null ? 0 : numberField(r, 'priority'),
  };
}

/** Flow keys are 1 to 512 bytes of text PostgreSQL can hold. */
function requireFlowKey(flowKey: string, context: CallContext): string {
  const key = requireText(flowKey, 'flow key', context);
  if (key.length === 0 || Buffer.byteLength(key) > 512) {
    throw invalidArgument(context, `flow key must be 1 to 512 bytes, got ${Buffer.byteLength(key)}`);
  }
  return key;
}

function flowLimitInfo(record: Record<string, unknown>): FlowLimitInfo {
  return {
    flowKey: String(record.flowKey),
    maxActive: optionalNumberField(record, 'maxActive'),
    active: numberField(record, 'active'),
    parked: numberField(record, 'parked'),
    activeInstances: numberField(record, 'activeInstances'),
    parkedInstances: numberField(record, 'parkedInstances'),
    perSecond: optionalNumberField(record, 'perSecond'),
    burst: optionalNumberField(record, 'burst'),
    createdAtMs: numberField(record, 'createdAtMs'),
    updatedAtMs: numberField(record, 'updatedAtMs'),
  };
}
