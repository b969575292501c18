/**
 * Primitive actions: what orchestration code asks for, before it becomes history. Each action
 * is bound by position to a schedule or side-effect event (docs/replay.md, "One turn");
 * this module holds the matching rules, the conversion to new events, and the texts used in
 * nondeterminism messages.
 */
import type { HistoryEvent, HistoryEventData } from './types';

export type Action =
  | {
      kind: 'activity';
      name: string;
      input: string;
      sessionId: string | null;
      tag: string | null;
      /** Flow-control key; not compared on replay (it routes the work, it does not change it). */
      flowKey: string | null;
      /** Priority level from `withPriority`; not compared on replay (it orders the work). */
      priority: number | null;
    }
  | { kind: 'timer'; delayMs: number }
  | { kind: 'waitEvent'; name: string }
  | { kind: 'dequeue'; name: string }
  | {
      kind: 'subOrchestration';
      name: string;
      instanceId: string | null;
      version: string | null;
      input: string;
      /** Orchestration flow key of the child; not compared on replay (it admits the child, it does not change it). */
      flowKey: string | null;
      /** Priority level from `withPriority`; not compared on replay (it orders the work). */
      priority: number | null;
    }
  | {
      kind: 'detached';
      name: string;
      instanceId: string;
      version: string | null;
      input: string;
      /** Orchestration flow key of the started instance; not compared on replay (it admits the start). */
      flowKey: string | null;
      /** Priority level from `withPriority`; not compared on replay (it orders the work). */
      priority: number | null;
    }
  | { kind: 'customStatus'; status: string | null }
  | { kind: 'kvSet'; key: string; value: string; lastUpdatedAtMs: number }
  | { kind: 'kvClear'; key: string }
  | { kind: 'kvClearAll' };

/** An emitted action with its per-turn token (1, 2, 3… in call order). */
export interface EmittedAction {
  token: number;
  action: Action;
}

/** Event kinds that bind to an emitted action (schedules and side effects). */
const ACTION_EVENT_KINDS: ReadonlySet<string> = new Set([
  'ActivityScheduled',
  'TimerCreated',
  'ExternalSubscribed',
  'QueueSubscribed',
  'SubOrchestrationScheduled',
  'OrchestrationChained',
  'CustomStatusUpdated',
  'KeyValueSet',
  'KeyValueCleared',
  'KeyValuesCleared',
]);

export function isActionEvent(event: HistoryEvent): boolean {
  return ACTION_EVENT_KINDS.has(event.kind);
}

const q = (value: string | null | undefined): string =>
  value === null || value === undefined ? 'null' : JSON.stringify(value);

/** Human-readable form of an action for nondeterminism messages. */
export function describeAction(action: Action): string {
  switch (action.kind) {
    case 'activity':
      return (
        `ScheduleActivity{name=${q(action.name)}, input=${q(action.input)}, ` +
        `session=${q(action.sessionId)}, tag=${q(action.tag)}}`
      );
    case 'timer':
      return `CreateTimer{delayMs=${action.delayMs}}`;
    case 'waitEvent':
      return `WaitExternal{name=${q(action.name)}}`;
    case 'dequeue':
      return `DequeueEvent{queue=${q(action.name)}}`;
    case 'subOrchestration':
      return `StartSubOrchestration{name=${q(action.name)}, input=${q(action.input)}}`;
    case 'detached':
      return (
        `StartOrchestrationDetached{name=${q(action.name)}, ` +
        `instance=${q(action.instanceId)}, input=${q(action.input)}}`
      );
    case 'customStatus':
      return `UpdateCustomStatus{status=${q(action.status)}}`;
    case 'kvSet':
      return `SetKeyValue{key=${q(action.key)}, value=${q(action.value)}}`;
    case 'kvClear':
      return `ClearKeyValue{key=${q(action.key)}}`;
    case 'kvClearAll':
      return 'ClearAllKeyValues';
  }
}

/** Human-readable form of a history event for nondeterminism messages. */
export function describeEvent(event: HistoryEvent): string {
  switch (event.kind) {
    case 'ActivityScheduled':
      return (
        `ActivityScheduled#${event.eventId}{name=${q(event.name)}, ` +
        `input=${q(event.input)}, session=${q(event.sessionId)}, tag=${q(event.tag)}}`
      );
    case 'TimerCreated':
      return `TimerCreated#${event.eventId}{fireAtMs=${event.fireAtMs}}`;
    case 'ExternalSubscribed':
    case 'QueueSubscribed':
      return `${event.kind}#${event.eventId}{name=${q(event.name)}}`;
    case 'SubOrchestrationScheduled':
      return (
        `SubOrchestrationScheduled#${event.eventId}{name=${q(event.name)}, ` +
        `instance=${q(event.instance)}, input=${q(event.input)}}`
      );
    case 'OrchestrationChained':
      return (
        `OrchestrationChained#${event.eventId}{name=${q(event.name)}, ` +
        `instance=${q(event.instance)}, input=${q(event.input)}}`
      );
    case 'CustomStatusUpdated':
      return `CustomStatusUpdated#${event.eventId}`;
    case 'KeyValueSet':
      return `KeyValueSet#${event.eventId}{key=${q(event.key)}, value=${q(event.value)}}`;
    case 'KeyValueCleared':
      return `KeyValueCleared#${event.eventId}{key=${q(event.key)}}`;
    default:
      return `${event.kind}#${event.eventId}`;
  }
}

/** Whether an emitted action reproduces a recorded schedule/side-effect event (table of section 1.5). */
export function actionMatchesEvent(action: Action, event: HistoryEvent): boolean {
  switch (action.kind) {
    case 'activity':
      return (
        event.kind === 'ActivityScheduled' &&
        event.name === action.name &&
        event.input === action.input &&
        (event.sessionId ?? null) === action.sessionId &&
        (event.tag ?? null) === action.tag
      );
    case 'timer':
      return event.kind === 'TimerCreated';
    case 'waitEvent':
      return event.kind === 'ExternalSubscribed' && event.name === action.name;
    case 'dequeue':
      return event.kind === 'QueueSubscribed' && event.name === action.name;
    case 'subOrchestration':
      return event.kind === 'SubOrchestrationScheduled' && event.name === action.name && event.input === action.input;
    case 'detached':
      return (
        event.kind === 'OrchestrationChained' &&
        event.name === action.name &&
        event.instance === action.instanceId &&
        event.input === action.input
      );
    case 'customStatus':
      return event.kind === 'CustomStatusUpdated';
    case 'kvSet':
      return event.kind === 'KeyValueSet' && event.key === action.key && event.value === action.value;
    case 'kvClear':
      return event.kind === 'KeyValueCleared' && event.key === action.key;
    case 'kvClearAll':
      return event.kind === 'KeyValuesCleared';
  }
}

/** The recorded id of an auto-named child: `sub::<eventId>`. */
export function autoChildId(eventId: number): string {
  return `sub::${eventId}`;
}

/** The real instance id of a child from its SubOrchestrationScheduled event. */
export function childInstanceId(parentInstance: string, event: { eventId: number; instance: string }): string {
  return event.instance === autoChildId(event.eventId) ? `${parentInstance}::${event.instance}` : event.instance;
}

/** The data of the new event recording an action; `eventId` names auto children, `nowMs` fires timers. */
export function newEventData(action: Action, eventId: number, nowMs: number): HistoryEventData {
  switch (action.kind) {
    case 'activity': {
      const data: HistoryEventData = { kind: 'ActivityScheduled', name: action.name, input: action.input };
      if (action.sessionId !== null) data.sessionId = action.sessionId;
      if (action.tag !== null) data.tag = action.tag;
      if (action.flowKey !== null) data.flowKey = action.flowKey;
      if (action.priority !== null) data.priority = action.priority;
      return data;
    }
    case 'timer':
      return { kind: 'TimerCreated', fireAtMs: nowMs + action.delayMs };
    case 'waitEvent':
      return { kind: 'ExternalSubscribed', name: action.name };
    case 'dequeue':
      return { kind: 'QueueSubscribed', name: action.name };
    case 'subOrchestration':
      return {
        kind: 'SubOrchestrationScheduled',
        name: action.name,
        instance: action.instanceId ?? autoChildId(eventId),
        input: action.input,
        version: action.version,
        ...(action.flowKey === null ? {} : { flowKey: action.flowKey }),
        ...(action.priority === null ? {} : { priority: action.priority }),
      };
    case 'detached':
      return {
        kind: 'OrchestrationChained',
        name: action.name,
        instance: action.instanceId,
        input: action.input,
        version: action.version,
        ...(action.flowKey === null ? {} : { flowKey: action.flowKey }),
        ...(action.priority === null ? {} : { priority: action.priority }),
      };
    case 'customStatus':
      return { kind: 'CustomStatusUpdated', status: action.status };
    case 'kvSet':
      return { kind: 'KeyValueSet', key: action.key, value: action.value, lastUpdatedAtMs: action.lastUpdatedAtMs };
    case 'kvClear':
      return { kind: 'KeyValueCleared', key: action.key };
    case 'kvClearAll':
      return { kind: 'KeyValuesCleared' };
  }
}
