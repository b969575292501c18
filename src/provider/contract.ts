/**
 * The provider contract: everything the runtime and the client need from storage.
 *
 * Rules every provider keeps (docs/provider-contract.md):
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
  StartOrchestrationItem,
} from '../core/types';
import type { KvEntry, OrchestrationTurnAck } from '../core/turn-types';
import type { ProviderError } from './errors';

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
  /** How long the batch's oldest message had been visible when it was fetched (ms), if known. */
  waitedMs?: number;
}

/** Which activity tags a worker serves (docs/runtime.md, "The activity worker"). */
export type TagFilter =
  | { mode: 'defaultOnly' }
  | { mode: 'any' }
  | { mode: 'none' }
  | { mode: 'tags'; tags: string[] }
  | { mode: 'defaultAnd'; tags: string[] };

/**
 * Session side of an activity fetch (docs/runtime.md, "Sessions"). With it, items pinned to a
 * session owned by `ownerId`, or to an unowned or expired session, are eligible too, and fetching
 * one claims or refreshes its session until now + `lockTimeoutMs`. Without it only items without
 * a session are fetched (a runtime at its session capacity).
 */
export interface SessionFetchConfig {
  /** Worker identity owning the sessions (`workerNodeId`, or one per worker slot). */
  ownerId: string;
  /** Session lease length in ms. */
  lockTimeoutMs: number;
  /**
   * False at session capacity: only sessions `ownerId` already owns (and items without a session)
   * are served, no new session is claimed. Default true.
   */
  claimNewSessions?: boolean;
}

/** Inclusive range of Durox versions whose executions a runtime can run ('major.minor.patch'). */
export interface VersionRange {
  min: string;
  max: string;
}

/** Options of an activity fetch. */
export interface FetchWorkItemOptions {
  lockTimeoutMs: number;
  tagFilter: TagFilter;
  /** Null or absent: only items without a session. */
  session?: SessionFetchConfig | null;
}

/** Counts of a deletion (docs/runtime.md, "The Client"). */
export interface DeleteInstancesResult {
  instancesDeleted: number;
  executionsDeleted: number;
  eventsDeleted: number;
  queueMessagesDeleted: number;
}

/** Selects instances for bulk deletion or pruning; fields are ANDed. */
export interface InstanceFilter {
  /** Only these ids; an empty list selects nothing. */
  instanceIds?: string[];
  /** Only instances whose current execution completed before this time (epoch ms). */
  completedBefore?: number;
  /** At most this many instances (default DEFAULT_BULK_LIMIT, 1000). */
  limit?: number;
}

/** Which old executions pruning removes (the current one is always kept). */
export interface PruneOptions {
  /** Keep the newest N executions; absent, 0 and 1 all keep only the current one. */
  keepLast?: number;
  /** Only executions completed before this time (epoch ms). */
  completedBefore?: number;
}

export interface PruneResult {
  instancesProcessed: number;
  executionsDeleted: number;
  eventsDeleted: number;
}

/** An instance and all its descendants through parent links, root first. */
export interface InstanceTree {
  rootId: string;
  allIds: string[];
}

/** Per-instance statistics (current execution; merged KV view). */
export interface InstanceStats {
  historyEventCount: number;
  historySizeBytes: number;
  queuePendingCount: number;
  kvUserKeyCount: number;
  kvTotalValueBytes: number;
}

/** A locked activity work item. */
export interface WorkItemLease {
  item: ActivityExecuteItem;
  lockToken: string;
  /** Delivery count (1 on first delivery). */
  attemptCount: number;
  /** Name and version of the orchestration that scheduled it, or 'unknown'. */
  orchestrationName: string;
  orchestrationVersion: string;
  /**
   * True when the item's session was held by another owner whose session lock had lapsed: the
   * item was blocked by a departed owner, which no notification can announce.
   */
  sessionTakenOver?: boolean;
  /** How long the item had been visible when it was fetched (ms), if known. */
  waitedMs?: number;
}

/**
 * Eager dispatch from a turn's ack: which scheduled activities to lock for the caller. Only ask
 * for items an idle slot of the caller can run now; items pinned to a session cannot be claimed.
 */
export interface ActivityClaim {
  /** Indexes into the ack's `workerItems`. */
  workerItemIndexes: number[];
  /** Lock length of the claimed work items, in ms. */
  lockTimeoutMs: number;
}

/** Another work item of the same instance whose completion a {@link FusedTurn} also ran on (fan-in). */
export interface FusedCompletion {
  lockToken: string;
  completion: ActivityCompletionItem;
}

/**
 * A turn the caller ran in-process on an activity's completion (fused completion): replayed on
 * the history of execution `executionId` up to event `lastEventId`, with that completion as its
 * only message, or with it and those of `alsoCompleted` (in that order).
 */
export interface FusedTurn {
  executionId: number;
  /** Id of the last event of the history the turn was run on. */
  lastEventId: number;
  ack: OrchestrationTurnAck;
  /** Activities of `ack.workerItems` to lock for the caller, as {@link Provider.ackOrchestrationItem} does. */
  claim: ActivityClaim | null;
  /**
   * When the ready turn is not this one: `claim` hands it to the caller locked (it has a turn
   * worker for it), `release` queues and announces it as a plain ack would (the caller has none
   * free). Default `claim`.
   */
  fallback?: 'claim' | 'release';
  /**
   * Fan-in: other work items of the same instance, leased by the caller, whose completions the
   * turn also ran on. They are acknowledged by the same call, with the turn or, when it cannot be
   * committed, as plain acks queued before the fallback; one of them refused refuses the call.
   */
  alsoCompleted?: readonly FusedCompletion[];
}

/** The first turn of a new instance, run by the caller in-process on its start (fused start). */
export interface StartTurn {
  ack: OrchestrationTurnAck;
  /**
   * The store's clock the turn ran at, as the caller estimates it: the turn is committed only if
   * the store's clock agrees (else its events and timers would be dated by a stale estimate).
   */
  nowMs: number;
  /** Activities of `ack.workerItems` to lock for the caller, as {@link Provider.ackOrchestrationItem} does. */
  claim: ActivityClaim | null;
}

/**
 * What became of a {@link Provider.startOrchestrationWithTurn}: the turn committed, or the start
 * queued; `nowMs` is the store's clock during the call (to date the caller's next fused start).
 */
export type FusedStartOutcome = ({ fused: true; claimedWorkItems: WorkItemLease[] } | { fused: false }) & {
  nowMs: number;
};

/** One start of a {@link Provider.startOrchestrationsWithTurns} group, with the first turn run on it. */
export interface FusedStart {
  item: StartOrchestrationItem;
  turn: StartTurn;
}

/** Per start of a {@link Provider.startOrchestrationsWithTurns}: its outcome, or why it was refused. */
export type FusedStartElementOutcome = { ok: true; outcome: FusedStartOutcome } | { ok: false; error: ProviderError };

/** What became of a {@link Provider.ackWorkItemWithTurn}. */
export type FusedAckOutcome =
  { fused: true; claimedWorkItems: WorkItemLease[] } | { fused: false; claimedTurn: OrchestrationItem | null };

/** One element of {@link Provider.ackWorkItemsWithTurns}: the arguments of one {@link Provider.ackWorkItemWithTurn}. */
export interface FusedWorkItemAck {
  lockToken: string;
  completion: ActivityCompletionItem;
  claim: TurnClaim;
  turn: FusedTurn;
}

/** What became of one {@link FusedWorkItemAck}, in input order. */
export type FusedWorkItemAckOutcome = { ok: true; outcome: FusedAckOutcome } | { ok: false; error: ProviderError };

/** Eager dispatch from an activity's ack: lock the turn its completion makes ready. */
export interface TurnClaim {
  /** Lock length of the claimed instance, in ms. */
  lockTimeoutMs: number;
  /** Capability filter, as for {@link Provider.fetchOrchestrationItem}. */
  versionRange?: VersionRange | null;
}

/** One element of {@link Provider.ackOrchestrationItems}. */
export interface TurnAck {
  lockToken: string;
  ack: OrchestrationTurnAck;
  claim?: ActivityClaim | null;
}

/** What became of one {@link TurnAck}, in input order. */
export type TurnAckOutcome = { ok: true; claimedWorkItems: WorkItemLease[] } | { ok: false; error: ProviderError };

/** One element of {@link Provider.ackWorkItems}. */
export interface WorkItemAck {
  lockToken: string;
  completion: ActivityCompletionItem | null;
  claim?: TurnClaim | null;
}

/** What became of one {@link WorkItemAck}, in input order. */
export type WorkItemAckOutcome =
  { ok: true; claimedTurn: OrchestrationItem | null } | { ok: false; error: ProviderError };

/** Status of an instance as the client reports it. */
export interface InstanceStatus {
  /** `Pending`: the instance's start waits for a permit of its flow key (it does not exist yet). */
  status: 'NotFound' | 'Pending' | 'Running' | 'Completed' | 'Failed';
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
  /** Priority level 0..9 of the instance; absent from stores without priorities. */
  priority?: number;
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

/** The settings of a flow limit (see `Client.setFlowLimit`); absent or null: not limited that way. */
export interface FlowLimitSettings {
  /** Activities of the key queued or running at once; 0 pauses the key. */
  maxActive?: number | null;
  /** Dispatches per second on average (token bucket on the database clock). */
  perSecond?: number | null;
  /** Dispatches at once after an idle period (bucket size, >= 1; 1 when only perSecond is given). */
  burst?: number | null;
}

/** A flow limit and its use, as the store reports it. */
export interface FlowLimitInfo {
  flowKey: string;
  maxActive: number | null;
  perSecond: number | null;
  burst: number | null;
  /** Permits in use: activities of the key queued or running now, and instances started under it that have not ended. */
  active: number;
  /** Activities and instance starts waiting for a permit. */
  parked: number;
  /** The instances' share of `active`. */
  activeInstances: number;
  /** The instances' share of `parked` (their status is `Pending`). */
  parkedInstances: number;
  createdAtMs: number;
  updatedAtMs: number;
}

/** Filter and keyset position of one page of the instance list (times in epoch ms). */
export interface InstancePageQuery {
  /** Status of the current execution. */
  status?: ExecutionStatus;
  orchestrationName?: string;
  /** Inclusive lower bound of the creation time. */
  createdFromMs?: number;
  /** Exclusive upper bound of the creation time. */
  createdToMs?: number;
  /** `nextCursor` of the previous page. */
  cursor?: InstancePageCursor;
  /** Rows per page, 1..MAX_PAGE_ROWS (1000). */
  limit: number;
}

/** Position after the last row of a page: the list is ordered by (createdAt, instanceId) descending. */
export interface InstancePageCursor {
  createdAt: number;
  instanceId: string;
}

/** One row of the instance list. */
export interface InstanceSummary {
  instanceId: string;
  orchestrationName: string;
  orchestrationVersion: string;
  status: ExecutionStatus;
  currentExecutionId: number;
  createdAt: number;
  updatedAt: number;
  parentInstanceId: string | null;
  customStatus: string | null;
  /** First 500 characters of a Failed instance's error message, else null. */
  error: string | null;
  /** Priority level of the instance, 0 (the default) to 9. */
  priority: number;
}

/** One page of the instance list; `nextCursor` is null on the last page. */
export interface InstancePage {
  items: InstanceSummary[];
  nextCursor: InstancePageCursor | null;
}

/** Executions started, completed and failed in one time bucket starting at `bucketStart` (epoch ms). */
export interface ThroughputBucket {
  bucketStart: number;
  started: number;
  completed: number;
  failed: number;
}

/**
 * A push hint from the store (see {@link Provider.subscribeToWakeups}). Hints are never the source
 * of truth: receivers still fetch, so a lost or duplicated hint costs at most one empty fetch.
 * Delays are relative (`dueInMs` from the store's clock), so skewed local clocks do not matter.
 */
export type WakeupEvent =
  /**
   * The push channel is (again) connected: counts of what was already waiting, and when each
   * waiting delayed item becomes visible (ms from now, soonest first, at most 1,000 per queue).
   */
  | {
      kind: 'live';
      orchestratorReady: number;
      orchestratorDueInMs: number[];
      workerReady: number;
      workerDueInMs: number[];
    }
  /** The push channel is down: fall back to polling until the next `live`. */
  | { kind: 'lost'; error: Error }
  /** `ready` items became visible now; the earliest delayed one becomes visible in `dueInMs`. */
  | { kind: 'queue'; queue: 'orchestrator' | 'worker'; ready: number; dueInMs: number | null }
  /** The instance reached Completed/Failed or changed its custom status. */
  | { kind: 'status'; instanceId: string };

/** A registration made by {@link Provider.subscribeToWakeups}. */
export interface WakeupSubscription {
  /** True while the push channel is connected (hints are flowing). */
  readonly live: boolean;
  /** Stops delivery to this listener. Idempotent. */
  unsubscribe(): void;
}

/** Storage for a durable runtime. See the module comment for the rules. */
export interface Provider {
  /** Short provider name, e.g. `postgres` or `pglite`. */
  readonly name: string;

  // --- orchestration turns ------------------------------------------------------------------

  /**
   * Locks the instance of the best-ranked visible message whose instance is not locked (highest
   * priority level first, FIFO within a level, with the aging of README "Priorities"), locks all its
   * visible messages (incrementing their delivery counts) and returns them with the current
   * execution's history. Null means there is no eligible work (never "lost a race").
   */
  fetchOrchestrationItem(options: {
    lockTimeoutMs: number;
    /**
     * Capability filter: only instances whose current execution is unpinned or pinned to a Durox
     * version inside the range; others are skipped before any lock or history read.
     */
    versionRange?: VersionRange | null;
  }): Promise<OrchestrationItem | null>;

  /**
   * Like {@link fetchOrchestrationItem} for up to `maxItems` instances in one call, best first,
   * each batch under its own lock; an empty array when there is no eligible work.
   */
  fetchOrchestrationItems(options: {
    lockTimeoutMs: number;
    versionRange?: VersionRange | null;
    maxItems: number;
  }): Promise<OrchestrationItem[]>;

  /**
   * Commits a turn atomically and releases the lock; fails with `lock_lost` if the lock is gone.
   * With `claim`, the activities of `ack.workerItems` at `claim.workerItemIndexes` are queued
   * already locked for the caller (eager dispatch) and returned as leases, in the same call;
   * the others are queued and announced as usual. Without `claim` the result is empty.
   */
  ackOrchestrationItem(
    lockToken: string,
    ack: OrchestrationTurnAck,
    claim?: ActivityClaim | null,
  ): Promise<WorkItemLease[]>;

  /**
   * Commits several turns in one call (group commit). Each behaves as
   * {@link ackOrchestrationItem} and has its own outcome: one refused turn leaves the others
   * committed. Fails as a whole only when the call itself fails.
   */
  ackOrchestrationItems(acks: readonly TurnAck[]): Promise<TurnAckOutcome[]>;

  /**
   * Releases the lock without committing; the messages become visible again after `delayMs`.
   * `ignoreAttempt` gives back the delivery counted by the fetch (never below 0).
   */
  abandonOrchestrationItem(lockToken: string, options?: { delayMs?: number; ignoreAttempt?: boolean }): Promise<void>;

  /** Extends a held instance lock to now + `extendMs`; fails with `lock_lost` if it expired. */
  renewOrchestrationItemLock(lockToken: string, extendMs: number): Promise<void>;

  /** Enqueues a message for an orchestration; it becomes visible after `delayMs` (default 0). */
  enqueueOrchestratorWork(item: OrchestratorWorkItem, options?: { delayMs?: number }): Promise<void>;
  /**
   * Optional (eager start): enqueues a start and, when the instance is free now, locks its first
   * turn for the caller in the same call, returned as a fetch returns it; otherwise (null) the
   * start is queued and announced as {@link enqueueOrchestratorWork} does.
   */
  startOrchestrationClaimed?(item: StartOrchestrationItem, claim: TurnClaim): Promise<OrchestrationItem | null>;

  /**
   * Optional (fused start): starts an instance and commits its first turn in the same call. `turn`
   * was run by the caller on an empty history with `item` as its only message; it is committed
   * (as {@link ackOrchestrationItem} would, claiming `turn.claim`'s activities) only when the
   * instance does not exist, has no message queued, holds no lock and has no parked start, and the
   * store's clock agrees with `turn.nowMs`.
   * Otherwise the turn is dropped and the start queued and announced as
   * {@link enqueueOrchestratorWork} queues it. A start with a flowKey is refused
   * (`invalid_argument`): its permit is taken by the queueing path.
   */
  startOrchestrationWithTurn?(item: StartOrchestrationItem, turn: StartTurn): Promise<FusedStartOutcome>;

  /**
   * Optional (group commit of fused starts): several {@link startOrchestrationWithTurn}s in one
   * call, each handled exactly as alone with its own outcome; one refused leaves the others
   * committed. At most 100 per call.
   */
  startOrchestrationsWithTurns?(starts: readonly FusedStart[]): Promise<FusedStartElementOutcome[]>;

  // --- activities -----------------------------------------------------------------------------

  /** Enqueues an activity, visible at once. */
  enqueueWorkerWork(item: ActivityExecuteItem): Promise<void>;

  /**
   * Locks the best-ranked visible work item (as {@link fetchOrchestrationItem} ranks messages) that
   * matches the tag filter and the session rule.
   */
  fetchWorkItem(options: FetchWorkItemOptions): Promise<WorkItemLease | null>;

  /** Locks up to `maxItems` work items in one call, best first, each with its own lock token. */
  fetchWorkItems(options: FetchWorkItemOptions & { maxItems: number }): Promise<WorkItemLease[]>;

  /**
   * Optional. The fetches of several workers in one call (group fetch): each request is served in
   * order exactly as {@link fetchWorkItem} serves it alone (its own tag filter, session rule and
   * lock token), and a later request never gets an item an earlier one got. Returns one lease or
   * null per request, in request order.
   */
  fetchWorkItemGroup?(requests: readonly FetchWorkItemOptions[]): Promise<Array<WorkItemLease | null>>;

  /**
   * Extends the sessions owned by `ownerIds` that are still locked and were active within
   * `idleTimeoutMs` to now + `extendMs`; returns how many. Idle sessions are left to lapse.
   */
  renewSessionLocks(ownerIds: string[], extendMs: number, idleTimeoutMs: number): Promise<number>;

  /** Removes expired sessions no work item refers to; returns how many. */
  cleanupOrphanedSessions(): Promise<number>;

  /**
   * Deletes the locked work item and, when given, enqueues its completion, atomically. Fails with
   * `lock_lost` when the item was withdrawn (cancelled), re-delivered or its lock expired.
   * With `claim` and a completion, the turn the completion makes ready is locked for the caller
   * in the same call when its instance is free now (eager dispatch) and returned; otherwise null.
   */
  ackWorkItem(
    lockToken: string,
    completion: ActivityCompletionItem | null,
    claim?: TurnClaim | null,
  ): Promise<OrchestrationItem | null>;

  /**
   * Acknowledges several work items in one call (group commit). Each behaves as
   * {@link ackWorkItem} and has its own outcome: one refused item (lock lost, invalid) leaves the
   * others committed. Fails as a whole only when the call itself fails.
   */
  ackWorkItems(acks: readonly WorkItemAck[]): Promise<WorkItemAckOutcome[]>;

  /**
   * Optional (fused completion): acknowledges a work item with its completion as
   * {@link ackWorkItem} with `claim` does and, when the turn it makes ready is exactly `turn` (the
   * completion is the instance's only message and no turn was committed since `turn.lastEventId`),
   * commits that turn in the same call as {@link ackOrchestrationItem} would, claiming
   * `turn.claim`'s activities. Otherwise the claimed turn (or null) is returned for the caller to
   * run, or with `turn.fallback` `release` the turn is queued and announced and null returned.
   * `turn.ack` may send messages only to its own instance.
   */
  ackWorkItemWithTurn?(
    lockToken: string,
    completion: ActivityCompletionItem,
    claim: TurnClaim,
    turn: FusedTurn,
  ): Promise<FusedAckOutcome>;

  /**
   * Optional, with {@link ackWorkItemWithTurn}: several fused completions in one call (group
   * commit). Each behaves as {@link ackWorkItemWithTurn} and has its own outcome: one refused
   * (lock lost, invalid) leaves the others committed. Fails as a whole only when the call itself
   * fails.
   */
  ackWorkItemsWithTurns?(acks: readonly FusedWorkItemAck[]): Promise<FusedWorkItemAckOutcome[]>;

  /**
   * Optional: whether the store's recent calls spend their time on the network rather than in the
   * database (a distant server). The runtime's call batchers then let more calls out at once:
   * waiting to share a call saves a near database CPU, but only adds waits over a long link.
   */
  callsAreSlow?(): boolean;

  /**
   * Optional: whether calls sent at once run at once (a server), rather than one after the other
   * (an embedded engine in this process). The runtime keeps more group calls out at once only
   * where they run side by side; elsewhere that would only make the groups smaller.
   */
  callsRunInParallel?(): boolean;

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
  /** One page of instances, newest first (optional: providers without it cannot serve operators' lists). */
  listInstancesPage?(query: InstancePageQuery): Promise<InstancePage>;
  /** Executions started/completed/failed per bucket of `bucketMs` since `sinceMs` (optional). */
  getThroughput?(sinceMs: number, bucketMs: number): Promise<ThroughputBucket[]>;

  // --- flow control (optional) -----------------------------------------------------------------

  /** Creates or changes the limit of `flowKey`; parked activities a raised limit admits are queued at once. */
  setFlowLimit?(flowKey: string, settings: FlowLimitSettings): Promise<FlowLimitInfo>;
  /** Every flow limit with its active and parked counts, by key. */
  getFlowLimits?(): Promise<FlowLimitInfo[]>;
  /** Removes a limit (its parked activities are queued at once); false when there was none. */
  deleteFlowLimit?(flowKey: string): Promise<boolean>;

  // --- push wake-ups (optional) ----------------------------------------------------------------

  /**
   * Optional: delivers {@link WakeupEvent}s so idle dispatchers and waiting clients sleep instead
   * of polling. Providers without it are polled at `dispatcherPollIntervalMs`.
   */
  subscribeToWakeups?(listener: (event: WakeupEvent) => void): WakeupSubscription;

  /**
   * Deletes a root instance with its sub-orchestrations, atomically. Fails with `not_found`, with
   * `invalid_argument` for a sub-orchestration, and (unless `force`) with `conflict` when any
   * instance of the tree is running.
   */
  deleteInstance(instanceId: string, options?: { force?: boolean }): Promise<DeleteInstancesResult>;
  /** Deletes exactly these instances atomically; `conflict` for a running one (unless `force`) or an orphaned child. */
  deleteInstances(instanceIds: string[], options?: { force?: boolean }): Promise<DeleteInstancesResult>;
  /** Deletes terminal root instances matching the filter, each with its tree, in one atomic call. */
  deleteInstanceBulk(filter?: InstanceFilter): Promise<DeleteInstancesResult>;
  /** The instance and its descendants; `not_found` for an unknown instance. */
  getInstanceTree(instanceId: string): Promise<InstanceTree>;
  /** Removes old executions of an instance; `not_found` for an unknown instance. */
  pruneExecutions(instanceId: string, options?: PruneOptions): Promise<PruneResult>;
  /** Prunes every instance matching the filter in one call. */
  pruneExecutionsBulk(filter?: InstanceFilter, options?: PruneOptions): Promise<PruneResult>;
  /** Null for an unknown instance. */
  getInstanceStats(instanceId: string): Promise<InstanceStats | null>;

  /** Releases connections. The provider is unusable afterwards. */
  close(): Promise<void>;
}
