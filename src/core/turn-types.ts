/**
 * What one orchestration turn produces: the effects a provider commits atomically. Defined in
 * core because the replay engine builds them; the provider contract re-exports them.
 */
import type { ActivityExecuteItem, ExecutionStatus, HistoryEvent, OrchestratorWorkItem } from './types';

/** One key of an instance's key-value store as of the end of its previous execution. */
export interface KvEntry {
  value: string;
  lastUpdatedAtMs: number;
}

/** What an orchestration turn decided about its execution. */
export interface ExecutionMetadata {
  /** New status of the execution; omitted when the turn leaves it Running. */
  status?: ExecutionStatus;
  /** Result, error display message, or continue-as-new input. */
  output?: string;
  orchestrationName: string;
  orchestrationVersion: string;
  parentInstanceId?: string | null;
  /**
   * Priority level of the instance (0..9, from its OrchestrationStarted); the store keeps it to
   * rank the messages the instance receives. Omitted: the stored level stays.
   */
  priority?: number;
}

/** Identity of a scheduled activity whose queued or running work item must be withdrawn. */
export interface ScheduledActivityId {
  instance: string;
  executionId: number;
  activityId: number;
}

/** Everything one orchestration turn commits. */
export interface OrchestrationTurnAck {
  instanceId: string;
  executionId: number;
  /** New history events, in event-id order; custom-status and key-value events are projected too. */
  historyDelta: HistoryEvent[];
  /** Activities to run. */
  workerItems: ActivityExecuteItem[];
  /** Messages for orchestrations (this one, children, parent); TimerFired becomes visible at fireAtMs. */
  orchestratorItems: OrchestratorWorkItem[];
  metadata: ExecutionMetadata;
  /** Activities to withdraw from the worker queue, even while a worker holds them (lock stealing). */
  cancelledActivities: ScheduledActivityId[];
}
