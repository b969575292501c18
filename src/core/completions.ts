/**
 * Stage A of a turn (docs/replay.md, "One turn"): turns the batch's completion messages into
 * new history events, dropping stale and duplicate completions and rejecting completions that
 * answer no schedule.
 */
import type { NewEvent } from './replay-engine';
import { nondeterminismError } from './error-details';
import type { ErrorDetails, HistoryEvent, HistoryEventData, HistoryEventKind, OrchestratorWorkItem } from './types';

export interface StagedCompletions {
  events: NewEvent[];
  /** Set when the turn must fail without running the code (nondeterminism, system failure). */
  abort: ErrorDetails | null;
}

const COMPLETION_KINDS: ReadonlySet<HistoryEventKind> = new Set([
  'ActivityCompleted',
  'ActivityFailed',
  'TimerFired',
  'SubOrchestrationCompleted',
  'SubOrchestrationFailed',
]);

/** A completion's check: an error text, 'skip' for a duplicate, or null when it applies. */
type Verdict = string | null;

const LABEL: Record<string, string> = {
  ActivityScheduled: 'activity',
  TimerCreated: 'timer',
  SubOrchestrationScheduled: 'sub-orchestration',
};

/**
 * @param history baseline history plus OrchestrationStarted when the execution is new.
 * @param messages completion messages in batch order (start items already removed).
 */
export function stageCompletions(
  history: HistoryEvent[],
  messages: OrchestratorWorkItem[],
  executionId: number,
  firstEventId: number,
): StagedCompletions {
  const byId = new Map<number, HistoryEvent>();
  const answered = new Set<number>();
  let cancelRequested = false;
  for (const event of history) {
    byId.set(event.eventId, event);
    if (COMPLETION_KINDS.has(event.kind) && event.sourceEventId !== undefined) answered.add(event.sourceEventId);
    if (event.kind === 'OrchestrationCancelRequested') cancelRequested = true;
  }
  const events: NewEvent[] = [];
  let nextEventId = firstEventId;
  const append = (data: HistoryEventData, sourceEventId?: number): void => {
    const event: NewEvent =
      sourceEventId === undefined ? { eventId: nextEventId++, data } : { eventId: nextEventId++, sourceEventId, data };
    events.push(event);
  };

  /** Checks a completion against its schedule; returns an error text, 'skip' for duplicates, or null. */
  const check = (scheduleKind: HistoryEventKind, id: number, what: string): Verdict => {
    const schedule = byId.get(id);
    if (!schedule) return `no matching schedule for ${what} completion (id=${id})`;
    if (schedule.kind !== scheduleKind) {
      return (
        `completion kind mismatch: ${what} completion for event ${id}, which is ` +
        `${schedule.kind}${LABEL[schedule.kind] ? ` (a ${LABEL[schedule.kind]})` : ''}`
      );
    }
    return answered.has(id) ? 'skip' : null;
  };

  for (const message of messages) {
    let verdict: Verdict = null;
    switch (message.type) {
      case 'ActivityCompleted':
      case 'ActivityFailed':
        if (message.executionId !== executionId) continue;
        verdict = check('ActivityScheduled', message.id, 'activity');
        if (verdict === null) {
          answered.add(message.id);
          if (message.type === 'ActivityCompleted')
            append({ kind: 'ActivityCompleted', result: message.result }, message.id);
          else append({ kind: 'ActivityFailed', details: message.details }, message.id);
        }
        break;
      case 'TimerFired':
        if (message.executionId !== executionId) continue;
        verdict = check('TimerCreated', message.id, 'timer');
        if (verdict === null) {
          answered.add(message.id);
          append({ kind: 'TimerFired', fireAtMs: message.fireAtMs }, message.id);
        }
        break;
      case 'SubOrchCompleted':
      case 'SubOrchFailed':
        if (message.parentExecutionId !== executionId) continue;
        verdict = check('SubOrchestrationScheduled', message.parentId, 'sub-orchestration');
        if (verdict === null) {
          answered.add(message.parentId);
          if (message.type === 'SubOrchCompleted')
            append({ kind: 'SubOrchestrationCompleted', result: message.result }, message.parentId);
          else append({ kind: 'SubOrchestrationFailed', details: message.details }, message.parentId);
        }
        break;
      case 'CancelInstance':
        if (!cancelRequested) {
          cancelRequested = true;
          append({ kind: 'OrchestrationCancelRequested', reason: message.reason });
        }
        break;
      case 'ExternalRaised':
        append({ kind: 'ExternalEvent', name: message.name, data: message.data });
        break;
      case 'QueueMessage':
        append({ kind: 'QueueEventDelivered', name: message.name, data: message.data });
        break;
      default:
        // Start and continue-as-new items beyond the first are duplicates.
        break;
    }
    if (verdict !== null && verdict !== 'skip') return { events, abort: nondeterminismError(verdict) };
    if (
      (message.type === 'ActivityFailed' || message.type === 'SubOrchFailed') &&
      verdict === null &&
      message.details.category !== 'application'
    ) {
      return { events, abort: message.details };
    }
  }
  return { events, abort: null };
}
