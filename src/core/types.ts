/**
 * The durable vocabulary of Durox: work items (queue messages), history events and error
 * details. These are the shapes stored by every provider (as JSON) and exchanged between the
 * replay engine, the runtime and the client. They carry no behaviour and import nothing.
 *
 * All payloads (`input`, `result`, `data`, `output`) are opaque strings; the public API
 * JSON-encodes user values into them.
 */

/** Version stamped into every history event written by this build (capability pinning). */
export const DUROX_VERSION = '0.1.0';

// ---------------------------------------------------------------------------------------------
// Error details
// ---------------------------------------------------------------------------------------------

/** Where a poison message came from. */
export type PoisonMessageType =
  | { kind: 'Orchestration'; instance: string; executionId: number }
  | { kind: 'Activity'; instance: string; executionId: number; activityName: string; activityId: number }
  | { kind: 'FailedDeserialization'; instance: string; executionId: number; error: string };

/**
 * Why an activity, sub-orchestration or orchestration failed. Only `application` errors are
 * visible to orchestration code; the other categories fail the orchestration outright.
 */
export type ErrorDetails =
  | {
      category: 'application';
      kind: 'ActivityFailed' | 'OrchestrationFailed' | 'Panicked' | 'Cancelled';
      message: string;
      retryable: boolean;
      /** Only for `Cancelled`. */
      reason?: string;
    }
  | { category: 'configuration'; kind: 'Nondeterminism'; resource: string; message: string | null }
  | { category: 'infrastructure'; operation: string; message: string; retryable: boolean }
  | {
      category: 'poison';
      attemptCount: number;
      maxAttempts: number;
      messageType: PoisonMessageType;
      message: string;
    };

// ---------------------------------------------------------------------------------------------
// Work items
// ---------------------------------------------------------------------------------------------

export interface StartOrchestrationItem {
  type: 'StartOrchestration';
  instance: string;
  orchestration: string;
  input: string;
  /** Exact version requested, or null for the latest registered one. */
  version: string | null;
  parentInstance: string | null;
  /** Event id of the parent's SubOrchestrationScheduled. */
  parentId: number | null;
  parentExecutionId: number | null;
  executionId: number;
  /**
   * Flow key whose permit the instance holds from its start until it ends (client start option
   * `flowKey`); absent for instances started without one.
   */
  flowKey?: string;
  /** Priority level of the new instance (0..9, core/priority.ts); absent = 0. */
  priority?: number;
}

export interface ContinueAsNewItem {
  type: 'ContinueAsNew';
  instance: string;
  orchestration: string;
  input: string;
  version: string | null;
  /** Unconsumed queue messages carried into the next execution, as [queueName, data]. */
  carryForwardEvents: Array<[string, string]>;
  initialCustomStatus: string | null;
  /** Priority level of the instance, kept by the next execution; absent = 0. */
  priority?: number;
}

export interface ActivityExecuteItem {
  type: 'ActivityExecute';
  instance: string;
  executionId: number;
  /** Event id of the ActivityScheduled event. */
  id: number;
  name: string;
  input: string;
  sessionId: string | null;
  tag: string | null;
  /** Flow-control key when set explicitly (`withFlowKey`); the store uses `activity:<name>` otherwise. */
  flowKey?: string;
  /** Priority level (its own from `withPriority`, else its instance's); absent = 0. */
  priority?: number;
}

export interface ActivityCompletedItem {
  type: 'ActivityCompleted';
  instance: string;
  executionId: number;
  id: number;
  result: string;
}

export interface ActivityFailedItem {
  type: 'ActivityFailed';
  instance: string;
  executionId: number;
  id: number;
  details: ErrorDetails;
}

export interface TimerFiredItem {
  type: 'TimerFired';
  instance: string;
  executionId: number;
  id: number;
  /** Database-clock epoch ms at which the item becomes visible. */
  fireAtMs: number;
}

export interface ExternalRaisedItem {
  type: 'ExternalRaised';
  instance: string;
  name: string;
  data: string;
}

export interface QueueMessageItem {
  type: 'QueueMessage';
  instance: string;
  name: string;
  data: string;
}

export interface SubOrchCompletedItem {
  type: 'SubOrchCompleted';
  parentInstance: string;
  parentExecutionId: number;
  parentId: number;
  result: string;
}

export interface SubOrchFailedItem {
  type: 'SubOrchFailed';
  parentInstance: string;
  parentExecutionId: number;
  parentId: number;
  details: ErrorDetails;
}

export interface CancelInstanceItem {
  type: 'CancelInstance';
  instance: string;
  reason: string;
}

/** A message on the orchestrator queue (everything except ActivityExecute). */
export type OrchestratorWorkItem =
  | StartOrchestrationItem
  | ContinueAsNewItem
  | ActivityCompletedItem
  | ActivityFailedItem
  | TimerFiredItem
  | ExternalRaisedItem
  | QueueMessageItem
  | SubOrchCompletedItem
  | SubOrchFailedItem
  | CancelInstanceItem;

/** The completion an activity worker sends back to its orchestration. */
export type ActivityCompletionItem = ActivityCompletedItem | ActivityFailedItem;

export type WorkItem = OrchestratorWorkItem | ActivityExecuteItem;

/** The instance whose orchestrator queue receives this item (sub-orch results go to the parent). */
export function targetInstanceOf(item: OrchestratorWorkItem): string {
  return item.type === 'SubOrchCompleted' || item.type === 'SubOrchFailed' ? item.parentInstance : item.instance;
}

// ---------------------------------------------------------------------------------------------
// History events
// ---------------------------------------------------------------------------------------------

/** Fields common to every history event. */
export interface HistoryEventBase {
  /** Position in the execution's history, from 1, assigned by the runtime. */
  eventId: number;
  /** For completions and breadcrumbs: the event id of the schedule they answer. */
  sourceEventId?: number;
  instanceId: string;
  executionId: number;
  timestampMs: number;
  /** Durox version that wrote the event. */
  duroxVersion: string;
}

/**
 * What an event that starts another instance records: a child (`SubOrchestrationScheduled`) or a
 * detached instance (`OrchestrationChained`).
 */
export interface InstanceStartFields {
  name: string;
  instance: string;
  input: string;
  version?: string | null;
  /** Flow key the started instance runs under (`withFlowKey`); the permit is that instance's. */
  flowKey?: string;
  /** Priority level given with `withPriority`; absent = the starting instance's. */
  priority?: number;
}

/** The kind-specific part of a history event; `kind` is the discriminator. */
export type HistoryEventData =
  | {
      kind: 'OrchestrationStarted';
      name: string;
      version: string;
      input: string;
      parentInstance?: string;
      parentId?: number;
      parentExecutionId?: number;
      carryForwardEvents?: Array<[string, string]>;
      initialCustomStatus?: string | null;
      /** Priority level of the instance (absent = 0); inherited by the work it schedules. */
      priority?: number;
    }
  | { kind: 'OrchestrationCompleted'; output: string }
  | { kind: 'OrchestrationFailed'; details: ErrorDetails }
  | { kind: 'OrchestrationContinuedAsNew'; input: string }
  | { kind: 'OrchestrationCancelRequested'; reason: string }
  | {
      kind: 'ActivityScheduled';
      name: string;
      input: string;
      sessionId?: string;
      tag?: string;
      flowKey?: string;
      /** Priority level given with `withPriority`; absent = the instance's. */
      priority?: number;
    }
  | { kind: 'ActivityCompleted'; result: string }
  | { kind: 'ActivityFailed'; details: ErrorDetails }
  | { kind: 'ActivityCancelRequested'; reason: string }
  | { kind: 'TimerCreated'; fireAtMs: number }
  | { kind: 'TimerFired'; fireAtMs: number }
  | { kind: 'ExternalSubscribed'; name: string }
  | { kind: 'ExternalEvent'; name: string; data: string }
  | { kind: 'ExternalSubscribedCancelled'; reason: string }
  | { kind: 'QueueSubscribed'; name: string }
  | { kind: 'QueueEventDelivered'; name: string; data: string }
  | { kind: 'QueueSubscriptionCancelled'; reason: string }
  | ({ kind: 'SubOrchestrationScheduled' } & InstanceStartFields)
  | { kind: 'SubOrchestrationCompleted'; result: string }
  | { kind: 'SubOrchestrationFailed'; details: ErrorDetails }
  | { kind: 'SubOrchestrationCancelRequested'; reason: string }
  | ({ kind: 'OrchestrationChained' } & InstanceStartFields)
  | { kind: 'CustomStatusUpdated'; status: string | null }
  | { kind: 'KeyValueSet'; key: string; value: string; lastUpdatedAtMs: number }
  | { kind: 'KeyValueCleared'; key: string }
  | { kind: 'KeyValuesCleared' };

export type HistoryEvent = HistoryEventBase & HistoryEventData;

export type HistoryEventKind = HistoryEventData['kind'];

/** History event of one specific kind. */
export type HistoryEventOf<K extends HistoryEventKind> = HistoryEventBase & Extract<HistoryEventData, { kind: K }>;

/** Events that end an execution. */
export function isTerminalEvent(event: HistoryEvent): boolean {
  return (
    event.kind === 'OrchestrationCompleted' ||
    event.kind === 'OrchestrationFailed' ||
    event.kind === 'OrchestrationContinuedAsNew'
  );
}

/** Status of an execution as stored by providers. */
export type ExecutionStatus = 'Running' | 'Completed' | 'Failed' | 'ContinuedAsNew';
