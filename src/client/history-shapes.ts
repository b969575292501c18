/** History events as the Client returns them (`JsEvent`, docs/runtime.md, "The Client"). */
import { externallyTaggedError } from '../core/error-details';
import type { HistoryEvent } from '../core/types';

/** One history event. `data` is JSON text whose shape depends on `kind`. */
export interface JsEvent {
  eventId: number;
  kind: string;
  sourceEventId?: number;
  timestampMs: number;
  data?: string;
}

/** Payloads are already JSON; embed them raw, or as a JSON string when they are not valid JSON. */
function raw(payload: string): string {
  try {
    JSON.parse(payload);
    return payload;
  } catch {
    return JSON.stringify(payload);
  }
}

function dataOf(event: HistoryEvent): string | undefined {
  switch (event.kind) {
    case 'OrchestrationStarted':
      return `{"name":${JSON.stringify(event.name)},"version":${JSON.stringify(event.version)},"input":${raw(event.input)}}`;
    case 'OrchestrationCompleted':
      return event.output;
    case 'ActivityCompleted':
    case 'SubOrchestrationCompleted':
      return event.result;
    case 'OrchestrationFailed':
    case 'ActivityFailed':
    case 'SubOrchestrationFailed':
      return JSON.stringify(externallyTaggedError(event.details));
    case 'ActivityScheduled':
      return `{"name":${JSON.stringify(event.name)},"input":${raw(event.input)}}`;
    case 'TimerCreated':
    case 'TimerFired':
      return JSON.stringify({ fireAtMs: event.fireAtMs });
    case 'ExternalSubscribed':
    case 'QueueSubscribed':
      return JSON.stringify({ name: event.name });
    case 'ExternalEvent':
    case 'QueueEventDelivered':
      return `{"name":${JSON.stringify(event.name)},"data":${raw(event.data)}}`;
    case 'SubOrchestrationScheduled':
      return `{"name":${JSON.stringify(event.name)},"instance":${JSON.stringify(event.instance)},"input":${raw(event.input)}}`;
    case 'QueueSubscriptionCancelled':
      return JSON.stringify({ reason: event.reason });
    default:
      return undefined;
  }
}

export function toJsEvent(event: HistoryEvent): JsEvent {
  const result: JsEvent = { eventId: event.eventId, kind: event.kind, timestampMs: event.timestampMs };
  if (event.sourceEventId !== undefined && event.sourceEventId !== null) result.sourceEventId = event.sourceEventId;
  const data = dataOf(event);
  if (data !== undefined) result.data = data;
  return result;
}
