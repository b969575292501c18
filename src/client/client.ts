/**
 * The control plane (docs/runtime.md, "The Client"): starts instances, raises
 * events, cancels, and reads status, key-value data and management information. It needs only a
 * provider, no running Runtime.
 *
 * Every argument is checked before the provider is called (see ./validation.ts for the limits),
 * so bad input fails with an error naming the operation and the instance and nothing is written.
 */
import { MAX_PAGE_ROWS } from '../core/limits';
import { isPriority, priorityProblem } from '../core/priority';
import { describeNonError } from '../core/thrown';
import type { ExecutionStatus, StartOrchestrationItem } from '../core/types';
import type {
  FlowLimitInfo,
  InstancePageCursor,
  InstancePageQuery,
  InstanceStatus,
  InstanceSummary,
  OrchestrationItem,
  Provider,
  ThroughputBucket,
} from '../provider/contract';
import { turnAcksSettled, watchCommittedStatus } from '../provider/local-completions';
import { prepareLocalStart, reserveLocalTurn } from '../provider/local-turns';
import { dropStartWatch, openStartWatch, takeStartWatch } from './start-watches';
import { isRetryable } from '../provider/errors';
import { notifyLocal, wakeSignal } from '../provider/local-wakeups';
import {
  DEFAULT_MAX_OUTAGE_MS,
  jitteredDelayMs,
  outageRetryPolicy,
  retryThroughOutage,
  type OutageRetryPolicy,
} from '../provider/outage-retry';
import { pushWakeups, STATUS_SAFETY_MS } from '../provider/push-wakeups';
import { toJsEvent, type JsEvent } from './history-shapes';
import {
  toInstanceFilter,
  toJsDeleteResult,
  toJsPruneResult,
  toPruneOptions,
  type JsDeleteInstanceResult,
  type JsInstanceFilter,
  type JsInstanceTree,
  type JsPruneOptions,
  type JsPruneResult,
} from './management-shapes';
import {
  toJsExecutionInfo,
  toJsInstanceInfo,
  toJsStatus,
  type JsExecutionInfo,
  type JsInstanceInfo,
  type JsOrchestrationStatus,
  type JsQueueDepths,
  type JsSystemMetrics,
  type JsSystemStats,
} from './status-shapes';
import {
  InvalidArgumentError,
  NotFoundError,
  OrchestrationFailedError,
  TimeoutError,
  UnsupportedError,
} from './errors';
import {
  encodeValue,
  invalidArgument,
  requireCount,
  requireInstanceId,
  requireName,
  requireVersion,
} from './validation';
import { ScheduleClient } from './schedules';
import type { ScheduleInfo, ScheduleOptions } from '../schedules/model';

const FIRST_POLL_MS = 5;
const MAX_POLL_MS = 100;
const DEFAULT_WAIT_MS = 30_000;

/**
 * duroxide's `Operation timed out`, followed by what timed out: the operation, the instance, the
 * limit and the last status seen. The message still starts with duroxide's text.
 */
function timedOut(operation: string, instanceId: string, timeoutMs: number, lastStatus: string): TimeoutError {
  const message = `Operation timed out: ${operation}('${instanceId}') gave up after ${timeoutMs} ms; the instance is ${lastStatus}`;
  return new TimeoutError(operation, message, instanceId, timeoutMs, lastStatus);
}
/** A start's options, checked to be an object when given. */
function startOptions(operation: string, options: StartOptions | undefined, instance: string): StartOptions {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object') {
    throw invalidArgument(operation, `options must be an object, got ${describeNonError(options)}`, instance);
  }
  return options;
}

/** The flow key of a start's options, checked. */
function startFlowKey(operation: string, options: StartOptions, instance: string): string | undefined {
  if (options.flowKey === undefined) return undefined;
  // The store's limit on flow keys is the names' (MAX_NAME_BYTES, 512).
  return requireName(operation, 'flowKey', options.flowKey, instance);
}

/** The priority level of a start's options, checked (undefined: the default level 0). */
function startPriority(operation: string, options: StartOptions, instance: string): number | undefined {
  if (options.priority === undefined) return undefined;
  if (!isPriority(options.priority)) throw invalidArgument(operation, priorityProblem(options.priority), instance);
  return options.priority;
}
const EXECUTION_STATUSES: ReadonlySet<string> = new Set(['Running', 'Completed', 'Failed', 'ContinuedAsNew']);

/** Options of a start (`startOrchestration` and its variants). */
export interface StartOptions {
  /**
   * Flow key (1 to 512 bytes) limiting the running instances: with `setFlowLimit(key, { maxActive })`
   * at most maxActive instances started under the key run at once; the instance takes a permit
   * when it starts, keeps it across continue-as-new and gives it back when it completes, fails,
   * is cancelled or deleted. A start without a free permit waits (status `Pending`) and starts,
   * oldest first, when one frees. A key with a rate limit (perSecond) is refused for starts.
   * Children take one with `ctx.scheduleSubOrchestration(...).withFlowKey(key)`.
   */
  flowKey?: string;
  /**
   * Priority level of the instance: an integer from 0 (the default, lowest) to 9. Its turns, and
   * the activities and sub-orchestrations it schedules (unless given their own with
   * `withPriority`), are fetched before waiting work of lower levels, FIFO within a level; each
   * level is worth a one-minute head start in the queues, so lower levels are never starved for
   * longer than that (README "Priorities"). Anything else is refused (`invalid_argument`).
   */
  priority?: number;
}

/** Options of a {@link Client}. */
export interface ClientOptions {
  /**
   * How long starts and raised events keep retrying through a database outage or failover, in
   * ms, with jittered back-off (a start is idempotent on its instance id). Default 90000.
   */
  maxOutageMs?: number;
}

/** Talks to the store of a Durox (or duroxide) deployment. */
export class Client {
  readonly #provider: Provider;
  readonly #schedules: ScheduleClient;
  readonly #retry: OutageRetryPolicy;

  constructor(provider: Provider, options: ClientOptions = {}) {
    if (provider === null || typeof provider !== 'object' || typeof provider.enqueueOrchestratorWork !== 'function') {
      throw new InvalidArgumentError(
        'new Client',
        'new Client(provider): provider must be a Durox provider (e.g. PostgresProvider)',
      );
    }
    const maxOutageMs = options?.maxOutageMs ?? DEFAULT_MAX_OUTAGE_MS;
    if (typeof maxOutageMs !== 'number' || !Number.isFinite(maxOutageMs) || maxOutageMs < 0) {
      throw new InvalidArgumentError(
        'new Client',
        `new Client(provider, options): maxOutageMs must be a non-negative number of ms, got ${describeNonError(maxOutageMs)}`,
      );
    }
    this.#provider = provider;
    this.#schedules = new ScheduleClient(provider, this);
    this.#retry = outageRetryPolicy(maxOutageMs);
  }

  /** Runs a store call that may be repeated safely, riding out an outage (see {@link ClientOptions.maxOutageMs}). */
  #throughOutage<T>(call: () => Promise<T>): Promise<T> {
    return retryThroughOutage(call, this.#retry, isRetryable);
  }

  // --- starting and messaging -----------------------------------------------------------------

  /**
   * Starts an instance of the latest registered version of `orchestrationName`.
   * @example await client.startOrchestration('order-1', 'Order', input, { flowKey: 'tenant-42' });
   */
  async startOrchestration(
    instanceId: string,
    orchestrationName: string,
    input?: unknown,
    options?: StartOptions,
  ): Promise<void> {
    await this.start('startOrchestration', instanceId, orchestrationName, input, null, options);
  }

  /** Starts an instance pinned to `version` (note: version comes after the input, as in duroxide). */
  async startOrchestrationVersioned(
    instanceId: string,
    orchestrationName: string,
    input: unknown,
    version: string,
    options?: StartOptions,
  ): Promise<void> {
    await this.start('startOrchestrationVersioned', instanceId, orchestrationName, input, version, options);
  }

  /** Alias of {@link startOrchestration}. */
  async startOrchestrationTyped<TInput = unknown>(
    instanceId: string,
    orchestrationName: string,
    input?: TInput,
    options?: StartOptions,
  ): Promise<void> {
    await this.start('startOrchestrationTyped', instanceId, orchestrationName, input, null, options);
  }

  /** Alias of {@link startOrchestrationVersioned}. */
  async startOrchestrationVersionedTyped<TInput = unknown>(
    instanceId: string,
    orchestrationName: string,
    input: TInput,
    version: string,
    options?: StartOptions,
  ): Promise<void> {
    await this.start('startOrchestrationVersionedTyped', instanceId, orchestrationName, input, version, options);
  }

  private async start(
    operation: string,
    instanceId: unknown,
    name: unknown,
    input: unknown,
    version: unknown,
    options: StartOptions | undefined,
  ): Promise<void> {
    const instance = requireInstanceId(operation, instanceId);
    const orchestration = requireName(operation, 'orchestration name', name, instance);
    const pinned = version === null || version === undefined ? null : requireVersion(operation, version, instance);
    const encoded = encodeValue(operation, 'input', input, instance);
    const checked = startOptions(operation, options, instance);
    const flowKey = startFlowKey(operation, checked, instance);
    const priority = startPriority(operation, checked, instance);
    const item: StartOrchestrationItem = {
      type: 'StartOrchestration',
      instance,
      orchestration,
      input: encoded,
      version: pinned,
      parentInstance: null,
      parentId: null,
      parentExecutionId: null,
      executionId: 1,
      ...(flowKey === undefined ? {} : { flowKey }),
      ...(priority === undefined || priority === 0 ? {} : { priority }),
    };
    // Opened before the call: what happens to the instance from now on is heard (see start-watches.ts).
    const startWatch = openStartWatch(this.#provider, instance);
    let claimedHere = false;
    let fusedTried = false;
    try {
      // A start is idempotent on its instance id: a repeat of one that committed is ignored by the turn.
      await this.#throughOutage(async () => {
        // Tried once: a retry after a failed call goes the usual way (a repeat of a start whose reply was lost).
        if (!fusedTried) {
          fusedTried = true;
          const fused = await this.startFused(item);
          if (fused?.committed === true) {
            claimedHere = true;
            startWatch?.startedFresh(fused.announcesStatus);
            return;
          }
          if (fused !== null) {
            notifyLocal(this.#provider, 'orchestrator');
            return;
          }
        }
        const eager = await this.startEagerly(item);
        if (eager !== null) {
          claimedHere = eager.claimedTurn !== null;
          startWatch?.started(eager.claimedTurn);
          return;
        }
        await this.#provider.enqueueOrchestratorWork(item);
        notifyLocal(this.#provider, 'orchestrator');
      });
    } finally {
      if (startWatch !== null && !claimedHere) dropStartWatch(this.#provider, startWatch);
    }
  }

  /**
   * Fused start: when a runtime in this process on the same provider object can run this
   * orchestration, it runs the first turn here and one call starts the instance and commits that
   * turn, claiming its activities for idle slots (no turn worker, no fetch, no second call; starts
   * sent meanwhile go together). The store commits it only for a new instance with nothing else
   * waiting; otherwise it queues the start (and announces it). Null when nothing local could run
   * the turn (or the start has a flow key, or the store refused the call): the caller then starts
   * the usual way, where a turn the store cannot take fails its orchestration as on any turn
   * worker, and a start it cannot take is refused to the caller. `announcesStatus`: the committed
   * turn changed the custom status, so the store sends a status hint of its own for it.
   */
  private async startFused(
    item: StartOrchestrationItem,
  ): Promise<{ committed: boolean; announcesStatus: boolean } | null> {
    const prepared = await prepareLocalStart(this.#provider, item);
    if (prepared === null) return null;
    try {
      const committed = await prepared.commit();
      return { committed, announcesStatus: committed && prepared.announcesStatus };
    } catch (error) {
      if (isRetryable(error)) throw error;
      return null;
    }
  }

  /**
   * Eager start: when a runtime in this process on the same provider object has an idle turn
   * worker for this orchestration, one call enqueues the start and locks the first turn for that
   * worker (no notification, no fetch). False when nothing local could take it; the start is then
   * enqueued as usual. A start that the store queued instead of claiming is announced by it.
   * Returns the turn claimed (null when the store queued it), or null when not started here.
   */
  private async startEagerly(item: StartOrchestrationItem): Promise<{ claimedTurn: OrchestrationItem | null } | null> {
    const provider = this.#provider;
    if (provider.startOrchestrationClaimed === undefined) return null;
    const local = reserveLocalTurn(provider, item.orchestration);
    if (local === null) return null;
    try {
      const turn = await provider.startOrchestrationClaimed(item, local.claim);
      local.reservation.deliver(turn === null ? [] : [turn]);
      return { claimedTurn: turn };
    } catch (error) {
      local.reservation.cancel();
      throw error;
    }
  }

  /** Raises an external event; delivered only to a `waitForEvent` already recorded (section 2.4). */
  async raiseEvent(instanceId: string, eventName: string, data?: unknown): Promise<void> {
    await this.raise('raiseEvent', instanceId, eventName, data);
  }

  /** Alias of {@link raiseEvent}. */
  async raiseEventTyped<T = unknown>(instanceId: string, eventName: string, data?: T): Promise<void> {
    await this.raise('raiseEventTyped', instanceId, eventName, data);
  }

  private async raise(operation: string, instanceId: unknown, eventName: unknown, data: unknown): Promise<void> {
    const instance = requireInstanceId(operation, instanceId);
    const name = requireName(operation, 'event name', eventName, instance);
    const encoded = encodeValue(operation, 'event data', data, instance);
    await this.#throughOutage(() =>
      this.#provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance, name, data: encoded }),
    );
    notifyLocal(this.#provider, 'orchestrator');
  }

  /** Puts a message on an instance's persistent queue (`dequeueEvent`, section 2.5). */
  async enqueueEvent(instanceId: string, queueName: string, data?: unknown): Promise<void> {
    await this.enqueue('enqueueEvent', instanceId, queueName, data);
  }

  /** Alias of {@link enqueueEvent}. */
  async enqueueEventTyped<T = unknown>(instanceId: string, queueName: string, data?: T): Promise<void> {
    await this.enqueue('enqueueEventTyped', instanceId, queueName, data);
  }

  private async enqueue(operation: string, instanceId: unknown, queueName: unknown, data: unknown): Promise<void> {
    const instance = requireInstanceId(operation, instanceId);
    const name = requireName(operation, 'queue name', queueName, instance);
    const encoded = encodeValue(operation, 'message data', data, instance);
    await this.#provider.enqueueOrchestratorWork({ type: 'QueueMessage', instance, name, data: encoded });
    notifyLocal(this.#provider, 'orchestrator');
  }

  /** Requests cancellation; the instance fails with `canceled: <reason>` on its next turn. */
  async cancelInstance(instanceId: string, reason?: string): Promise<void> {
    const instance = requireInstanceId('cancelInstance', instanceId);
    const text = reason === undefined || reason === null ? '' : String(reason);
    await this.#provider.enqueueOrchestratorWork({ type: 'CancelInstance', instance, reason: text });
    notifyLocal(this.#provider, 'orchestrator');
  }

  // --- status -----------------------------------------------------------------------------------

  /** Status of the latest execution; `output` stays raw JSON text. */
  async getStatus(instanceId: string): Promise<JsOrchestrationStatus> {
    const instance = requireInstanceId('getStatus', instanceId);
    return toJsStatus(await this.#provider.getInstanceStatus(instance), false);
  }

  /**
   * Waits until the instance Completed or Failed (following continue-as-new); `output` is parsed.
   * @throws `Operation timed out: …` naming the instance, the limit and the last status, after
   * `timeoutMs` (default 30000).
   */
  async waitForOrchestration(instanceId: string, timeoutMs: number = DEFAULT_WAIT_MS): Promise<JsOrchestrationStatus> {
    const instance = requireInstanceId('waitForOrchestration', instanceId);
    const timeout = requireCount('waitForOrchestration', 'timeoutMs', timeoutMs, DEFAULT_WAIT_MS, instance);
    const deadline = Date.now() + timeout;
    const wake = wakeSignal(this.#provider, 'status');
    // Push: sleep until the store announces a status change of this instance (one read after
    // it); without a live push channel, poll with backoff as before.
    const push = pushWakeups(this.#provider);
    const release = push.acquire();
    // Started by a Client on this provider object: its watch has heard everything since the start.
    const fromStart = takeStartWatch(this.#provider, instance);
    const watch = fromStart?.watch ?? push.watchStatus(instance);
    // A turn committed through this provider object in this process that ends the execution
    // hands over the status it committed (read in its transaction): no status read after it.
    let committed: InstanceStatus | null = fromStart?.committed ?? null;
    const onCommitted = (status: InstanceStatus): void => {
      committed = status;
      watch.fire();
      wake.notify();
    };
    let unwatchCommitted: () => void;
    if (fromStart === null) {
      unwatchCommitted = watchCommittedStatus(this.#provider, instance, onCommitted);
    } else {
      fromStart.onCommitted(onCommitted);
      unwatchCommitted = () => fromStart.close();
    }
    // Known to be running since its start here: the first read would only say so.
    let skipRead = fromStart?.stillRunning === true;
    let pause = FIRST_POLL_MS;
    let failures = 0;
    try {
      for (;;) {
        const generation = wake.generation;
        if (skipRead) {
          skipRead = false;
        } else {
          watch.reset();
          let status: Awaited<ReturnType<Provider['getInstanceStatus']>>;
          try {
            status = committed ?? (await this.#provider.getInstanceStatus(instance));
            failures = 0;
          } catch (error) {
            // An outage (or failover) only delays the answer: keep asking until the wait's own deadline.
            const remaining = deadline - Date.now();
            if (!isRetryable(error) || remaining <= 0) throw error;
            await new Promise((resolve) =>
              setTimeout(resolve, Math.min(jitteredDelayMs(++failures, this.#retry), remaining)),
            );
            continue;
          }
          if (status.status === 'Completed' || status.status === 'Failed') return toJsStatus(status, true);
          if (committed !== null) continue;
          if (deadline - Date.now() <= 0) throw timedOut('waitForOrchestration', instance, timeout, status.status);
        }
        const remaining = Math.max(0, deadline - Date.now());
        if (push.live) {
          await watch.wait(Math.min(STATUS_SAFETY_MS, remaining));
        } else {
          await wake.wait(Math.min(pause, remaining), generation);
          pause = Math.min(pause * 2, MAX_POLL_MS);
        }
        // The hint may announce a commit whose ack through this provider object has not replied
        // yet: its reply brings the committed status, so wait for it rather than read.
        await turnAcksSettled(this.#provider, instance, deadline - Date.now());
        // The only hint heard is the one the fused start's own commit sent: nothing to read.
        if (fromStart?.takeOwnHint() === true && committed === null) {
          watch.reset();
          skipRead = true;
        }
      }
    } finally {
      unwatchCommitted();
      watch.close();
      release();
    }
  }

  /**
   * Waits for completion and returns the parsed output.
   * @throws the instance's error message (or `Orchestration failed`) when it Failed.
   */
  async waitForOrchestrationTyped<T = unknown>(instanceId: string, timeoutMs: number = DEFAULT_WAIT_MS): Promise<T> {
    const result = await this.waitForOrchestration(instanceId, timeoutMs);
    if (result.status === 'Failed') {
      throw new OrchestrationFailedError(
        'waitForOrchestrationTyped',
        result.error || 'Orchestration failed',
        instanceId,
      );
    }
    return result.output as T;
  }

  /**
   * Returns once the custom status version exceeds `lastSeenVersion` or the instance is terminal.
   * @throws `Operation timed out: …` naming the instance, the limit and the last status, after
   * `timeoutMs` (default 30000).
   */
  async waitForStatusChange(
    instanceId: string,
    lastSeenVersion: number,
    pollIntervalMs: number = 500,
    timeoutMs: number = DEFAULT_WAIT_MS,
  ): Promise<JsOrchestrationStatus> {
    const op = 'waitForStatusChange';
    const instance = requireInstanceId(op, instanceId);
    const seen = requireCount(op, 'lastSeenVersion', lastSeenVersion, 0, instance);
    const poll = Math.max(1, requireCount(op, 'pollIntervalMs', pollIntervalMs, 500, instance));
    const limit = requireCount(op, 'timeoutMs', timeoutMs, DEFAULT_WAIT_MS, instance);
    const deadline = Date.now() + limit;
    const wake = wakeSignal(this.#provider, 'status');
    for (;;) {
      const generation = wake.generation;
      const status = await this.#provider.getInstanceStatus(instance);
      if (status.customStatusVersion > seen || status.status === 'Completed' || status.status === 'Failed') {
        return toJsStatus(status, true);
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw timedOut('waitForStatusChange', instance, limit, status.status);
      await wake.wait(Math.min(poll, remaining), generation);
    }
  }

  // --- key-value store ----------------------------------------------------------------------

  /** Current value of a key of the instance's KV store, or null. */
  async getValue(instanceId: string, key: string): Promise<string | null> {
    const instance = requireInstanceId('getValue', instanceId);
    return this.#provider.getKvValue(instance, requireName('getValue', 'key', key, instance));
  }

  /**
   * Waits until the key exists and returns its value.
   * @throws `Timed out waiting for value '<key>' on instance '<id>'` after `timeoutMs`.
   */
  async waitForValue(instanceId: string, key: string, timeoutMs: number = DEFAULT_WAIT_MS): Promise<string> {
    const instance = requireInstanceId('waitForValue', instanceId);
    const name = requireName('waitForValue', 'key', key, instance);
    const timeout = requireCount('waitForValue', 'timeoutMs', timeoutMs, DEFAULT_WAIT_MS, instance);
    const deadline = Date.now() + timeout;
    const wake = wakeSignal(this.#provider, 'status');
    let pause = FIRST_POLL_MS;
    for (;;) {
      const generation = wake.generation;
      const value = await this.#provider.getKvValue(instance, name);
      if (value !== null) return value;
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new TimeoutError(
          'waitForValue',
          `Timed out waiting for value '${name}' on instance '${instance}'`,
          instance,
          timeout,
        );
      }
      await wake.wait(Math.min(pause, remaining), generation);
      pause = Math.min(pause * 2, MAX_POLL_MS);
    }
  }

  /** Every key and value of the instance's KV store (`{}` when none). */
  async getKvAllValues(instanceId: string): Promise<Record<string, string>> {
    return this.#provider.getKvAllValues(requireInstanceId('getKvAllValues', instanceId));
  }

  // --- schedules ------------------------------------------------------------------------------

  /**
   * Creates a schedule: every time `options.cron` fires, a runtime starts `options.orchestration`
   * as the detached instance `<scheduleId>@<ISO fire time>` (so a repeated fire collapses into one
   * run), applying the overlap and catch-up policies. The schedule runs as the instance
   * `schedule:<scheduleId>` of a built-in orchestration that every Runtime serves.
   * @throws ScheduleError `invalid_cron`, `unknown_timezone`, `invalid_argument` or
   *   `duplicate_schedule` (nothing is written).
   */
  async createSchedule(scheduleId: string, options: ScheduleOptions): Promise<void> {
    await this.#schedules.create(scheduleId, options);
  }

  /**
   * Replaces a schedule's definition (same options as {@link createSchedule}); fires are counted
   * from the update on. @throws ScheduleError as createSchedule, or `schedule_not_found`.
   */
  async updateSchedule(scheduleId: string, options: ScheduleOptions): Promise<void> {
    await this.#schedules.update(scheduleId, options);
  }

  /** Stops firing until {@link resumeSchedule}; fires due meanwhile are skipped. @throws ScheduleError `schedule_not_found`. */
  async pauseSchedule(scheduleId: string): Promise<void> {
    await this.#schedules.command('pauseSchedule', scheduleId, { command: 'pause' });
  }

  /** Fires again from now on. @throws ScheduleError `schedule_not_found`. */
  async resumeSchedule(scheduleId: string): Promise<void> {
    await this.#schedules.command('resumeSchedule', scheduleId, { command: 'resume' });
  }

  /** Starts a run now (overlap policy applies, also while paused). @throws ScheduleError `schedule_not_found`. */
  async triggerSchedule(scheduleId: string): Promise<void> {
    await this.#schedules.command('triggerSchedule', scheduleId, { command: 'trigger' });
  }

  /** Deletes a schedule (its runs are left alone). @throws ScheduleError `schedule_not_found`. */
  async deleteSchedule(scheduleId: string): Promise<void> {
    await this.#schedules.delete(scheduleId);
  }

  /** One schedule with its next fire time and counters. @throws ScheduleError `schedule_not_found`. */
  async getSchedule(scheduleId: string): Promise<ScheduleInfo> {
    return this.#schedules.get(scheduleId);
  }

  /** Every schedule, by id. */
  async listSchedules(): Promise<ScheduleInfo[]> {
    return this.#schedules.list();
  }

  // --- management -----------------------------------------------------------------------------

  async getSystemMetrics(): Promise<JsSystemMetrics> {
    const m = await this.#provider.getSystemMetrics();
    return {
      totalInstances: m.totalInstances,
      totalExecutions: m.totalExecutions,
      runningInstances: m.runningInstances,
      completedInstances: m.completedInstances,
      failedInstances: m.failedInstances,
      totalEvents: m.totalEvents,
    };
  }

  async getQueueDepths(): Promise<JsQueueDepths> {
    const d = await this.#provider.getQueueDepths();
    return { orchestratorQueue: d.orchestratorQueue, workerQueue: d.workerQueue, timerQueue: 0 };
  }

  /** Every instance id, newest first. */
  async listAllInstances(): Promise<string[]> {
    return this.#provider.listInstances();
  }

  /**
   * Instances whose current execution has `status` (`Running`, `Completed`, `Failed` or
   * `ContinuedAsNew`); any other string matches nothing, as in duroxide.
   */
  async listInstancesByStatus(status: string): Promise<string[]> {
    if (typeof status !== 'string')
      throw invalidArgument('listInstancesByStatus', `status must be a string, got ${typeof status}`);
    if (!EXECUTION_STATUSES.has(status)) return [];
    return this.#provider.listInstances({ status: status as ExecutionStatus });
  }

  /** @throws `Instance <id> not found` for an unknown instance. */
  async getInstanceInfo(instanceId: string): Promise<JsInstanceInfo> {
    const instance = requireInstanceId('getInstanceInfo', instanceId);
    const info = await this.#provider.getInstanceInfo(instance);
    if (info === null) throw new NotFoundError('getInstanceInfo', `Instance ${instance} not found`, instance);
    return toJsInstanceInfo(info);
  }

  /** @throws `Execution <n> of instance <id> not found` for an unknown execution. */
  async getExecutionInfo(instanceId: string, executionId: number): Promise<JsExecutionInfo> {
    const instance = requireInstanceId('getExecutionInfo', instanceId);
    const execution = requireExecutionId('getExecutionInfo', executionId, instance);
    const info = await this.#provider.getExecutionInfo(instance, execution);
    if (info === null)
      throw new NotFoundError('getExecutionInfo', `Execution ${execution} of instance ${instance} not found`, instance);
    return toJsExecutionInfo(info);
  }

  /** Execution ids of the instance, ascending. */
  async listExecutions(instanceId: string): Promise<number[]> {
    return this.#provider.listExecutions(requireInstanceId('listExecutions', instanceId));
  }

  /**
   * One page of instances, newest first, filtered by current status, orchestration name and
   * creation time. Pass the returned `nextCursor` back as `cursor` for the next page (null: last page).
   * @throws for a limit outside 1..1000, an unknown status or a cursor this method did not produce.
   */
  async listInstancesPage(filter: InstanceListFilter = {}): Promise<InstanceListPage> {
    const provider = this.#provider;
    if (provider.listInstancesPage === undefined) {
      throw new UnsupportedError(
        'listInstancesPage',
        `listInstancesPage: provider '${provider.name}' cannot page instances`,
      );
    }
    const page = await provider.listInstancesPage(toPageQuery(filter));
    return { items: page.items, nextCursor: page.nextCursor === null ? null : encodeCursor(page.nextCursor) };
  }

  /** Executions started/completed/failed per `bucketMs` bucket since `sinceMs` (epoch ms), up to now. */
  async getThroughput(sinceMs: number, bucketMs: number): Promise<ThroughputBucket[]> {
    const provider = this.#provider;
    if (provider.getThroughput === undefined) {
      throw new UnsupportedError(
        'getThroughput',
        `getThroughput: provider '${provider.name}' cannot report throughput`,
      );
    }
    return provider.getThroughput(sinceMs, bucketMs);
  }

  // --- flow control ------------------------------------------------------------------------------

  /**
   * Limits the activities of `flowKey` across every runtime of the store (replacing its earlier
   * settings). An activity's key is `activity:<name>` unless it was scheduled with
   * `.withFlowKey(key)`.
   * - `maxActive`: how many are queued or running at once. Activities over it wait (parked) and
   *   start, oldest first, as permits come back; 0 pauses the key; raising it starts waiting
   *   activities at once.
   * - `perSecond` and `burst`: a token bucket on the database clock; in any window of W seconds at
   *   most `burst + perSecond * W` activities of the key are dispatched (burst defaults to 1). A
   *   waiting activity becomes fetchable at its token's time, announced to idle runtimes.
   * Returns the limit with its current use.
   * @example await client.setFlowLimit('activity:ChargeCard', { maxActive: 5, perSecond: 20, burst: 5 });
   */
  async setFlowLimit(
    flowKey: string,
    options: { maxActive?: number | null; perSecond?: number | null; burst?: number | null },
  ): Promise<FlowLimitInfo> {
    const provider = this.#flowProvider('setFlowLimit');
    return provider.setFlowLimit!(flowKey, {
      maxActive: options?.maxActive ?? null,
      perSecond: options?.perSecond ?? null,
      burst: options?.burst ?? null,
    });
  }

  /** Every flow limit, by key, with its permits in use (`active`) and waiting activities (`parked`). */
  async getFlowLimits(): Promise<FlowLimitInfo[]> {
    return this.#flowProvider('getFlowLimits').getFlowLimits!();
  }

  /** Removes the limit of `flowKey`; its waiting activities start at once. False when it had none. */
  async deleteFlowLimit(flowKey: string): Promise<boolean> {
    return this.#flowProvider('deleteFlowLimit').deleteFlowLimit!(flowKey);
  }

  #flowProvider(operation: 'setFlowLimit' | 'getFlowLimits' | 'deleteFlowLimit'): Provider {
    const provider = this.#provider;
    if (provider[operation] === undefined) {
      throw new UnsupportedError(operation, `${operation}: provider '${provider.name}' has no flow control`);
    }
    return provider;
  }

  /** The instance and all its sub-orchestrations (root first). @throws for an unknown instance. */
  async getInstanceTree(instanceId: string): Promise<JsInstanceTree> {
    const tree = await this.#provider.getInstanceTree(requireInstanceId('getInstanceTree', instanceId));
    return { rootId: tree.rootId, allIds: tree.allIds, size: tree.allIds.length };
  }

  /**
   * Deletes a root instance with its whole tree of sub-orchestrations, atomically.
   * @throws `Instance <id> not found`; `Cannot delete sub-orchestration <id> directly. Delete the
   * root orchestration instead.`; `Instance <id> is still running. Use force=true or cancel first.`
   * (unless `force`). Force-delete does not stop work in flight; its results are dropped.
   */
  async deleteInstance(instanceId: string, force: boolean = false): Promise<JsDeleteInstanceResult> {
    const instance = requireInstanceId('deleteInstance', instanceId);
    if (typeof force !== 'boolean')
      throw invalidArgument('deleteInstance', `force must be a boolean, got ${typeof force}`, instance);
    return toJsDeleteResult(await this.#provider.deleteInstance(instance, { force }));
  }

  /**
   * Deletes, in one atomic call, the terminal (Completed, Failed, ContinuedAsNew) root instances
   * matching the filter, each with its tree; running ones are skipped.
   */
  async deleteInstanceBulk(filter: JsInstanceFilter = {}): Promise<JsDeleteInstanceResult> {
    return toJsDeleteResult(await this.#provider.deleteInstanceBulk(toInstanceFilter('deleteInstanceBulk', filter)));
  }

  /** Deletes old executions of an instance (never the current one). @throws for an unknown instance. */
  async pruneExecutions(instanceId: string, options: JsPruneOptions = {}): Promise<JsPruneResult> {
    const instance = requireInstanceId('pruneExecutions', instanceId);
    return toJsPruneResult(await this.#provider.pruneExecutions(instance, toPruneOptions('pruneExecutions', options)));
  }

  /** {@link pruneExecutions} for every instance matching the filter, in one call; counts summed. */
  async pruneExecutionsBulk(filter: JsInstanceFilter = {}, options: JsPruneOptions = {}): Promise<JsPruneResult> {
    const op = 'pruneExecutionsBulk';
    return toJsPruneResult(
      await this.#provider.pruneExecutionsBulk(toInstanceFilter(op, filter), toPruneOptions(op, options)),
    );
  }

  /** Size statistics of an instance, or null when it does not exist. */
  async getOrchestrationStats(instanceId: string): Promise<JsSystemStats | null> {
    const stats = await this.#provider.getInstanceStats(requireInstanceId('getOrchestrationStats', instanceId));
    if (stats === null) return null;
    return {
      historyEventCount: stats.historyEventCount,
      historySizeBytes: stats.historySizeBytes,
      queuePendingCount: stats.queuePendingCount,
      kvUserKeyCount: stats.kvUserKeyCount,
      kvTotalValueBytes: stats.kvTotalValueBytes,
    };
  }

  /** Events of one execution, ordered by event id. */
  async readExecutionHistory(instanceId: string, executionId: number): Promise<JsEvent[]> {
    const instance = requireInstanceId('readExecutionHistory', instanceId);
    const execution = requireExecutionId('readExecutionHistory', executionId, instance);
    const events = await this.#provider.readHistory(instance, execution);
    return events.map(toJsEvent);
  }
}

/** Filter of {@link Client.listInstancesPage}; times are epoch ms. */
export interface InstanceListFilter {
  /** `Running`, `Completed`, `Failed` or `ContinuedAsNew` (status of the current execution). */
  status?: string;
  orchestrationName?: string;
  /** Created at or after. */
  createdFrom?: number;
  /** Created strictly before. */
  createdTo?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
  /** Rows per page, 1..1000 (default 50). */
  limit?: number;
}

/** A page of {@link Client.listInstancesPage}. */
export interface InstanceListPage {
  items: InstanceSummary[];
  /** Opaque position of the next page; null on the last page. */
  nextCursor: string | null;
}

function toPageQuery(filter: InstanceListFilter): InstancePageQuery {
  const op = 'listInstancesPage';
  if (filter === null || typeof filter !== 'object') throw invalidArgument(op, 'filter must be an object');
  const limit = filter.limit ?? 50;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_ROWS) {
    throw invalidArgument(op, `limit must be an integer between 1 and ${MAX_PAGE_ROWS}, got ${String(limit)}`);
  }
  const query: InstancePageQuery = { limit };
  if (filter.status !== undefined) {
    if (typeof filter.status !== 'string' || !EXECUTION_STATUSES.has(filter.status)) {
      throw invalidArgument(
        op,
        `status must be one of ${[...EXECUTION_STATUSES].join(', ')}, got ${JSON.stringify(filter.status)}`,
      );
    }
    query.status = filter.status as ExecutionStatus;
  }
  if (filter.orchestrationName !== undefined)
    query.orchestrationName = requireName(op, 'orchestration name', filter.orchestrationName);
  if (filter.createdFrom !== undefined) query.createdFromMs = requireTime(op, 'createdFrom', filter.createdFrom);
  if (filter.createdTo !== undefined) query.createdToMs = requireTime(op, 'createdTo', filter.createdTo);
  if (filter.cursor !== undefined) query.cursor = decodeCursor(op, filter.cursor);
  return query;
}

function requireTime(operation: string, field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw invalidArgument(
      operation,
      `${field} must be epoch milliseconds (a non-negative integer), got ${String(value)}`,
    );
  }
  return value;
}

function encodeCursor(cursor: InstancePageCursor): string {
  return Buffer.from(JSON.stringify([cursor.createdAt, cursor.instanceId]), 'utf8').toString('base64url');
}

function decodeCursor(operation: string, text: unknown): InstancePageCursor {
  const invalid = invalidArgument(operation, 'cursor must be a nextCursor returned by listInstancesPage');
  if (typeof text !== 'string' || !/^[A-Za-z0-9_-]{1,2000}$/.test(text)) throw invalid;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw invalid;
  }
  if (
    !Array.isArray(parsed) ||
    parsed.length !== 2 ||
    !Number.isSafeInteger(parsed[0]) ||
    typeof parsed[1] !== 'string'
  )
    throw invalid;
  return { createdAt: parsed[0] as number, instanceId: requireName(operation, 'cursor instance id', parsed[1]) };
}

function requireExecutionId(operation: string, executionId: unknown, instanceId: string): number {
  if (typeof executionId !== 'number' || !Number.isInteger(executionId) || executionId < 1) {
    throw invalidArgument(operation, `execution id must be a positive integer, got ${String(executionId)}`, instanceId);
  }
  return executionId;
}
