/**
 * The `ctx` object handed to orchestrations (docs/replay.md).
 * For generators, scheduling methods only build descriptors; the replay engine executes them
 * when they are yielded. For async functions, a {@link TaskStarter} starts each descriptor the
 * moment it is created (its action is emitted at call time) and makes it awaitable. The
 * synchronous methods (custom status, key-value store, traces) act on the live state of the
 * current turn through an {@link OrchestrationContextHost}.
 */
import { encodeValue } from './codec';
import { requirePriority } from './priority';
import type {
  ActivityTask,
  ActivityWithRetryTask,
  ContinueAsNewTask,
  ContinueAsNewVersionedTask,
  DequeueEventTask,
  GetValueFromInstanceTask,
  JoinTask,
  NewGuidTask,
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
import type { TraceLevel } from './turn-api';

/** Identity of the orchestration a context belongs to. */
export interface OrchestrationContextInfo {
  instanceId: string;
  executionId: number;
  orchestrationName: string;
  orchestrationVersion: string | null;
}

/** The live turn state behind the synchronous context methods (implemented by the replay engine). */
export interface OrchestrationContextHost {
  isReplaying(): boolean;
  getCustomStatus(): string | null;
  setCustomStatus(status: string | null): void;
  getValue(key: string): string | null;
  setValue(key: string, value: string): void;
  clearValue(key: string): void;
  clearAllValues(): void;
  /** Current keys with the time they were last written. */
  kvEntries(): Array<[string, { value: string; lastUpdatedAtMs: number }]>;
  trace(level: TraceLevel, message: string): void;
  /** Throws (and logs) when the turn this context belongs to has ended; `method` names the call. */
  assertOpen(method: string): void;
}

/**
 * Starts descriptors as they are created (async orchestrations): emits their actions and
 * returns the same descriptor, made awaitable. Internal: the replay engine supplies it.
 */
export interface TaskStarter {
  start<D extends ScheduledTask>(descriptor: D): D;
}

/** A host for contexts built outside a turn: state lives in memory, traces go nowhere. */
class DetachedHost implements OrchestrationContextHost {
  private status: string | null = null;
  private readonly kv = new Map<string, { value: string; lastUpdatedAtMs: number }>();
  isReplaying(): boolean {
    return false;
  }
  getCustomStatus(): string | null {
    return this.status;
  }
  setCustomStatus(status: string | null): void {
    this.status = status;
  }
  getValue(key: string): string | null {
    return this.kv.get(key)?.value ?? null;
  }
  setValue(key: string, value: string): void {
    this.kv.set(key, { value, lastUpdatedAtMs: Date.now() });
  }
  clearValue(key: string): void {
    this.kv.delete(key);
  }
  clearAllValues(): void {
    this.kv.clear();
  }
  kvEntries(): Array<[string, { value: string; lastUpdatedAtMs: number }]> {
    return [...this.kv.entries()];
  }
  trace(): void {}
  assertOpen(): void {}
}

function activityTask(name: string, input: string, sessionId: string | undefined): ActivityTask {
  const task: ActivityTask = {
    type: 'activity',
    name,
    input,
    sessionId,
    withTag(tag: string): ActivityTask {
      task.tag = tag;
      return task;
    },
    withFlowKey(key: string): ActivityTask {
      if (typeof key !== 'string' || key.length === 0) throw new TypeError('withFlowKey needs a non-empty string');
      task.flowKey = key;
      return task;
    },
    withPriority(level: number): ActivityTask {
      task.priority = requirePriority(level, 'withPriority');
      return task;
    },
  };
  return task;
}

/**
 * A descriptor with its (non-enumerable) `withFlowKey` and `withPriority`: sub-orchestrations,
 * detached starts, activities with retries.
 */
function flowTask<D extends { flowKey?: string; priority?: number }>(
  fields: Omit<D, 'withFlowKey' | 'withPriority'>,
): D {
  const task = fields as D;
  Object.defineProperty(task, 'withFlowKey', {
    configurable: true,
    enumerable: false,
    writable: true,
    value: (key: string): D => {
      if (typeof key !== 'string' || key.length === 0) throw new TypeError('withFlowKey needs a non-empty string');
      task.flowKey = key;
      return task;
    },
  });
  Object.defineProperty(task, 'withPriority', {
    configurable: true,
    enumerable: false,
    writable: true,
    value: (level: number): D => {
      task.priority = requirePriority(level, 'withPriority');
      return task;
    },
  });
  return task;
}

function retryFields(retry: RetryPolicy): ActivityWithRetryTask['retry'] {
  return {
    maxAttempts: retry.maxAttempts,
    timeoutMs: retry.timeoutMs,
    totalTimeoutMs: retry.totalTimeoutMs,
    backoff: retry.backoff,
  };
}

function typed<T extends object>(task: T): T & { _typed: true } {
  return Object.assign(task, { _typed: true as const });
}

/** The context of one orchestration execution. Users never construct it; the runtime does. */
export class OrchestrationContext {
  /** Id of the orchestration instance. */
  readonly instanceId: string;
  /** Execution number of the instance (1, then +1 per continue-as-new). */
  readonly executionId: number;
  /** Registered name of the running orchestration. */
  readonly orchestrationName: string;
  /** Resolved semver of the running orchestration, e.g. `"1.0.0"`. */
  readonly orchestrationVersion: string | null;
  readonly #host: OrchestrationContextHost;
  readonly #starter: TaskStarter | undefined;

  /**
   * @param ctxInfo identity of the execution.
   * @param host live turn state; internal (the replay engine passes it). Without it the
   *   synchronous methods work on a private in-memory state.
   * @param starter internal: present for async orchestrations, whose tasks start when created.
   */
  constructor(ctxInfo: OrchestrationContextInfo, host?: OrchestrationContextHost, starter?: TaskStarter) {
    this.instanceId = ctxInfo.instanceId;
    this.executionId = ctxInfo.executionId;
    this.orchestrationName = ctxInfo.orchestrationName;
    this.orchestrationVersion = ctxInfo.orchestrationVersion;
    this.#host = host ?? new DetachedHost();
    this.#starter = starter;
    Object.freeze(this);
  }

  /** Checks the turn is still open, then starts the descriptor when the orchestration is async. */
  #task<D extends ScheduledTask>(method: string, descriptor: D): D {
    this.#host.assertOpen(method);
    return this.#starter === undefined ? descriptor : this.#starter.start(descriptor);
  }

  /** True while the code re-runs over persisted history (traces are suppressed then). */
  get isReplaying(): boolean {
    return this.#host.isReplaying();
  }

  // --- activities ----------------------------------------------------------------------------

  /**
   * Schedules an activity. Yield the task to get the activity's result; a failed activity
   * throws its error message.
   * @param options.sessionId pins the activity to a worker session.
   */
  scheduleActivity<T = unknown>(
    name: string,
    input?: unknown,
    options?: { sessionId?: string },
  ): ActivityTask & { readonly __result?: T } {
    return this.#task('scheduleActivity', activityTask(name, encodeValue(input), options?.sessionId));
  }

  /** Schedules an activity on a session (all activities of a session run on one worker). */
  scheduleActivityOnSession<T = unknown>(
    name: string,
    input: unknown,
    sessionId: string,
  ): ActivityTask & { readonly __result?: T } {
    return this.#task('scheduleActivityOnSession', activityTask(name, encodeValue(input), sessionId));
  }

  /** Schedules an activity with retries, per-attempt timeout and backoff (durable timers). */
  scheduleActivityWithRetry<T = unknown>(
    name: string,
    input: unknown,
    retry: RetryPolicy,
  ): ActivityWithRetryTask & { readonly __result?: T } {
    return this.#task(
      'scheduleActivityWithRetry',
      flowTask<ActivityWithRetryTask>({
        type: 'activityWithRetry',
        name,
        input: encodeValue(input),
        retry: retryFields(retry),
      }),
    );
  }

  /** {@link scheduleActivityWithRetry} with every attempt on the given session. */
  scheduleActivityWithRetryOnSession<T = unknown>(
    name: string,
    input: unknown,
    retry: RetryPolicy,
    sessionId: string,
  ): ActivityWithRetryTask & { readonly __result?: T } {
    return this.#task(
      'scheduleActivityWithRetryOnSession',
      flowTask<ActivityWithRetryTask>({
        type: 'activityWithRetry',
        name,
        input: encodeValue(input),
        retry: retryFields(retry),
        sessionId,
      }),
    );
  }

  /** Typed variant of {@link scheduleActivity}: a string result is JSON-parsed once more. */
  scheduleActivityTyped<T = unknown>(name: string, input?: unknown): ActivityTask & { readonly __result?: T } {
    return typed(this.scheduleActivity<T>(name, input));
  }

  /** Typed variant of {@link scheduleActivityOnSession}. */
  scheduleActivityOnSessionTyped<T = unknown>(
    name: string,
    input: unknown,
    sessionId: string,
  ): ActivityTask & { readonly __result?: T } {
    return typed(this.scheduleActivityOnSession<T>(name, input, sessionId));
  }

  /** Typed variant of {@link scheduleActivityWithRetry}. */
  scheduleActivityWithRetryTyped<T = unknown>(
    name: string,
    input: unknown,
    retry: RetryPolicy,
  ): ActivityWithRetryTask & { readonly __result?: T } {
    return typed(this.scheduleActivityWithRetry<T>(name, input, retry));
  }

  /** Typed variant of {@link scheduleActivityWithRetryOnSession}. */
  scheduleActivityWithRetryOnSessionTyped<T = unknown>(
    name: string,
    input: unknown,
    retry: RetryPolicy,
    sessionId: string,
  ): ActivityWithRetryTask & { readonly __result?: T } {
    return typed(this.scheduleActivityWithRetryOnSession<T>(name, input, retry, sessionId));
  }

  // --- timers and events ---------------------------------------------------------------------

  /** A durable timer of `delayMs` whole milliseconds; yields `null` when it fires. */
  scheduleTimer(delayMs: number): TimerTask {
    return this.#task('scheduleTimer', { type: 'timer', delayMs });
  }

  /** Waits for the next external event of that name raised after this wait is recorded. */
  waitForEvent<T = unknown>(name: string): WaitEventTask & { readonly __result?: T } {
    return this.#task('waitForEvent', { type: 'waitEvent', name });
  }

  /** Same as {@link waitForEvent} (no extra parse, like duroxide). */
  waitForEventTyped<T = unknown>(name: string): WaitEventTask & { readonly __result?: T } {
    return typed(this.waitForEvent<T>(name));
  }

  /** Takes the next message of a persistent FIFO queue (messages survive continue-as-new). */
  dequeueEvent<T = unknown>(queueName: string): DequeueEventTask & { readonly __result?: T } {
    return this.#task('dequeueEvent', { type: 'dequeueEvent', queueName });
  }

  /** Same as {@link dequeueEvent} (no extra parse, like duroxide). */
  dequeueEventTyped<T = unknown>(queueName: string): DequeueEventTask & { readonly __result?: T } {
    return typed(this.dequeueEvent<T>(queueName));
  }

  // --- sub-orchestrations and detached starts ------------------------------------------------

  /** Runs a child orchestration (id `<parent>::sub::<eventId>`); yields its output or throws its error. */
  scheduleSubOrchestration<T = unknown>(
    name: string,
    input?: unknown,
  ): SubOrchestrationTask & { readonly __result?: T } {
    return this.#task(
      'scheduleSubOrchestration',
      flowTask<SubOrchestrationTask>({ type: 'subOrchestration', name, input: encodeValue(input) }),
    );
  }

  /** Runs a child orchestration with an explicit instance id. */
  scheduleSubOrchestrationWithId<T = unknown>(
    name: string,
    instanceId: string,
    input?: unknown,
  ): SubOrchestrationWithIdTask & { readonly __result?: T } {
    return this.#task(
      'scheduleSubOrchestrationWithId',
      flowTask<SubOrchestrationWithIdTask>({
        type: 'subOrchestrationWithId',
        name,
        instanceId,
        input: encodeValue(input),
      }),
    );
  }

  /** Runs a child orchestration pinned to a version (falsy ⇒ latest). */
  scheduleSubOrchestrationVersioned<T = unknown>(
    name: string,
    version: string | null | undefined,
    input?: unknown,
  ): SubOrchestrationVersionedTask & { readonly __result?: T } {
    return this.#task(
      'scheduleSubOrchestrationVersioned',
      flowTask<SubOrchestrationVersionedTask>({
        type: 'subOrchestrationVersioned',
        name,
        version: version || null,
        input: encodeValue(input),
      }),
    );
  }

  /** Runs a child orchestration pinned to a version, with an explicit instance id. */
  scheduleSubOrchestrationVersionedWithId<T = unknown>(
    name: string,
    version: string | null | undefined,
    instanceId: string,
    input?: unknown,
  ): SubOrchestrationVersionedWithIdTask & { readonly __result?: T } {
    return this.#task(
      'scheduleSubOrchestrationVersionedWithId',
      flowTask<SubOrchestrationVersionedWithIdTask>({
        type: 'subOrchestrationVersionedWithId',
        name,
        version: version || null,
        instanceId,
        input: encodeValue(input),
      }),
    );
  }

  /** Typed variant of {@link scheduleSubOrchestration}. */
  scheduleSubOrchestrationTyped<T = unknown>(
    name: string,
    input?: unknown,
  ): SubOrchestrationTask & { readonly __result?: T } {
    return typed(this.scheduleSubOrchestration<T>(name, input));
  }

  /** Typed variant of {@link scheduleSubOrchestrationWithId}. */
  scheduleSubOrchestrationWithIdTyped<T = unknown>(
    name: string,
    instanceId: string,
    input?: unknown,
  ): SubOrchestrationWithIdTask & { readonly __result?: T } {
    return typed(this.scheduleSubOrchestrationWithId<T>(name, instanceId, input));
  }

  /** Starts another orchestration without waiting for it (not part of the instance tree); yields `null`. */
  startOrchestration(name: string, instanceId: string, input?: unknown): StartOrchestrationTask {
    return this.#task(
      'startOrchestration',
      flowTask<StartOrchestrationTask>({ type: 'orchestration', name, instanceId, input: encodeValue(input) }),
    );
  }

  /** {@link startOrchestration} pinned to a version (falsy ⇒ latest). */
  startOrchestrationVersioned(
    name: string,
    version: string | null | undefined,
    instanceId: string,
    input?: unknown,
  ): StartOrchestrationVersionedTask {
    return this.#task(
      'startOrchestrationVersioned',
      flowTask<StartOrchestrationVersionedTask>({
        type: 'orchestrationVersioned',
        name,
        version: version || null,
        instanceId,
        input: encodeValue(input),
      }),
    );
  }

  /** Alias of {@link startOrchestration}. */
  startOrchestrationTyped(name: string, instanceId: string, input?: unknown): StartOrchestrationTask {
    return typed(this.startOrchestration(name, instanceId, input));
  }

  /** Alias of {@link startOrchestrationVersioned}. */
  startOrchestrationVersionedTyped(
    name: string,
    version: string | null | undefined,
    instanceId: string,
    input?: unknown,
  ): StartOrchestrationVersionedTask {
    return typed(this.startOrchestrationVersioned(name, version, instanceId, input));
  }

  // --- deterministic values ------------------------------------------------------------------

  /** A deterministic GUID (recorded in history); yields a 36-character string. */
  newGuid(): NewGuidTask {
    return this.#task('newGuid', { type: 'newGuid' });
  }

  /** The current time in epoch ms, recorded in history; yields a number. */
  utcNow(): UtcNowTask {
    return this.#task('utcNow', { type: 'utcNow' });
  }

  /** Reads another instance's key-value entry (recorded in history); yields a string or `null`. */
  getValueFromInstance(instanceId: string, key: string): GetValueFromInstanceTask {
    return this.#task('getValueFromInstance', { type: 'getValueFromInstance', instanceId, key: String(key) });
  }

  // --- continue-as-new -----------------------------------------------------------------------

  /** Ends this execution and starts a fresh one (latest version) with `input`; never resumes. */
  continueAsNew(input?: unknown): ContinueAsNewTask {
    return this.#task('continueAsNew', { type: 'continueAsNew', input: encodeValue(input) });
  }

  /** {@link continueAsNew} targeting an exact version (falsy ⇒ latest). */
  continueAsNewVersioned(input: unknown, version: string | null | undefined): ContinueAsNewVersionedTask {
    return this.#task('continueAsNewVersioned', {
      type: 'continueAsNewVersioned',
      input: encodeValue(input),
      version: version || null,
    });
  }

  /** Alias of {@link continueAsNew}. */
  continueAsNewTyped(input?: unknown): ContinueAsNewTask {
    return typed(this.continueAsNew(input));
  }

  // --- composition ---------------------------------------------------------------------------

  /** Waits for all tasks; yields `[{ok: v} | {err: e}, ...]` in task order (never throws for members). */
  all(tasks: ScheduledTask[]): JoinTask {
    return this.#task('all', { type: 'join', tasks });
  }

  /** {@link all} with each `ok`/`err` string JSON-parsed once more. */
  allTyped(tasks: ScheduledTask[]): JoinTask {
    return typed(this.all(tasks));
  }

  /** Races exactly two tasks (the first is favoured on ties); yields `{index, value}`; the loser is cancelled. */
  race(...tasks: ScheduledTask[]): SelectTask {
    return this.#task('race', { type: 'select', tasks });
  }

  /** {@link race} with a string `value` JSON-parsed once more. */
  raceTyped(...tasks: ScheduledTask[]): SelectTask {
    return typed(this.race(...tasks));
  }

  // --- custom status -------------------------------------------------------------------------

  /** Sets the instance's custom status (coerced with `String`). */
  setCustomStatus(status: string): void {
    this.#host.assertOpen('setCustomStatus');
    this.#host.setCustomStatus(String(status));
  }

  /** Clears the custom status. */
  resetCustomStatus(): void {
    this.#host.assertOpen('resetCustomStatus');
    this.#host.setCustomStatus(null);
  }

  /** The current custom status, including values carried over continue-as-new. */
  getCustomStatus(): string | null {
    this.#host.assertOpen('getCustomStatus');
    return this.#host.getCustomStatus();
  }

  // --- key-value store -----------------------------------------------------------------------

  /** Stores `String(value)` under `key` in this instance's key-value store. */
  setValue(key: string, value: string): void {
    this.#host.assertOpen('setValue');
    this.#host.setValue(String(key), String(value));
  }

  /** The stored value of `key`, or `null`. */
  getValue(key: string): string | null {
    this.#host.assertOpen('getValue');
    return this.#host.getValue(String(key));
  }

  /**
   * When `key` was last written, in epoch ms of the store's clock (the time of the turn that
   * wrote it, recorded in history: replay returns the same value), or `null` when it is not set.
   * Reading it right after a `setValue` gives the current turn's time deterministically.
   */
  getValueUpdatedAt(key: string): number | null {
    this.#host.assertOpen('getValueUpdatedAt');
    const wanted = String(key);
    const entry = this.#host.kvEntries().find(([name]) => name === wanted);
    return entry === undefined ? null : entry[1].lastUpdatedAtMs;
  }

  /** Removes `key`. */
  clearValue(key: string): void {
    this.#host.assertOpen('clearValue');
    this.#host.clearValue(String(key));
  }

  /** Removes every key. */
  clearAllValues(): void {
    this.#host.assertOpen('clearAllValues');
    this.#host.clearAllValues();
  }

  /** Every key and value as an object. */
  getKvAllValues(): Record<string, string> {
    this.#host.assertOpen('getKvAllValues');
    const all: Record<string, string> = {};
    for (const [key, entry] of this.#host.kvEntries()) all[key] = entry.value;
    return all;
  }

  /** Every key. */
  getKvAllKeys(): string[] {
    this.#host.assertOpen('getKvAllKeys');
    return this.#host.kvEntries().map(([key]) => key);
  }

  /** Number of keys. */
  getKvLength(): number {
    this.#host.assertOpen('getKvLength');
    return this.#host.kvEntries().length;
  }

  /** Clears every key last written before `cutoffMs` (epoch ms); returns how many were cleared. */
  pruneKvValuesUpdatedBefore(cutoffMs: number): number {
    this.#host.assertOpen('pruneKvValuesUpdatedBefore');
    const cutoff = Math.max(0, Math.trunc(Number(cutoffMs) || 0));
    let cleared = 0;
    for (const [key, entry] of this.#host.kvEntries()) {
      if (entry.lastUpdatedAtMs < cutoff) {
        this.#host.clearValue(key);
        cleared++;
      }
    }
    return cleared;
  }

  // --- traces --------------------------------------------------------------------------------

  /** Logs at info level (suppressed while replaying). */
  traceInfo(message: unknown): void {
    this.#host.assertOpen('traceInfo');
    this.#host.trace('info', String(message));
  }

  /** Logs at warn level (suppressed while replaying). */
  traceWarn(message: unknown): void {
    this.#host.assertOpen('traceWarn');
    this.#host.trace('warn', String(message));
  }

  /** Logs at error level (suppressed while replaying). */
  traceError(message: unknown): void {
    this.#host.assertOpen('traceError');
    this.#host.trace('error', String(message));
  }

  /** Logs at debug level (suppressed while replaying). */
  traceDebug(message: unknown): void {
    this.#host.assertOpen('traceDebug');
    this.#host.trace('debug', String(message));
  }
}
