/**
 * Worker sessions, batch activity fetch, deletion, pruning, instance trees and statistics over the
 * procedures of worker.sql and management.sql. Each operation validates its arguments (so bad input
 * never reaches the database) and then makes exactly one procedure call.
 */
import type {
  DeleteInstancesResult,
  FetchWorkItemOptions,
  InstanceFilter,
  InstanceStats,
  InstanceTree,
  PruneOptions,
  PruneResult,
  VersionRange,
  WorkItemLease,
} from '../provider/contract';
import { MAX_SESSION_OWNER_BYTES, MAX_WORK_ITEMS_PER_CALL } from '../core/limits';
import { decodeWorkLeaseGroup, decodeWorkLeases } from './item-decoding';
import { asRecord, numberField } from './row-decoding';
import {
  invalidArgument,
  requireId,
  requireInteger,
  requirePositiveDuration,
  requireText,
  type CallContext,
} from './validation';

/** One round trip: calls procedure `operation` with `params` and returns its json value. */
export type ProcedureCall = (operation: string, params: unknown[], instanceId?: string) => Promise<unknown>;

const TAG_MODES = new Set(['defaultOnly', 'any', 'none', 'tags', 'defaultAnd']);
const SEMVER = /^\d{1,9}\.\d{1,9}\.\d{1,9}(?:[-+].*)?$/;

/** fetch_work_item's arguments for one fetch, validated: tags, session owner and session rule. */
interface FetchArguments {
  lockTimeoutMs: number;
  tagMode: string;
  tags: string[];
  ownerId: string | null;
  sessionLockTimeoutMs: number | null;
  claimNewSessions: boolean;
}

function fetchArguments(options: FetchWorkItemOptions, context: CallContext): FetchArguments {
  if (options === null || typeof options !== 'object') throw invalidArgument(context, 'options must be an object');
  const lockTimeoutMs = requirePositiveDuration(options.lockTimeoutMs, 'lockTimeoutMs', context);
  const filter = options.tagFilter;
  if (typeof filter !== 'object' || filter === null || !TAG_MODES.has(filter.mode)) {
    throw invalidArgument(context, `unknown tag filter ${JSON.stringify(filter)}`);
  }
  const tags = filter.mode === 'tags' || filter.mode === 'defaultAnd' ? filter.tags : [];
  if (!Array.isArray(tags)) throw invalidArgument(context, 'tagFilter.tags must be an array of strings');
  tags.forEach((tag, i) => requireText(tag, `tagFilter.tags[${i}]`, context));
  let ownerId: string | null = null;
  let sessionLockTimeoutMs: number | null = null;
  let claimNewSessions = true;
  if (options.session !== undefined && options.session !== null) {
    ownerId = requireSessionOwner(options.session.ownerId, 'session.ownerId', context);
    sessionLockTimeoutMs = requirePositiveDuration(options.session.lockTimeoutMs, 'session.lockTimeoutMs', context);
    const flag = options.session.claimNewSessions;
    if (flag !== undefined && typeof flag !== 'boolean')
      throw invalidArgument(context, 'session.claimNewSessions must be a boolean');
    claimNewSessions = flag !== false;
  }
  return { lockTimeoutMs, tagMode: filter.mode, tags, ownerId, sessionLockTimeoutMs, claimNewSessions };
}

/** Locks up to `maxItems` work items (fetch_work_item); an empty array when there is none. */
export async function fetchWorkLeases(
  call: ProcedureCall,
  options: FetchWorkItemOptions,
  maxItems: number,
): Promise<WorkItemLease[]> {
  const context = { operation: 'fetch_work_item' };
  const args = fetchArguments(options, context);
  const max = requireInteger(maxItems, 'maxItems', context, 1);
  if (max > MAX_WORK_ITEMS_PER_CALL)
    throw invalidArgument(context, `maxItems must be at most ${MAX_WORK_ITEMS_PER_CALL}, got ${max}`);
  const rows = await call(context.operation, [
    args.lockTimeoutMs,
    args.tagMode,
    JSON.stringify(args.tags),
    args.ownerId,
    args.sessionLockTimeoutMs,
    max,
    args.claimNewSessions,
  ]);
  return decodeWorkLeases(rows, context.operation);
}

/** One lease or null per request, in order (fetch_work_item_group: the fetches of several workers). */
export async function fetchWorkLeaseGroup(
  call: ProcedureCall,
  requests: readonly FetchWorkItemOptions[],
): Promise<Array<WorkItemLease | null>> {
  const context = { operation: 'fetch_work_item_group' };
  if (!Array.isArray(requests) || requests.length === 0 || requests.length > MAX_WORK_ITEMS_PER_CALL) {
    throw invalidArgument(context, `requests must be an array of 1 to ${MAX_WORK_ITEMS_PER_CALL} fetch options`);
  }
  const args = requests.map((options: FetchWorkItemOptions) => fetchArguments(options, context));
  return decodeWorkLeaseGroup(await call(context.operation, [JSON.stringify(args)]), args.length, context.operation);
}

function requireSessionOwner(value: unknown, what: string, context: CallContext): string {
  const owner = requireId(value, what, context);
  const bytes = Buffer.byteLength(owner, 'utf8');
  if (bytes > MAX_SESSION_OWNER_BYTES) {
    throw invalidArgument(context, `${what} is ${bytes} bytes, more than the ${MAX_SESSION_OWNER_BYTES}-byte limit`);
  }
  return owner;
}

/** renew_session_locks: number of sessions extended (0 without owners, no call). */
export async function renewSessionLocks(
  call: ProcedureCall,
  ownerIds: string[],
  extendMs: number,
  idleTimeoutMs: number,
): Promise<number> {
  const context = { operation: 'renew_session_locks' };
  if (!Array.isArray(ownerIds)) throw invalidArgument(context, 'ownerIds must be an array of strings');
  const owners = ownerIds.map((id, i) => requireSessionOwner(id, `ownerIds[${i}]`, context));
  const extend = requirePositiveDuration(extendMs, 'extendMs', context);
  const idle = requirePositiveDuration(idleTimeoutMs, 'idleTimeoutMs', context);
  if (owners.length === 0) return 0;
  const record = asRecord(await call(context.operation, [JSON.stringify(owners), extend, idle])) ?? {};
  return numberField(record, 'renewed');
}

/** cleanup_orphaned_sessions: number of sessions removed. */
export async function cleanupOrphanedSessions(call: ProcedureCall): Promise<number> {
  const record = asRecord(await call('cleanup_orphaned_sessions', [])) ?? {};
  return numberField(record, 'removed');
}

/** The `[min, max]` arguments of fetch_orchestration_item (nulls: no capability filter). */
export function versionRangeArguments(range: VersionRange | null | undefined): [string | null, string | null] {
  if (range === undefined || range === null) return [null, null];
  const context = { operation: 'fetch_orchestration_item' };
  if (typeof range !== 'object') throw invalidArgument(context, 'versionRange must be {min, max}');
  for (const [what, value] of [
    ['versionRange.min', range.min],
    ['versionRange.max', range.max],
  ] as const) {
    if (typeof value !== 'string' || !SEMVER.test(value)) {
      throw invalidArgument(
        context,
        `${what} must be a semantic version major.minor.patch, got ${JSON.stringify(value)}`,
      );
    }
  }
  return [range.min, range.max];
}

function deleteResult(value: unknown): DeleteInstancesResult {
  const record = asRecord(value) ?? {};
  return {
    instancesDeleted: numberField(record, 'instancesDeleted'),
    executionsDeleted: numberField(record, 'executionsDeleted'),
    eventsDeleted: numberField(record, 'eventsDeleted'),
    queueMessagesDeleted: numberField(record, 'queueMessagesDeleted'),
  };
}

function pruneResult(value: unknown): PruneResult {
  const record = asRecord(value) ?? {};
  return {
    instancesProcessed: numberField(record, 'instancesProcessed'),
    executionsDeleted: numberField(record, 'executionsDeleted'),
    eventsDeleted: numberField(record, 'eventsDeleted'),
  };
}

function forceFlag(options: { force?: boolean } | undefined, context: CallContext): boolean {
  const force = options?.force;
  if (force !== undefined && typeof force !== 'boolean')
    throw invalidArgument(context, `force must be a boolean, got ${typeof force}`);
  return force === true;
}

/** delete_instance: the root and its tree. */
export async function deleteInstance(
  call: ProcedureCall,
  instanceId: string,
  options?: { force?: boolean },
): Promise<DeleteInstancesResult> {
  const context = { operation: 'delete_instance', instanceId };
  const id = requireId(instanceId, 'instanceId', context);
  return deleteResult(await call(context.operation, [id, forceFlag(options, context)], id));
}

/** delete_instances: exactly the listed ids. */
export async function deleteInstances(
  call: ProcedureCall,
  instanceIds: string[],
  options?: { force?: boolean },
): Promise<DeleteInstancesResult> {
  const context = { operation: 'delete_instances' };
  if (!Array.isArray(instanceIds)) throw invalidArgument(context, 'instanceIds must be an array of strings');
  const ids = instanceIds.map((id, i) => requireId(id, `instanceIds[${i}]`, context));
  return deleteResult(await call(context.operation, [JSON.stringify(ids), forceFlag(options, context)]));
}

/** The json filter argument {instanceIds?, completedBefore?, limit?}, validated. */
export function filterArgument(filter: InstanceFilter | undefined, context: CallContext): string {
  if (filter === undefined || filter === null) return '{}';
  if (typeof filter !== 'object' || Array.isArray(filter)) throw invalidArgument(context, 'filter must be an object');
  const argument: Record<string, unknown> = {};
  if (filter.instanceIds !== undefined && filter.instanceIds !== null) {
    if (!Array.isArray(filter.instanceIds))
      throw invalidArgument(context, 'filter.instanceIds must be an array of strings');
    argument.instanceIds = filter.instanceIds.map((id, i) => requireId(id, `filter.instanceIds[${i}]`, context));
  }
  if (filter.completedBefore !== undefined && filter.completedBefore !== null) {
    argument.completedBefore = requireInteger(filter.completedBefore, 'filter.completedBefore', context, 0);
  }
  if (filter.limit !== undefined && filter.limit !== null)
    argument.limit = requireInteger(filter.limit, 'filter.limit', context, 0);
  return JSON.stringify(argument);
}

function pruneArguments(options: PruneOptions | undefined, context: CallContext): [number | null, number | null] {
  if (options === undefined || options === null) return [null, null];
  if (typeof options !== 'object') throw invalidArgument(context, 'options must be an object');
  const keepLast =
    options.keepLast === undefined || options.keepLast === null
      ? null
      : requireInteger(options.keepLast, 'keepLast', context, 0);
  const before =
    options.completedBefore === undefined || options.completedBefore === null
      ? null
      : requireInteger(options.completedBefore, 'completedBefore', context, 0);
  return [keepLast, before];
}

/** delete_instance_bulk: terminal roots matching the filter, with their trees, atomically. */
export async function deleteInstanceBulk(call: ProcedureCall, filter?: InstanceFilter): Promise<DeleteInstancesResult> {
  const context = { operation: 'delete_instance_bulk' };
  return deleteResult(await call(context.operation, [filterArgument(filter, context)]));
}

/** get_instance_tree. */
export async function getInstanceTree(call: ProcedureCall, instanceId: string): Promise<InstanceTree> {
  const context = { operation: 'get_instance_tree', instanceId };
  const id = requireId(instanceId, 'instanceId', context);
  const record = asRecord(await call(context.operation, [id], id)) ?? {};
  return { rootId: String(record.rootId), allIds: (Array.isArray(record.allIds) ? record.allIds : []).map(String) };
}

/** prune_executions. */
export async function pruneExecutions(
  call: ProcedureCall,
  instanceId: string,
  options?: PruneOptions,
): Promise<PruneResult> {
  const context = { operation: 'prune_executions', instanceId };
  const id = requireId(instanceId, 'instanceId', context);
  return pruneResult(await call(context.operation, [id, ...pruneArguments(options, context)], id));
}

/** prune_executions_bulk. */
export async function pruneExecutionsBulk(
  call: ProcedureCall,
  filter?: InstanceFilter,
  options?: PruneOptions,
): Promise<PruneResult> {
  const context = { operation: 'prune_executions_bulk' };
  return pruneResult(
    await call(context.operation, [filterArgument(filter, context), ...pruneArguments(options, context)]),
  );
}

/** get_instance_stats: null for an unknown instance. */
export async function getInstanceStats(call: ProcedureCall, instanceId: string): Promise<InstanceStats | null> {
  const context = { operation: 'get_instance_stats', instanceId };
  const id = requireId(instanceId, 'instanceId', context);
  const record = asRecord(await call(context.operation, [id], id));
  if (record === null) return null;
  return {
    historyEventCount: numberField(record, 'historyEventCount'),
    historySizeBytes: numberField(record, 'historySizeBytes'),
    queuePendingCount: numberField(record, 'queuePendingCount'),
    kvUserKeyCount: numberField(record, 'kvUserKeyCount'),
    kvTotalValueBytes: numberField(record, 'kvTotalValueBytes'),
  };
}
