/**
 * Readable history: one line per event with its time, the time since the execution started and
 * a short summary of its data. Shared by `durox history` and the dashboard's timeline.
 */
import type { JsEvent } from '../client/history-shapes';

/** One row of a timeline. */
export interface TimelineEntry {
  eventId: number;
  kind: string;
  timestampMs: number;
  /** Milliseconds since the first event of the execution. */
  offsetMs: number;
  /** Event id this one completes (e.g. the ActivityScheduled of an ActivityCompleted). */
  sourceEventId?: number;
  summary: string;
  /** The event's data as JSON text, when it has data. */
  data?: string;
  /** An external event that arrived while no waitForEvent of its name was pending: the orchestration never saw it. */
  dropped?: true;
}

/** What the timeline says about an external event nobody was waiting for. */
export const DROPPED_EVENT_NOTE =
  'DROPPED: no waitForEvent was pending (use enqueueEvent/dequeueEvent when events may come first)';

/**
 * Event ids of external events the orchestration dropped, found the way replay delivers them: in
 * history order, each event goes to the earliest pending, not cancelled subscription of its name.
 */
export function droppedExternalEvents(events: JsEvent[]): Set<number> {
  const pending = new Map<string, number[]>();
  const nameOf = (event: JsEvent): string => {
    const value = parsed(event.data);
    return typeof value === 'object' && value !== null ? String((value as Record<string, unknown>).name) : '';
  };
  const dropped = new Set<number>();
  for (const event of events) {
    if (event.kind === 'ExternalSubscribed') {
      const name = nameOf(event);
      pending.set(name, [...(pending.get(name) ?? []), event.eventId]);
    } else if (event.kind === 'ExternalSubscribedCancelled' && event.sourceEventId !== undefined) {
      for (const [name, ids] of pending)
        pending.set(
          name,
          ids.filter((id) => id !== event.sourceEventId),
        );
    } else if (event.kind === 'ExternalEvent') {
      const ids = pending.get(nameOf(event)) ?? [];
      if (ids.length === 0) dropped.add(event.eventId);
      else ids.shift();
    }
  }
  return dropped;
}

const SUMMARY_LIMIT = 160;

function clip(text: string): string {
  return text.length > SUMMARY_LIMIT ? `${text.slice(0, SUMMARY_LIMIT - 1)}…` : text;
}

function parsed(data: string | undefined): unknown {
  if (data === undefined) return undefined;
  try {
    return JSON.parse(data);
  } catch {
    return data;
  }
}

function compact(value: unknown): string {
  return value === undefined ? '' : typeof value === 'string' ? JSON.stringify(value) : (JSON.stringify(value) ?? '');
}

function describe(event: JsEvent): string {
  const value = parsed(event.data);
  const record =
    typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  switch (event.kind) {
    case 'OrchestrationStarted':
      return `${String(record.name)} ${String(record.version)} input ${compact(record.input)}`;
    case 'ActivityScheduled':
      return `${String(record.name)}(${compact(record.input)})`;
    case 'SubOrchestrationScheduled':
      return `${String(record.name)} as ${String(record.instance)} input ${compact(record.input)}`;
    case 'TimerCreated':
    case 'TimerFired':
      return typeof record.fireAtMs === 'number' ? `fires at ${new Date(record.fireAtMs).toISOString()}` : '';
    case 'ExternalSubscribed':
    case 'QueueSubscribed':
      return `waiting for ${String(record.name)}`;
    case 'ExternalEvent':
    case 'QueueEventDelivered':
      return `${String(record.name)} data ${compact(record.data)}`;
    default:
      return compact(value);
  }
}

/** Timeline rows of one execution's events (already ordered by event id). */
export function timeline(events: JsEvent[]): TimelineEntry[] {
  const start = events.length > 0 ? events[0].timestampMs : 0;
  const dropped = droppedExternalEvents(events);
  return events.map((event) => {
    const isDropped = dropped.has(event.eventId);
    const entry: TimelineEntry = {
      eventId: event.eventId,
      kind: event.kind,
      timestampMs: event.timestampMs,
      offsetMs: event.timestampMs - start,
      summary: isDropped ? `${clip(describe(event))} — ${DROPPED_EVENT_NOTE}` : clip(describe(event)),
    };
    if (isDropped) entry.dropped = true;
    if (event.sourceEventId !== undefined) entry.sourceEventId = event.sourceEventId;
    if (event.data !== undefined) entry.data = event.data;
    return entry;
  });
}

/** `+1.234s` style offset. */
export function formatOffset(ms: number): string {
  return ms < 1000 ? `+${ms}ms` : `+${(ms / 1000).toFixed(3)}s`;
}

/** Input of an execution: the `input` of its OrchestrationStarted event, as JSON text. */
export function executionInput(events: JsEvent[]): string | undefined {
  const started = events.find((e) => e.kind === 'OrchestrationStarted');
  const value = parsed(started?.data);
  if (typeof value !== 'object' || value === null || !('input' in value)) return undefined;
  return JSON.stringify(value.input);
}
