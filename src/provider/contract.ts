/**
 * The provider contract: everything the runtime and the client need from storage.
 *
 * Rules every provider keeps (postgres-provider.md section 3):
 * - The provider never invents execution ids or event ids; it stores what the runtime passes.
 * - An orchestration turn is fetched under an instance lock and acknowledged atomically: either
 *   every effect of `ackOrchestrationItem` is stored and the lock released, or nothing is stored
 *   and the lock stays as it was.
 * - Time (lock expiry, visibility of delayed items) is the store's own clock, so workers with
 *   skewed clocks agree. `nowMs` in fetch results reports that clock to the runtime.
 * - Failures are {@link ProviderError}s naming the operation and the instance.
 */
import type {
  ActivityCompletionItem,
  ActivityExecuteItem,
  ErrorDetails,
  ExecutionStatus,
  HistoryEvent,
  OrchestratorWorkItem,
} from '../core/types';
import type { KvEntry, OrchestrationTurnAck } from '../core/turn-types';

export type { ExecutionMetadata, KvEntry, OrchestrationTurnAck, ScheduledActivityId } from '../core/turn-types';

/** A locked batch of messages for one instance, with the history needed to replay it. */
export interface OrchestrationItem {
  instanceId: string;
  /** From the instance row, or from the start message when the instance is new. */
  orchestrationName: string;
  /** Pinned version of the current execution; null when not yet known. */
  orchestrationVersion: string | null;
  /** Current execution id (1 for a new instance). */
  executionId: number;
  /** Events of the current execution, ordered by event id. Empty when `historyError` is set. */
  history: HistoryEvent[];
  /** Set when the stored history could not be decoded; the lock is held all the same. */
  historyError?: string;
  /** Every visible message of the instance at fetch time, in enqueue order. */
  messages: OrchestratorWorkItem[];
  lockToken: string;
  /** Highest delivery count over the batch (1 on first delivery). */
  attemptCount: number;
  /** Key-value store as of the end of the previous execution (never this execution's writes). */
  kvSnapshot: Record<string, KvEntry>;
  /** Custom status carried by the instance row (null when never set). */
  customStatus: string | null;
  /** The store's clock at fetch time (epoch ms). */
  nowMs: number;
}

/** Which activity tags a worker serves (runtime-and-api.md section 1.8). */
export type TagFilter =
  | { mode: 'defaultOnly' }
  | { mode: 'any' }
  | { mode: 'none' }
  | { mode: 'tags'; tags: string[] }
  | { mode: 'defaultAnd'; tags: string[] };

/** A locked activity work item. */
export interface WorkItemLease {
  item: ActivityExecuteItem;
  lockToken: string;
  /** Delivery count (1 on first delivery). */
  attemptCount: number;
  /** Name and version of the orchestration that scheduled it, or 'unknown'. */
  orchestrationName: string;
  orchestrationVersion: string;
}

/** Status of an instance as the client reports it. */
export interface InstanceStatus {
  status: 'NotFound' | 'Running' | 'Completed' | 'Failed';
  /** Output of a Completed instance. */
  output?: string;
  /** Error details of a Failed instance. */
  errorDetails?: ErrorDetails;
  /** Display message of a Failed instance. */
  error?: string;
  customStatus: string | null;
  customStatusVersion: number;
}

/** Metadata of an instance (times in epoch ms). */
export interface InstanceInfo {
  instanceId: string;
  orchestrationName: string;
  orchestrationVersion: string;
  currentExecutionId: number;
  status: ExecutionStatus;
  output: string | null;
  createdAt: number;
  updatedAt: number;
  parentInstanceId: string | null;
}

/** Metadata of one execution (times in epoch ms). */
export interface ExecutionInfo {
  executionId: number;
  status: ExecutionStatus;
  output: string | null;
  startedAt: number;
  completedAt: number | null;
  eventCount: number;
}

export interface SystemMetrics {
  totalInstances: number;
  totalExecutions: number;
  runningInstances: number;
  completedInstances: number;
  failedInstances: number;
  totalEvents: number;
}

export interface QueueDepths {
  /** Visible, unlocked orchestrator messages. */
  orchestratorQueue: number;
  /** Visible, unlocked activity work items. */
  workerQueue: number;
  /** Always 0: timers are delayed orchestrator messages. */
  timerQueue: number;
}

/** Storage for a durable runtime. See the module comment for the rules. */
export interface Provider {
  /** Short provider name, e.g. `postgres` or `pglite`. */
  readonly name: string;

  // --- orchestration turns ------------------------------------------------------------------

  /**
   * Locks the instance of the oldest visible message whose instance is not locked, locks all its
   * visible messages (incrementing their delivery counts) and returns them with the current
   * execution's history. Null means there is no eligible work (never "lost a race").
   */
  fetchOrchestrationItem(options: { lockTimeoutMs: number }): Promise<OrchestrationItem | null>;

  /** Commits a turn atomically and releases the lock; fails with `lock_lost` if the lock is gone. */
  ackOrchestrationItem(lockToken: string, ack: OrchestrationTurnAck): Promise<void>;

  /**
   * Releases the lock without committing; the messages become visible again after `delayMs`.
   * `ignoreAttempt` gives back the delivery counted by the fetch (never below 0).
   */
  abandonOrchestrationItem(lockToken: string, options?: { delayMs?: number; ignoreAttempt?: boolean }): Promise<void>;

  /** Extends a held instance lock to now + `extendMs`; fails with `lock_lost` if it expired. */
  renewOrchestrationItemLock(lockToken: string, extendMs: number): Promise<void>;

  /** Enqueues a message for an orchestration; it becomes visible after `delayMs` (default 0). */
  enqueueOrchestratorWork(item: OrchestratorWorkItem, options?: { delayMs?: number }): Promise<void>;

  // --- activities -----------------------------------------------------------------------------

  /** Enqueues an activity, visible at once. */
  enqueueWorkerWork(item: ActivityExecuteItem): Promise<void>;

  /** Locks the oldest visible work item that matches the tag filter. */
  fetchWorkItem(options: { lockTimeoutMs: number; tagFilter: TagFilter }): Promise<WorkItemLease | null>;

  /**
   * Deletes the locked work item and, when given, enqueues its completion, atomically. Fails with
   * `lock_lost` when the item was withdrawn (cancelled), re-delivered or its lock expired.
   */
  ackWorkItem(lockToken: string, completion: ActivityCompletionItem | null): Promise<void>;

  /** Extends a work-item lock to now + `extendMs`; `lock_lost` tells the worker it was cancelled. */
  renewWorkItemLock(lockToken: string, extendMs: number): Promise<void>;

  /** Unlocks a work item; visible again after `delayMs` (default 0). */
  abandonWorkItem(lockToken: string, options?: { delayMs?: number; ignoreAttempt?: boolean }): Promise<void>;

  // --- reads ----------------------------------------------------------------------------------

  /** History of an execution (default: the latest), ordered by event id; empty for unknown instances. */
  readHistory(instanceId: string, executionId?: number): Promise<HistoryEvent[]>;

  /** Status of the latest execution with the instance's custom status. */
  getInstanceStatus(instanceId: string): Promise<InstanceStatus>;

  /** Current value of a key (this execution's writes included); null when absent. */
  getKvValue(instanceId: string, key: string): Promise<string | null>;

  /** All current keys and values of an instance. */
  getKvAllValues(instanceId: string): Promise<Record<string, string>>;

  // --- management -----------------------------------------------------------------------------

  /** All instance ids, newest first; with a status, only those whose current execution has it. */
  listInstances(options?: { status?: ExecutionStatus }): Promise<string[]>;
  /** Execution ids of an instance, ascending (empty for an unknown instance). */
  listExecutions(instanceId: string): Promise<number[]>;
  /** Null for an unknown instance. */
  getInstanceInfo(instanceId: string): Promise<InstanceInfo | null>;
  /** Null for an unknown instance or execution. */
  getExecutionInfo(instanceId: string, executionId: number): Promise<ExecutionInfo | null>;
  getSystemMetrics(): Promise<SystemMetrics>;
  getQueueDepths(): Promise<QueueDepths>;

  /** Releases connections. The provider is unusable afterwards. */
  close(): Promise<void>;
}
