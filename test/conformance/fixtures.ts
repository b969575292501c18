/** Builders and assertions shared by the conformance groups. */
import assert from 'node:assert/strict';
import {
  DUROX_VERSION,
  type ActivityExecuteItem,
  type HistoryEvent,
  type HistoryEventData,
  type StartOrchestrationItem,
} from '../../src/core/types';
import type { OrchestrationTurnAck } from '../../src/core/turn-types';
import type { OrchestrationItem, Provider } from '../../src/provider/contract';
import { ProviderError, type ProviderErrorCode } from '../../src/provider/errors';

/** Lock timeout used by the tests; expiry is simulated with the clock hook, never slept. */
export const LOCK_MS = 30_000;

/** A history event of the given kind. */
export function event(instanceId: string, executionId: number, eventId: number, data: HistoryEventData): HistoryEvent {
  return { eventId, instanceId, executionId, timestampMs: 1_000, duroxVersion: DUROX_VERSION, ...data };
}

/** The OrchestrationStarted event of an execution. */
export function started(instanceId: string, executionId = 1, name = 'Orch'): HistoryEvent {
  return event(instanceId, executionId, 1, { kind: 'OrchestrationStarted', name, version: '1.0.0', input: '"in"' });
}

/** A StartOrchestration message. */
export function startItem(instance: string, options: Partial<StartOrchestrationItem> = {}): StartOrchestrationItem {
  return {
    type: 'StartOrchestration',
    instance,
    orchestration: 'Orch',
    input: '"in"',
    version: null,
    parentInstance: null,
    parentId: null,
    parentExecutionId: null,
    executionId: 1,
    ...options,
  };
}

/** An ActivityExecute work item. */
export function activity(instance: string, id: number, tag: string | null = null, executionId = 1): ActivityExecuteItem {
  return { type: 'ActivityExecute', instance, executionId, id, name: 'Act', input: `"a${id}"`, sessionId: null, tag };
}

/** A turn acknowledgement with empty effects, overridable field by field. */
export function turn(instanceId: string, overrides: Partial<OrchestrationTurnAck> = {}): OrchestrationTurnAck {
  return {
    instanceId,
    executionId: 1,
    historyDelta: [],
    workerItems: [],
    orchestratorItems: [],
    metadata: { orchestrationName: 'Orch', orchestrationVersion: '1.0.0' },
    cancelledActivities: [],
    ...overrides,
  };
}

/** Fetches and asserts there is an item (optionally for `instanceId`). */
export async function fetchItem(provider: Provider, instanceId?: string): Promise<OrchestrationItem> {
  const item = await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS });
  assert.ok(item, 'expected an orchestration item');
  if (instanceId !== undefined) assert.equal(item.instanceId, instanceId);
  return item;
}

/** Creates `instanceId`: start message, fetch, ack of OrchestrationStarted (event 1). */
export async function seedInstance(provider: Provider, instanceId: string, extra: Partial<OrchestrationTurnAck> = {}): Promise<void> {
  await provider.enqueueOrchestratorWork(startItem(instanceId));
  const item = await fetchItem(provider, instanceId);
  await provider.ackOrchestrationItem(item.lockToken, turn(instanceId, { historyDelta: [started(instanceId)], ...extra }));
}

/** Asserts that `promise` rejects with a ProviderError of `code`; returns it. */
export async function rejectsWith(promise: Promise<unknown>, code: ProviderErrorCode, operation?: string): Promise<ProviderError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ProviderError, `expected ProviderError, got ${String(error)}`);
    assert.equal(error.code, code, `expected code ${code}, got ${error.code}: ${error.message}`);
    if (operation !== undefined) assert.equal(error.operation, operation);
    return error;
  }
  assert.fail(`expected a ${code} rejection`);
}
