/**
 * Decodes what the fetch procedures (and the acks that claim work) return: a
 * locked orchestration batch and activity leases, and an instance status. Shared so a claimed
 * item is exactly what a fetch would have returned, and a status committed by an ack exactly
 * what get_instance_status returns.
 */
import type { ActivityExecuteItem, ErrorDetails, HistoryEvent } from '../core/types';
import type { InstanceStatus, KvEntry, OrchestrationItem, WorkItemLease } from '../provider/contract';
import { toProviderError } from './error-mapping';
import {
  asRecord,
  decodeMessages,
  historyProblem,
  numberField,
  optionalNumberField,
  optionalStringField,
} from './row-decoding';

/** A locked batch as fetch_orchestration_item / lock_orchestration_batch return it, or null. */
export function decodeOrchestrationItem(value: unknown, operation: string): OrchestrationItem | null {
  const record = asRecord(value);
  if (record === null) return null;
  const instanceId = String(record.instanceId);
  const messages = decodeMessages(record.messages, operation, instanceId);

  let history: HistoryEvent[] = [];
  let historyError = optionalStringField(record, 'historyError') ?? undefined;
  if (historyError === undefined) {
    historyError = historyProblem(record.history);
    if (historyError === undefined) history = record.history as HistoryEvent[];
    else historyError = `stored history is corrupted: ${historyError}`;
  }

  let orchestrationName = optionalStringField(record, 'orchestrationName');
  let orchestrationVersion = optionalStringField(record, 'orchestrationVersion');
  let executionId = optionalNumberField(record, 'executionId');
  if (orchestrationName === null) {
    // New instance: the procedure only locks it when the batch holds its start message.
    const start = messages.find((m) => m.type === 'StartOrchestration' || m.type === 'ContinueAsNew');
    if (start === undefined || (start.type !== 'StartOrchestration' && start.type !== 'ContinueAsNew')) {
      throw toProviderError(new Error('fetched a new instance without a start message'), operation, instanceId);
    }
    orchestrationName = start.orchestration;
    orchestrationVersion = start.version;
    executionId = start.type === 'StartOrchestration' ? start.executionId : 1;
  }

  const item: OrchestrationItem = {
    instanceId,
    orchestrationName,
    orchestrationVersion,
    executionId: executionId ?? 1,
    history,
    messages,
    lockToken: String(record.lockToken),
    attemptCount: numberField(record, 'attemptCount'),
    kvSnapshot: (asRecord(record.kvSnapshot) ?? {}) as Record<string, KvEntry>,
    customStatus: optionalStringField(record, 'customStatus'),
    nowMs: numberField(record, 'nowMs'),
  };
  if (historyError !== undefined) item.historyError = historyError;
  const waitedMs = optionalNumberField(record, 'waitedMs');
  if (waitedMs !== null) item.waitedMs = waitedMs;
  return item;
}

/** One activity lease as fetch_work_item returns it. */
export function decodeWorkLease(row: unknown, operation: string): WorkItemLease {
  const record = asRecord(row);
  const item = asRecord(record?.workItem);
  if (record === null || item === null || item.type !== 'ActivityExecute') {
    throw toProviderError(new Error('stored work item is corrupted'), operation);
  }
  const waitedMs = optionalNumberField(record, 'waitedMs');
  return {
    item: item as unknown as ActivityExecuteItem,
    lockToken: String(record.lockToken),
    attemptCount: numberField(record, 'attemptCount'),
    orchestrationName: String(record.orchestrationName),
    orchestrationVersion: String(record.orchestrationVersion),
    ...(record.sessionTakenOver === true ? { sessionTakenOver: true } : {}),
    ...(waitedMs !== null ? { waitedMs } : {}),
  };
}

/** An array of leases (fetch_work_item, or the claimedWorkItems of an ack). */
export function decodeWorkLeases(value: unknown, operation: string): WorkItemLease[] {
  if (!Array.isArray(value)) throw toProviderError(new Error(`${operation} returned no lease array`), operation);
  return value.map((row) => decodeWorkLease(row, operation));
}

/** A group fetch's answer: one lease or null per request, `count` of them in request order. */
export function decodeWorkLeaseGroup(value: unknown, count: number, operation: string): Array<WorkItemLease | null> {
  if (!Array.isArray(value) || value.length !== count)
    throw toProviderError(new Error(`${operation} returned no array of ${count} leases`), operation);
  return value.map((row) => (row === null ? null : decodeWorkLease(row, operation)));
}

/** An instance status as get_instance_status returns it (also an ack's committedStatus). */
export function decodeInstanceStatus(record: Record<string, unknown>): InstanceStatus {
  const status: InstanceStatus = {
    status: record.status as InstanceStatus['status'],
    customStatus: optionalStringField(record, 'customStatus'),
    customStatusVersion: numberField(record, 'customStatusVersion'),
  };
  if (status.status === 'Completed') status.output = optionalStringField(record, 'output') ?? '';
  if (status.status === 'Failed') {
    status.error = optionalStringField(record, 'error') ?? '';
    const details = asRecord(record.failureDetails);
    if (details !== null) status.errorDetails = details as unknown as ErrorDetails;
  }
  return status;
}
