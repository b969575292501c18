/**
 * The fallback turn committed when a turn's own acknowledgement is refused for good (for
 * example a payload the store rejects): the execution fails with an infrastructure error
 * instead of retrying the same doomed turn forever (docs/runtime.md, "The orchestration dispatcher", step 6).
 */
import { displayMessage } from '../core/error-details';
import type { OrchestrationTurnAck } from '../core/turn-types';
import { DUROX_VERSION, type ErrorDetails, type HistoryEvent, type OrchestratorWorkItem } from '../core/types';
import type { OrchestrationItem } from '../provider/contract';

export function infrastructureFailureAck(
  item: OrchestrationItem,
  refused: OrchestrationTurnAck,
  message: string,
): OrchestrationTurnAck {
  const startsExecution = refused.historyDelta[0]?.kind === 'OrchestrationStarted';
  const base: HistoryEvent[] = startsExecution ? [refused.historyDelta[0]] : item.history;
  const started = base.find((e) => e.kind === 'OrchestrationStarted');
  const details: ErrorDetails = { category: 'infrastructure', operation: 'ack_orchestration_item', message, retryable: false };
  const failed: HistoryEvent = {
    eventId: (base[base.length - 1]?.eventId ?? 0) + 1,
    instanceId: refused.instanceId,
    executionId: refused.executionId,
    timestampMs: item.nowMs,
    duroxVersion: DUROX_VERSION,
    kind: 'OrchestrationFailed',
    details,
  };
  const orchestratorItems: OrchestratorWorkItem[] = [];
  let parentInstanceId: string | null = null;
  if (started?.kind === 'OrchestrationStarted' && started.parentInstance !== undefined) {
    parentInstanceId = started.parentInstance;
    if (started.parentId !== undefined && started.parentExecutionId !== undefined) {
      orchestratorItems.push({
        type: 'SubOrchFailed',
        parentInstance: started.parentInstance,
        parentExecutionId: started.parentExecutionId,
        parentId: started.parentId,
        details,
      });
    }
  }
  return {
    instanceId: refused.instanceId,
    executionId: refused.executionId,
    historyDelta: startsExecution ? [refused.historyDelta[0], failed] : [failed],
    workerItems: [],
    orchestratorItems,
    metadata: {
      status: 'Failed',
      output: displayMessage(details),
      orchestrationName: refused.metadata.orchestrationName,
      orchestrationVersion: refused.metadata.orchestrationVersion,
      parentInstanceId,
    },
    cancelledActivities: [],
  };
}
