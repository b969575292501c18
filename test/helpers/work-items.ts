/** Builders of history events, work items and turn acks shared by the provider and store tests. */
import {
  DUROX_VERSION,
  type ActivityExecuteItem,
  type HistoryEvent,
  type HistoryEventData,
  type StartOrchestrationItem,
} from '../../src/core/types';
import type { OrchestrationTurnAck } from '../../src/core/turn-types';

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
export function activity(
  instance: string,
  id: number,
  tag: string | null = null,
  executionId = 1,
): ActivityExecuteItem {
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
