/**
 * Shapes and argument checks of the Client's deletion, pruning, tree and statistics methods
 * (docs/runtime.md, "The Client"). Every check runs before the provider is called.
 */
import { describeNonError } from '../core/thrown';
import type { DeleteInstancesResult, InstanceFilter, PruneOptions, PruneResult } from '../provider/contract';
import { InvalidArgumentError } from './errors';

/** Result of `deleteInstance` / `deleteInstanceBulk`. */
export interface JsDeleteInstanceResult {
  instancesDeleted: number;
  executionsDeleted: number;
  eventsDeleted: number;
  queueMessagesDeleted: number;
}

/** Input of `pruneExecutions` / `pruneExecutionsBulk`; the current execution is always kept. */
export interface JsPruneOptions {
  /** Keep the newest N executions (absent, 0 and 1 keep only the current one). */
  keepLast?: number;
  /** Only executions completed before this time (epoch ms). */
  completedBefore?: number;
}

/** Result of `pruneExecutions` / `pruneExecutionsBulk`. */
export interface JsPruneResult {
  instancesProcessed: number;
  executionsDeleted: number;
  eventsDeleted: number;
}

/** Input of the bulk methods; fields are ANDed. */
export interface JsInstanceFilter {
  /** Only these ids (an empty list selects nothing). */
  instanceIds?: string[];
  /** Only instances whose current execution completed before this time (epoch ms). */
  completedBefore?: number;
  /** At most this many instances (default 1000). */
  limit?: number;
}

/** Result of `getInstanceTree`. */
export interface JsInstanceTree {
  rootId: string;
  /** The root and every descendant, root first. */
  allIds: string[];
  size: number;
}

export function toJsDeleteResult(result: DeleteInstancesResult): JsDeleteInstanceResult {
  return {
    instancesDeleted: result.instancesDeleted,
    executionsDeleted: result.executionsDeleted,
    eventsDeleted: result.eventsDeleted,
    queueMessagesDeleted: result.queueMessagesDeleted,
  };
}

export function toJsPruneResult(result: PruneResult): JsPruneResult {
  return {
    instancesProcessed: result.instancesProcessed,
    executionsDeleted: result.executionsDeleted,
    eventsDeleted: result.eventsDeleted,
  };
}

function optionalCount(operation: string, field: string, value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError(
      operation,
      `${operation}: ${field} must be a non-negative integer, got ${describeNonError(value)}`,
    );
  }
  return value;
}

/** Validates a {@link JsInstanceFilter}. */
export function toInstanceFilter(operation: string, filter: unknown): InstanceFilter {
  if (filter === undefined || filter === null) return {};
  if (typeof filter !== 'object' || Array.isArray(filter))
    throw new InvalidArgumentError(operation, `${operation}: filter must be an object`);
  const input = filter as JsInstanceFilter;
  const result: InstanceFilter = {};
  if (input.instanceIds !== undefined && input.instanceIds !== null) {
    if (
      !Array.isArray(input.instanceIds) ||
      input.instanceIds.some((id) => typeof id !== 'string' || id.length === 0)
    ) {
      throw new InvalidArgumentError(
        operation,
        `${operation}: filter.instanceIds must be an array of non-empty strings`,
      );
    }
    result.instanceIds = [...input.instanceIds];
  }
  const completedBefore = optionalCount(operation, 'filter.completedBefore', input.completedBefore);
  if (completedBefore !== undefined) result.completedBefore = completedBefore;
  const limit = optionalCount(operation, 'filter.limit', input.limit);
  if (limit !== undefined) result.limit = limit;
  return result;
}

/** Validates {@link JsPruneOptions}. */
export function toPruneOptions(operation: string, options: unknown): PruneOptions {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object' || Array.isArray(options))
    throw new InvalidArgumentError(operation, `${operation}: options must be an object`);
  const input = options as JsPruneOptions;
  const result: PruneOptions = {};
  const keepLast = optionalCount(operation, 'keepLast', input.keepLast);
  if (keepLast !== undefined) result.keepLast = keepLast;
  const completedBefore = optionalCount(operation, 'completedBefore', input.completedBefore);
  if (completedBefore !== undefined) result.completedBefore = completedBefore;
  return result;
}
