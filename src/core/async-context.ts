/**
 * The static type of `ctx` in an `async` orchestration. At run time it is the same
 * {@link OrchestrationContext}; the difference is that each scheduling method has already
 * started its task and returns it awaitable, so `await ctx.scheduleActivity<T>(...)` is a `T`.
 */
import type {
  ActivityTask,
  ActivityWithRetryTask,
  ContinueAsNewTask,
  ContinueAsNewVersionedTask,
  DequeueEventTask,
  GetValueFromInstanceTask,
  JoinResult,
  JoinTask,
  NewGuidTask,
  RaceResult,
  RetryPolicy,
  ScheduledTask,
  SelectTask,
  StartOrchestrationTask,
  StartOrchestrationVersionedTask,
  SubOrchestrationTask,
  SubOrchestrationVersionedTask,
  SubOrchestrationVersionedWithIdTask,
  SubOrchestrationWithIdTask,
  TimerTask,
  UtcNowTask,
  WaitEventTask,
} from './descriptors';
import type { OrchestrationContext } from './orchestration-context';

/** A started ctx task: still the descriptor (so it can go into `ctx.all`/`ctx.race`), and awaitable. */
export type Durable<D extends ScheduledTask, T> = D & PromiseLike<T>;

/** A started activity; `withTag` keeps the result type. */
export interface DurableActivity<T> extends ActivityTask, PromiseLike<T> {
  /** Routes the activity to workers serving `tag`; call it right when scheduling, before any await. */
  withTag(tag: string): DurableActivity<T>;
  /** Counts the activity against the flow limit of `key`; call it right when scheduling, before any await. */
  withFlowKey(key: string): DurableActivity<T>;
  /** Runs the activity at priority `level` (0..9, higher first); call it right when scheduling, before any await. */
  withPriority(level: number): DurableActivity<T>;
}

type SchedulingMethod =
  | 'scheduleActivity'
  | 'scheduleActivityOnSession'
  | 'scheduleActivityWithRetry'
  | 'scheduleActivityWithRetryOnSession'
  | 'scheduleActivityTyped'
  | 'scheduleActivityOnSessionTyped'
  | 'scheduleActivityWithRetryTyped'
  | 'scheduleActivityWithRetryOnSessionTyped'
  | 'scheduleTimer'
  | 'waitForEvent'
  | 'waitForEventTyped'
  | 'dequeueEvent'
  | 'dequeueEventTyped'
  | 'scheduleSubOrchestration'
  | 'scheduleSubOrchestrationWithId'
  | 'scheduleSubOrchestrationVersioned'
  | 'scheduleSubOrchestrationVersionedWithId'
  | 'scheduleSubOrchestrationTyped'
  | 'scheduleSubOrchestrationWithIdTyped'
  | 'startOrchestration'
  | 'startOrchestrationVersioned'
  | 'startOrchestrationTyped'
  | 'startOrchestrationVersionedTyped'
  | 'newGuid'
  | 'utcNow'
  | 'getValueFromInstance'
  | 'continueAsNew'
  | 'continueAsNewVersioned'
  | 'continueAsNewTyped'
  | 'all'
  | 'allTyped'
  | 'race'
  | 'raceTyped';

/**
 * `ctx` of an async orchestration: the methods of {@link OrchestrationContext}, with every
 * scheduling method returning its started task. Each call emits its action when it is made, in
 * call order, exactly as `yield` of the same call would in a generator.
 */
export interface AsyncOrchestrationContext extends Omit<OrchestrationContext, SchedulingMethod> {
  /** Schedules an activity; resolves to its result, rejects with its error message. */
  scheduleActivity<T = unknown>(name: string, input?: unknown, options?: { sessionId?: string }): DurableActivity<T>;
  /** Schedules an activity on a session (all activities of a session run on one worker). */
  scheduleActivityOnSession<T = unknown>(name: string, input: unknown, sessionId: string): DurableActivity<T>;
  /** Schedules an activity with retries, per-attempt timeout and backoff (durable timers). */
  scheduleActivityWithRetry<T = unknown>(
    name: string,
    input: unknown,
    retry: RetryPolicy,
  ): Durable<ActivityWithRetryTask, T>;
  /** Retrying activity with every attempt on the given session. */
  scheduleActivityWithRetryOnSession<T = unknown>(
    name: string,
    input: unknown,
    retry: RetryPolicy,
    sessionId: string,
  ): Durable<ActivityWithRetryTask, T>;
  /** Typed variant of `scheduleActivity`: a string result is JSON-parsed once more. */
  scheduleActivityTyped<T = unknown>(name: string, input?: unknown): DurableActivity<T>;
  /** Typed variant of `scheduleActivityOnSession`. */
  scheduleActivityOnSessionTyped<T = unknown>(name: string, input: unknown, sessionId: string): DurableActivity<T>;
  /** Typed variant of `scheduleActivityWithRetry`. */
  scheduleActivityWithRetryTyped<T = unknown>(
    name: string,
    input: unknown,
    retry: RetryPolicy,
  ): Durable<ActivityWithRetryTask, T>;
  /** Typed variant of `scheduleActivityWithRetryOnSession`. */
  scheduleActivityWithRetryOnSessionTyped<T = unknown>(
    name: string,
    input: unknown,
    retry: RetryPolicy,
    sessionId: string,
  ): Durable<ActivityWithRetryTask, T>;
  /** A durable timer of `delayMs` whole milliseconds; resolves to `null` when it fires. */
  scheduleTimer(delayMs: number): Durable<TimerTask, null>;
  /** Waits for the next external event of that name raised after this wait is recorded. */
  waitForEvent<T = unknown>(name: string): Durable<WaitEventTask, T>;
  /** Same as `waitForEvent`. */
  waitForEventTyped<T = unknown>(name: string): Durable<WaitEventTask, T>;
  /** Takes the next message of a persistent FIFO queue. */
  dequeueEvent<T = unknown>(queueName: string): Durable<DequeueEventTask, T>;
  /** Same as `dequeueEvent`. */
  dequeueEventTyped<T = unknown>(queueName: string): Durable<DequeueEventTask, T>;
  /** Runs a child orchestration; resolves to its output, rejects with its error. */
  scheduleSubOrchestration<T = unknown>(name: string, input?: unknown): Durable<SubOrchestrationTask, T>;
  /** Runs a child orchestration with an explicit instance id. */
  scheduleSubOrchestrationWithId<T = unknown>(
    name: string,
    instanceId: string,
    input?: unknown,
  ): Durable<SubOrchestrationWithIdTask, T>;
  /** Runs a child orchestration pinned to a version (falsy means latest). */
  scheduleSubOrchestrationVersioned<T = unknown>(
    name: string,
    version: string | null | undefined,
    input?: unknown,
  ): Durable<SubOrchestrationVersionedTask, T>;
  /** Runs a child orchestration pinned to a version, with an explicit instance id. */
  scheduleSubOrchestrationVersionedWithId<T = unknown>(
    name: string,
    version: string | null | undefined,
    instanceId: string,
    input?: unknown,
  ): Durable<SubOrchestrationVersionedWithIdTask, T>;
  /** Typed variant of `scheduleSubOrchestration`. */
  scheduleSubOrchestrationTyped<T = unknown>(name: string, input?: unknown): Durable<SubOrchestrationTask, T>;
  /** Typed variant of `scheduleSubOrchestrationWithId`. */
  scheduleSubOrchestrationWithIdTyped<T = unknown>(
    name: string,
    instanceId: string,
    input?: unknown,
  ): Durable<SubOrchestrationWithIdTask, T>;
  /** Starts another orchestration without waiting for it; resolves to `null`. */
  startOrchestration(name: string, instanceId: string, input?: unknown): Durable<StartOrchestrationTask, null>;
  /** `startOrchestration` pinned to a version. */
  startOrchestrationVersioned(
    name: string,
    version: string | null | undefined,
    instanceId: string,
    input?: unknown,
  ): Durable<StartOrchestrationVersionedTask, null>;
  /** Alias of `startOrchestration`. */
  startOrchestrationTyped(name: string, instanceId: string, input?: unknown): Durable<StartOrchestrationTask, null>;
  /** Alias of `startOrchestrationVersioned`. */
  startOrchestrationVersionedTyped(
    name: string,
    version: string | null | undefined,
    instanceId: string,
    input?: unknown,
  ): Durable<StartOrchestrationVersionedTask, null>;
  /** A deterministic GUID recorded in history. */
  newGuid(): Durable<NewGuidTask, string>;
  /** The current time in epoch ms, recorded in history. */
  utcNow(): Durable<UtcNowTask, number>;
  /** Reads another instance's key-value entry (recorded in history). */
  getValueFromInstance(instanceId: string, key: string): Durable<GetValueFromInstanceTask, string | null>;
  /** Ends this execution and starts a fresh one with `input`; the promise never settles. */
  continueAsNew(input?: unknown): Durable<ContinueAsNewTask, never>;
  /** `continueAsNew` targeting an exact version. */
  continueAsNewVersioned(
    input: unknown,
    version: string | null | undefined,
  ): Durable<ContinueAsNewVersionedTask, never>;
  /** Alias of `continueAsNew`. */
  continueAsNewTyped(input?: unknown): Durable<ContinueAsNewTask, never>;
  /** Waits for all tasks; `{ok}`/`{err}` per task in order (never rejects for members). */
  all<T = unknown>(tasks: ScheduledTask[]): Durable<JoinTask, Array<JoinResult<T>>>;
  /** `all` with each `ok`/`err` string JSON-parsed once more. */
  allTyped<T = unknown>(tasks: ScheduledTask[]): Durable<JoinTask, Array<JoinResult<T>>>;
  /** Races exactly two tasks (the first wins ties); the loser is cancelled; errors are flattened into `value`. */
  race<T = unknown>(...tasks: ScheduledTask[]): Durable<SelectTask, RaceResult<T>>;
  /** `race` with a string `value` JSON-parsed once more. */
  raceTyped<T = unknown>(...tasks: ScheduledTask[]): Durable<SelectTask, RaceResult<T>>;
}
