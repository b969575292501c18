/**
 * Builds the single json argument of the `ack_orchestration_item` procedure from a turn.
 *
 * Everything that needs to understand history events happens here, in TypeScript, so every
 * provider on the same SQL shares it: the custom status (last CustomStatusUpdated wins), the
 * key-value mutations collapsed to one entry per key, the failure details of a Failed execution
 * and the routing of orchestrator items. Payloads travel as JSON strings inside the argument, so
 * the procedure stores the exact text TypeScript produced.
 */
import { targetInstanceOf, type ActivityExecuteItem, type OrchestratorWorkItem } from '../core/types';
import type { OrchestrationTurnAck } from '../core/turn-types';
import type { ActivityClaim, TurnClaim } from '../provider/contract';
import { versionRangeArguments } from './parity-operations';
import {
  invalidArgument as invalid,
  optionalPriority,
  optionalText,
  requireId,
  requireInteger,
  requirePositiveDuration,
  requireText,
  toJsonText,
  type CallContext,
} from './validation';

const EXECUTION_STATUSES = new Set(['Running', 'Completed', 'Failed', 'ContinuedAsNew']);

/** Orchestrator work-item types the queue accepts. */
export const ORCHESTRATOR_ITEM_TYPES: ReadonlySet<string> = new Set([
  'StartOrchestration',
  'ContinueAsNew',
  'ActivityCompleted',
  'ActivityFailed',
  'TimerFired',
  'ExternalRaised',
  'QueueMessage',
  'SubOrchCompleted',
  'SubOrchFailed',
  'CancelInstance',
]);

/** Queue row of an orchestrator message: routing target, kind, visibility and JSON text. */
export interface OrchestratorRow {
  targetInstance: string;
  kind: string;
  /** Absolute visibility (TimerFired fire time), or null for "now". */
  visibleAtMs: number | null;
  workItem: string;
  /** A start's priority level; absent: the target instance's (resolved by the store). */
  priority?: number;
}

/** Queue row of an activity. */
export interface WorkerRow {
  instanceId: string;
  executionId: number;
  activityId: number;
  tag: string | null;
  workItem: string;
  /** Session the activity is pinned to (stored inside workItem; validated here). */
  sessionId: string | null;
  /** Priority level (also inside workItem); absent = 0. */
  priority?: number;
}

/** Validates an orchestrator message and computes its queue row. */
export function orchestratorRow(item: OrchestratorWorkItem, context: CallContext): OrchestratorRow {
  if (
    typeof item !== 'object' ||
    item === null ||
    !ORCHESTRATOR_ITEM_TYPES.has((item as { type?: unknown }).type as string)
  ) {
    throw invalid(
      context,
      `not an orchestrator work item (type ${JSON.stringify((item as { type?: unknown } | null)?.type)})`,
    );
  }
  const targetInstance = requireId(targetInstanceOf(item), `${item.type} target instance`, context);
  let visibleAtMs: number | null = null;
  if (item.type === 'TimerFired') {
    const fireAtMs = requireInteger(item.fireAtMs, 'TimerFired.fireAtMs', context, 0);
    visibleAtMs = fireAtMs > 0 ? fireAtMs : null;
  }
  const priority =
    item.type === 'StartOrchestration' || item.type === 'ContinueAsNew'
      ? optionalPriority(item.priority, `${item.type}.priority`, context)
      : undefined;
  return {
    targetInstance,
    kind: item.type,
    visibleAtMs,
    workItem: toJsonText(item, `${item.type} work item`, context),
    ...priorityField(priority),
  };
}

/** `{ priority }` when a level was given, else nothing (the json then carries no key). */
function priorityField(priority: number | undefined): { priority?: number } {
  return priority === undefined ? {} : { priority };
}

/** Validates an activity work item and computes its queue row. */
export function workerRow(item: ActivityExecuteItem, context: CallContext): WorkerRow {
  if (typeof item !== 'object' || item === null || item.type !== 'ActivityExecute') {
    throw invalid(context, 'the worker queue only accepts ActivityExecute items');
  }
  return {
    instanceId: requireId(item.instance, 'ActivityExecute.instance', context),
    executionId: requireInteger(item.executionId, 'ActivityExecute.executionId', context, 1),
    activityId: requireInteger(item.id, 'ActivityExecute.id', context, 1),
    tag: optionalText(item.tag, 'ActivityExecute.tag', context),
    workItem: toJsonText(item, 'ActivityExecute work item', context),
    // Checked because the stored JSON is read back as the session column (0007): text PostgreSQL
    // cannot hold (U+0000, lone surrogates) must be refused here, naming the field.
    sessionId: optionalText(item.sessionId, 'ActivityExecute.sessionId', context),
    ...priorityField(optionalPriority(item.priority, 'ActivityExecute.priority', context)),
  };
}

/**
 * JSON texts of the `p_ack` and `p_claim` arguments of ack_orchestration_item: the activities
 * at `claim.workerItemIndexes` move from the ack's workerItems to the claim. Throws
 * `invalid_argument` before any SQL on bad input.
 */
export function buildAckArguments(
  ack: OrchestrationTurnAck,
  claim?: ActivityClaim | null,
): { ack: string; claim: string | null } {
  const context: CallContext = { operation: 'ack_orchestration_item', instanceId: ack?.instanceId };
  const claimed = claimedIndexes(ack, claim, context);
  const workerRows = Array.isArray(ack?.workerItems) ? ack.workerItems.map((item) => workerRow(item, context)) : [];
  const claimedRows = workerRows.filter((_, index) => claimed.has(index));
  if (claimedRows.some((row) => row.sessionId !== null)) {
    throw invalid(context, 'activities pinned to a session cannot be claimed by an ack');
  }
  return {
    ack: buildAckArgument(
      ack,
      context,
      workerRows.filter((_, index) => !claimed.has(index)),
    ),
    claim:
      claim === null || claim === undefined
        ? null
        : JSON.stringify({ workerItems: claimedRows, lockTimeoutMs: claim.lockTimeoutMs }),
  };
}

function claimedIndexes(
  ack: OrchestrationTurnAck,
  claim: ActivityClaim | null | undefined,
  context: CallContext,
): Set<number> {
  const claimed = new Set<number>();
  if (claim === null || claim === undefined) return claimed;
  if (typeof claim !== 'object' || !Array.isArray(claim.workerItemIndexes))
    throw invalid(context, 'claim.workerItemIndexes must be an array');
  requirePositiveDuration(claim.lockTimeoutMs, 'claim.lockTimeoutMs', context);
  const count = Array.isArray(ack?.workerItems) ? ack.workerItems.length : 0;
  for (const index of claim.workerItemIndexes) {
    if (!Number.isInteger(index) || index < 0 || index >= count || claimed.has(index)) {
      throw invalid(
        context,
        `claim.workerItemIndexes must be distinct indexes into workerItems ` +
          `(0..${count - 1}), got ${JSON.stringify(index)}`,
      );
    }
    claimed.add(index);
  }
  return claimed;
}

/** JSON text of ack_work_item's `p_claim_turn`, or null without a claim. */
export function turnClaimArgument(claim: TurnClaim | null | undefined, context: CallContext): string | null {
  if (claim === null || claim === undefined) return null;
  if (typeof claim !== 'object') throw invalid(context, 'claim must be an object');
  const [minVersion, maxVersion] = versionRangeArguments(claim.versionRange);
  return JSON.stringify({
    lockTimeoutMs: requirePositiveDuration(claim.lockTimeoutMs, 'claim.lockTimeoutMs', context),
    minVersion,
    maxVersion,
  });
}

/** JSON text of the `p_ack` argument, with the (validated) worker rows it queues. */
function buildAckArgument(ack: OrchestrationTurnAck, context: CallContext, workerRows: WorkerRow[]): string {
  const instanceId = requireId(ack.instanceId, 'instanceId', context);
  const executionId = requireInteger(ack.executionId, 'executionId', context, 1);
  const metadata = ack.metadata;
  if (typeof metadata !== 'object' || metadata === null) throw invalid(context, 'metadata is required');
  if (metadata.status !== undefined && !EXECUTION_STATUSES.has(metadata.status)) {
    throw invalid(context, `unknown execution status ${JSON.stringify(metadata.status)}`);
  }
  if (
    !Array.isArray(ack.historyDelta) ||
    !Array.isArray(ack.workerItems) ||
    !Array.isArray(ack.orchestratorItems) ||
    !Array.isArray(ack.cancelledActivities)
  ) {
    throw invalid(context, 'historyDelta, workerItems, orchestratorItems and cancelledActivities must be arrays');
  }

  let customStatusChanged = false;
  let customStatus: string | null = null;
  let clearAll = false;
  let failureDetails: string | null = null;
  const kv = new Map<string, { key: string; value: string | null; lastUpdatedAtMs: number | null }>();
  const seenEventIds = new Set<number>();
  const history = ack.historyDelta.map((event, index) => {
    const what = `historyDelta[${index}]`;
    const eventId = requireInteger(event?.eventId, `${what}.eventId`, context, 1);
    if (seenEventIds.has(eventId)) throw invalid(context, `${what} repeats event id ${eventId}`);
    seenEventIds.add(eventId);
    const kind = requireId(event.kind, `${what}.kind`, context);
    switch (event.kind) {
      case 'CustomStatusUpdated':
        customStatusChanged = true;
        customStatus = optionalText(event.status, `${what}.status`, context);
        break;
      case 'KeyValueSet': {
        const key = requireText(event.key, `${what}.key`, context);
        kv.set(key, {
          key,
          value: requireText(event.value, `${what}.value`, context),
          lastUpdatedAtMs: requireInteger(event.lastUpdatedAtMs, `${what}.lastUpdatedAtMs`, context, 0),
        });
        break;
      }
      case 'KeyValueCleared': {
        const key = requireText(event.key, `${what}.key`, context);
        kv.set(key, { key, value: null, lastUpdatedAtMs: null });
        break;
      }
      case 'KeyValuesCleared':
        clearAll = true;
        kv.clear();
        break;
      case 'OrchestrationFailed':
        failureDetails = toJsonText(event.details, `${what}.details`, context);
        break;
      default:
        break;
    }
    return { eventId, eventType: kind, eventData: toJsonText(event, what, context) };
  });

  const level = optionalPriority(metadata.priority, 'metadata.priority', context);
  return JSON.stringify({
    instanceId,
    executionId,
    orchestrationName: requireId(metadata.orchestrationName, 'metadata.orchestrationName', context),
    orchestrationVersion: optionalText(metadata.orchestrationVersion, 'metadata.orchestrationVersion', context),
    parentInstanceId: optionalText(metadata.parentInstanceId, 'metadata.parentInstanceId', context),
    // The default level is left out: the store then keeps the stored level (0 for a new
    // instance) and reads no level from the ack (internal_json_priority).
    ...priorityField(level === 0 ? undefined : level),
    status: metadata.status ?? null,
    output: optionalText(metadata.output, 'metadata.output', context),
    failureDetails: metadata.status === 'Failed' ? failureDetails : null,
    history,
    customStatusChanged,
    customStatus,
    kv: { clearAll, entries: [...kv.values()] },
    workerItems: workerRows,
    cancelledActivities: ack.cancelledActivities.map((activity, index) => ({
      instance: requireId(activity?.instance, `cancelledActivities[${index}].instance`, context),
      executionId: requireInteger(activity.executionId, `cancelledActivities[${index}].executionId`, context, 1),
      activityId: requireInteger(activity.activityId, `cancelledActivities[${index}].activityId`, context, 1),
    })),
    orchestratorItems: ack.orchestratorItems.map((item) => orchestratorRow(item, context)),
  });
}
