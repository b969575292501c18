/**
 * Invariants of a stored history, checked on every execution of an instance after a chaos run:
 * - event ids are 1..N without gaps, and every event names its instance and execution;
 * - exactly one OrchestrationStarted (the first event) and exactly one terminal event (the last);
 * - every completion (activity, timer, sub-orchestration) answers a scheduling event of the same
 *   execution, of the matching kind, and no scheduling event is answered twice.
 */
import type { HistoryEvent } from '../../src/core/types';
import type { Provider } from '../../src/provider/contract';

const TERMINAL = new Set(['OrchestrationCompleted', 'OrchestrationFailed', 'OrchestrationContinuedAsNew']);

/** Completion kind -> the kind of event it must answer. */
const ANSWERS: Readonly<Record<string, string>> = {
  ActivityCompleted: 'ActivityScheduled',
  ActivityFailed: 'ActivityScheduled',
  TimerFired: 'TimerCreated',
  SubOrchestrationCompleted: 'SubOrchestrationScheduled',
  SubOrchestrationFailed: 'SubOrchestrationScheduled',
};

/** Problems found in one execution's history (empty when it is sound). */
export function historyProblems(
  instanceId: string,
  executionId: number,
  events: HistoryEvent[],
  finished: boolean,
): string[] {
  const where = `${instanceId} execution ${executionId}`;
  const problems: string[] = [];
  events.forEach((event, index) => {
    if (event.eventId !== index + 1) problems.push(`${where}: event #${index + 1} has id ${event.eventId}`);
    if (event.instanceId !== instanceId || event.executionId !== executionId) {
      problems.push(`${where}: event ${event.eventId} belongs to ${event.instanceId}/${event.executionId}`);
    }
  });
  const starts = events.filter((e) => e.kind === 'OrchestrationStarted');
  if (starts.length !== 1 || events[0]?.kind !== 'OrchestrationStarted')
    problems.push(`${where}: ${starts.length} start events, first is ${events[0]?.kind}`);
  const terminals = events.filter((e) => TERMINAL.has(e.kind));
  if (finished && (terminals.length !== 1 || !TERMINAL.has(events[events.length - 1]?.kind ?? ''))) {
    problems.push(`${where}: ${terminals.length} terminal events, last is ${events[events.length - 1]?.kind}`);
  }
  if (!finished && terminals.length !== 0)
    problems.push(`${where}: running but has ${terminals.length} terminal events`);
  const byId = new Map(events.map((e) => [e.eventId, e]));
  const answered = new Set<number>();
  for (const event of events) {
    const expected = ANSWERS[event.kind];
    if (expected === undefined) continue;
    const source = event.sourceEventId === undefined ? undefined : byId.get(event.sourceEventId);
    if (source === undefined || source.kind !== expected) {
      problems.push(
        `${where}: ${event.kind} ${event.eventId} answers ${source?.kind ?? 'nothing'} (source ${event.sourceEventId})`,
      );
      continue;
    }
    if (answered.has(source.eventId)) problems.push(`${where}: ${expected} ${source.eventId} answered twice`);
    answered.add(source.eventId);
  }
  return problems;
}

/** Checks every execution of `instanceId`; the latest one must be finished when `finished`. */
export async function instanceProblems(provider: Provider, instanceId: string, finished = true): Promise<string[]> {
  const executions = await provider.listExecutions(instanceId);
  if (executions.length === 0) return [`${instanceId}: no executions`];
  const problems: string[] = [];
  for (const executionId of executions) {
    const events = await provider.readHistory(instanceId, executionId);
    const isLatest = executionId === executions[executions.length - 1];
    problems.push(...historyProblems(instanceId, executionId, events, !isLatest || finished));
  }
  executions.forEach((id, index) => {
    if (id !== index + 1) problems.push(`${instanceId}: execution ids ${executions.join(',')} are not 1..N`);
  });
  return problems;
}
