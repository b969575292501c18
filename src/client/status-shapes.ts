/**
 * The objects the Client returns, with duroxide's field presence (docs/runtime.md,
 * "The Client"): optional fields are absent, not null, when unset.
 */
import type { ExecutionInfo, InstanceInfo, InstanceStatus } from '../provider/contract';
import { parseLenient } from './validation';

/** Status of an orchestration instance. */
export interface JsOrchestrationStatus {
  /** `Pending`: started with a flow key whose permits are all held; it starts when one frees. */
  status: 'NotFound' | 'Pending' | 'Running' | 'Completed' | 'Failed';
  /** Output (JSON text, or its parsed value where the method says so) of a Completed instance. */
  output?: string;
  /** Error display message of a Failed instance. */
  error?: string;
  customStatus?: string;
  customStatusVersion: number;
}

/** Counts over the whole store. */
export interface JsSystemMetrics {
  totalInstances: number;
  totalExecutions: number;
  runningInstances: number;
  completedInstances: number;
  failedInstances: number;
  totalEvents: number;
}

/** Visible, unlocked queue messages. `timerQueue` is always 0 (timers are delayed messages). */
export interface JsQueueDepths {
  orchestratorQueue: number;
  workerQueue: number;
  timerQueue: number;
}

/** Metadata of an instance; times are epoch ms. */
export interface JsInstanceInfo {
  instanceId: string;
  orchestrationName: string;
  orchestrationVersion: string;
  currentExecutionId: number;
  status: string;
  output?: string;
  createdAt: number;
  updatedAt: number;
  parentInstanceId?: string;
  /** Priority level of the instance, when above the default 0 (a Durox addition). */
  priority?: number;
}

/** Metadata of one execution; times are epoch ms. */
export interface JsExecutionInfo {
  executionId: number;
  status: string;
  output?: string;
  startedAt: number;
  completedAt?: number;
  eventCount: number;
}

/** Builds the status object; `parseOutput` applies the parse some Client methods do. */
export function toJsStatus(status: InstanceStatus, parseOutput: boolean): JsOrchestrationStatus {
  const result: JsOrchestrationStatus = { status: status.status, customStatusVersion: status.customStatusVersion };
  if (status.status === 'Completed' && status.output !== undefined) {
    result.output = parseOutput ? parsedWhenTruthy(status.output) : status.output;
  }
  if (status.status === 'Failed' && status.error !== undefined) result.error = status.error;
  if (status.customStatus !== null) result.customStatus = status.customStatus;
  return result;
}

/** duroxide parses outputs only when they are non-empty, keeping the raw text on parse errors. */
function parsedWhenTruthy(output: string): string {
  // The declared type stays string as in duroxide's typings; the runtime value is the parsed JSON.
  return (output ? parseLenient(output) : output) as string;
}

export function toJsInstanceInfo(info: InstanceInfo): JsInstanceInfo {
  const result: JsInstanceInfo = {
    instanceId: info.instanceId,
    orchestrationName: info.orchestrationName,
    orchestrationVersion: info.orchestrationVersion,
    currentExecutionId: info.currentExecutionId,
    status: info.status,
    createdAt: info.createdAt,
    updatedAt: info.updatedAt,
  };
  if (info.output !== null) result.output = parsedWhenTruthy(info.output);
  if (info.parentInstanceId !== null) result.parentInstanceId = info.parentInstanceId;
  if (info.priority !== undefined && info.priority > 0) result.priority = info.priority;
  return result;
}

export function toJsExecutionInfo(info: ExecutionInfo): JsExecutionInfo {
  const result: JsExecutionInfo = {
    executionId: info.executionId,
    status: info.status,
    startedAt: info.startedAt,
    eventCount: info.eventCount,
  };
  if (info.output !== null) result.output = parsedWhenTruthy(info.output);
  if (info.completedAt !== null) result.completedAt = info.completedAt;
  return result;
}

/** Size statistics of one instance (`getOrchestrationStats` in duroxide). */
export interface JsSystemStats {
  historyEventCount: number;
  historySizeBytes: number;
  queuePendingCount: number;
  kvUserKeyCount: number;
  kvTotalValueBytes: number;
}
