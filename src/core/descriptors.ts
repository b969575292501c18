/**
 * The plain objects that `OrchestrationContext` scheduling methods return and orchestration
 * generators yield (docs/replay.md, "Composite tasks"). Their shapes are part of the public
 * contract: user code and tests inspect them.
 */

/** Retry settings of `scheduleActivityWithRetry` (section 2.2). */
export interface RetryPolicy {
  /** Attempts in total, at least 1. */
  maxAttempts: number;
  /** Per-attempt timeout in ms. */
  timeoutMs?: number;
  /** Alias of the per-attempt timeout; overrides `timeoutMs` when both are set. */
  totalTimeoutMs?: number;
  /** `'exponential'` (default), `'fixed'`, or any other string for linear backoff. */
  backoff?: string;
}

/** Marks typed variants; the engine parses their result a second time. */
interface TypedFlag {
  _typed?: true;
}

/**
 * Work that can run at its own priority level instead of its instance's (README "Priorities").
 * `withPriority` is not enumerable, so descriptors still compare by their data.
 */
interface PriorityFlag {
  /** Priority level 0..9 (higher first) given with `withPriority`; the instance's when not set. */
  priority?: number;
  /**
   * Runs the work at `level` (an integer 0..9, higher first) instead of the instance's level;
   * returns this same descriptor. Call it right when scheduling, before anything is awaited.
   * Throws a `RangeError` for any other value.
   */
  withPriority(level: number): this;
}

/** A plain activity, optionally on a session. `withTag` routes it to tagged workers. */
export interface ActivityTask extends TypedFlag {
  type: 'activity';
  name: string;
  input: string;
  sessionId?: string;
  tag?: string;
  /** Flow-control key (see `Client.setFlowLimit`); `activity:<name>` when not set. */
  flowKey?: string;
  /** Sets the routing tag and returns this same descriptor. */
  withTag(tag: string): ActivityTask;
  /**
   * Counts the activity against the flow limit of `key` instead of `activity:<name>`; returns
   * this same descriptor. Call it right when scheduling, before anything is awaited.
   */
  withFlowKey(key: string): ActivityTask;
  /** Priority level 0..9 (higher first) given with `withPriority`; the instance's when not set. */
  priority?: number;
  /**
   * Runs the activity at `level` (an integer 0..9, higher first) instead of its instance's level;
   * returns this same descriptor. Call it right when scheduling, before anything is awaited.
   * Throws a `RangeError` for any other value.
   */
  withPriority(level: number): ActivityTask;
}

/**
 * An activity with retries. `withFlowKey` and `withPriority` apply to every attempt; like a
 * child's, they are not enumerable, so descriptors still compare by their data.
 */
export interface ActivityWithRetryTask extends TypedFlag, PriorityFlag {
  type: 'activityWithRetry';
  name: string;
  input: string;
  retry: { maxAttempts: number; timeoutMs?: number; totalTimeoutMs?: number; backoff?: string };
  sessionId?: string;
  /** Flow-control key of every attempt (see `Client.setFlowLimit`); `activity:<name>` when not set. */
  flowKey?: string;
  /**
   * Counts every attempt against the flow limit of `key` instead of `activity:<name>`; returns
   * this same descriptor. Call it right when scheduling, before anything is awaited.
   */
  withFlowKey(key: string): this;
}

export interface TimerTask {
  type: 'timer';
  delayMs: number;
}

export interface WaitEventTask extends TypedFlag {
  type: 'waitEvent';
  name: string;
}

export interface DequeueEventTask extends TypedFlag {
  type: 'dequeueEvent';
  queueName: string;
}

export interface GetValueFromInstanceTask {
  type: 'getValueFromInstance';
  instanceId: string;
  key: string;
}

/**
 * A child or detached start that can count against an orchestration flow key. `withFlowKey` is
 * not enumerable, so descriptors still compare by their data.
 */
interface ChildFlowKeyFlag {
  /** Orchestration flow key given with `withFlowKey`; none when not set. */
  flowKey?: string;
  /**
   * Starts the instance under the orchestration flow key `key` (see `Client.setFlowLimit`): it holds
   * one of the key's permits while it runs, or waits (Pending) for one; returns this same
   * descriptor. Call it right when scheduling, before anything is awaited.
   */
  withFlowKey(key: string): this;
}

export interface SubOrchestrationTask extends TypedFlag, ChildFlowKeyFlag, PriorityFlag {
  type: 'subOrchestration';
  name: string;
  input: string;
}

export interface SubOrchestrationWithIdTask extends TypedFlag, ChildFlowKeyFlag, PriorityFlag {
  type: 'subOrchestrationWithId';
  name: string;
  instanceId: string;
  input: string;
}

export interface SubOrchestrationVersionedTask extends TypedFlag, ChildFlowKeyFlag, PriorityFlag {
  type: 'subOrchestrationVersioned';
  name: string;
  version: string | null;
  input: string;
}

export interface SubOrchestrationVersionedWithIdTask extends TypedFlag, ChildFlowKeyFlag, PriorityFlag {
  type: 'subOrchestrationVersionedWithId';
  name: string;
  version: string | null;
  instanceId: string;
  input: string;
}

/**
 * Fire-and-forget start of another orchestration. `withFlowKey` starts it under an orchestration
 * flow key (it holds a permit while it runs, or waits Pending), `withPriority` at its own level
 * instead of the starting instance's.
 */
export interface StartOrchestrationTask extends TypedFlag, ChildFlowKeyFlag, PriorityFlag {
  type: 'orchestration';
  name: string;
  instanceId: string;
  input: string;
}

export interface StartOrchestrationVersionedTask extends TypedFlag, ChildFlowKeyFlag, PriorityFlag {
  type: 'orchestrationVersioned';
  name: string;
  version: string | null;
  instanceId: string;
  input: string;
}

export interface NewGuidTask {
  type: 'newGuid';
}

export interface UtcNowTask {
  type: 'utcNow';
}

export interface ContinueAsNewTask extends TypedFlag {
  type: 'continueAsNew';
  input: string;
}

export interface ContinueAsNewVersionedTask extends TypedFlag {
  type: 'continueAsNewVersioned';
  input: string;
  version: string | null;
}

/** `ctx.all(tasks)`: waits for every task, never throws for member failures. */
export interface JoinTask extends TypedFlag {
  type: 'join';
  tasks: ScheduledTask[];
}

/** `ctx.race(a, b)`: the first task to finish wins, the other is cancelled. */
export interface SelectTask extends TypedFlag {
  type: 'select';
  tasks: ScheduledTask[];
}

/** Anything an orchestration generator may yield. */
export type ScheduledTask =
  | ActivityTask
  | ActivityWithRetryTask
  | TimerTask
  | WaitEventTask
  | DequeueEventTask
  | GetValueFromInstanceTask
  | SubOrchestrationTask
  | SubOrchestrationWithIdTask
  | SubOrchestrationVersionedTask
  | SubOrchestrationVersionedWithIdTask
  | StartOrchestrationTask
  | StartOrchestrationVersionedTask
  | NewGuidTask
  | UtcNowTask
  | ContinueAsNewTask
  | ContinueAsNewVersionedTask
  | JoinTask
  | SelectTask;

export type ScheduledTaskType = ScheduledTask['type'];

/** Per-task result of `ctx.all`: `{ok}` on success, `{err}` on failure. */
export interface JoinResult<T = unknown> {
  ok?: T;
  err?: unknown;
}

/** Result of `ctx.race`: index of the winner (0 or 1) and its value (errors flattened in). */
export interface RaceResult<T = unknown> {
  index: number;
  value: T;
}

const TASK_TYPES: ReadonlySet<string> = new Set<ScheduledTaskType>([
  'activity',
  'activityWithRetry',
  'timer',
  'waitEvent',
  'dequeueEvent',
  'getValueFromInstance',
  'subOrchestration',
  'subOrchestrationWithId',
  'subOrchestrationVersioned',
  'subOrchestrationVersionedWithId',
  'orchestration',
  'orchestrationVersioned',
  'newGuid',
  'utcNow',
  'continueAsNew',
  'continueAsNewVersioned',
  'join',
  'select',
]);

/** Whether a yielded value looks like a descriptor (an object with a known `type`). */
export function isScheduledTask(value: unknown): value is ScheduledTask {
  if (typeof value !== 'object' || value === null) return false;
  const type = (value as { type?: unknown }).type;
  return typeof type === 'string' && TASK_TYPES.has(type);
}

/** A short description of an arbitrary yielded value, for error messages. */
export function describeYielded(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (typeof value === 'function') return `function ${value.name || '(anonymous)'}`;
  if (typeof value === 'object') {
    if (typeof (value as { then?: unknown }).then === 'function')
      return 'a Promise (orchestrations must yield ctx tasks, not promises)';
    const type = (value as { type?: unknown }).type;
    if (type !== undefined) return `an object with unknown type ${JSON.stringify(type)}`;
    try {
      return `object ${JSON.stringify(value)}`;
    } catch {
      return 'an object';
    }
  }
  return `${typeof value} ${JSON.stringify(value)}`;
}
