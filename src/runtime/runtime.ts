/**
 * The public Runtime (docs/runtime.md, "Start and shutdown"): registries plus the
 * orchestration dispatcher and the activity worker, started and stopped together.
 */
import { randomBytes } from 'node:crypto';
import { turnEngine } from '../core';
import type { AsyncOrchestrationContext } from '../core/async-context';
import type { ScheduledTask } from '../core/descriptors';
import type { OrchestrationContext } from '../core/orchestration-context';
import type { OrchestrationFunction } from '../core/turn-api';
import type { Provider } from '../provider/contract';
import { reportAvailabilityTo } from '../provider/availability';
import { reportWakeupChannelTo } from '../provider/push-wakeups';
import type { ActivityContext } from './activity-context';
import { ActivityWorkerPool } from './activity-worker';
import { FaultLog } from './fault-log';
import { installDefaultLogger, log, RUNTIME_TARGET } from './logger';
import { RuntimeMetrics, type JsMetricsSnapshot } from './metrics';
import { OrchestrationDispatcher } from './orchestration-dispatcher';
import { FIXED, resolveRuntimeOptions, type ResolvedRuntimeOptions, type RuntimeOptions } from './options';
import { ActivityRegistry, DEFAULT_VERSION, OrchestrationRegistry } from './registry';
import { SessionManager } from './session-manager';
import { SCHEDULE_ORCHESTRATION, SCHEDULE_ORCHESTRATION_VERSION } from '../schedules/model';
import { scheduleOrchestration } from '../schedules/schedule-orchestration';
import type { Untyped } from '../core/turn-api';

// Outages and recoveries of the push channel are runtime diagnostics.
reportWakeupChannelTo((level, message) => log(level, RUNTIME_TARGET, message));
// So are the database node's choices and failovers (multi-host connections).
reportAvailabilityTo((level, message, fields) => log(level, RUNTIME_TARGET, message, fields));

/** An activity: receives its context and decoded input; its (awaited) return value is the result. */
export type ActivityHandler<TInput = Untyped, TOutput = unknown> = (
  ctx: ActivityContext,
  input: TInput,
) => TOutput | Promise<TOutput>;

/** An orchestration: a generator that yields tasks created by `ctx` and returns the output. */
export type OrchestrationHandler<TInput = Untyped, TOutput = unknown> = (
  ctx: OrchestrationContext,
  input: TInput,
) => Generator<ScheduledTask, TOutput, Untyped>;

/**
 * An orchestration written as an `async` function: `await` ctx tasks instead of yielding them.
 * It writes the same history as the generator that yields the same calls, and either form can
 * replay the other's history. Await only ctx tasks (or promises built from them).
 */
export type AsyncOrchestrationHandler<TInput = Untyped, TOutput = unknown> = (
  ctx: AsyncOrchestrationContext,
  input: TInput,
) => Promise<TOutput>;

/**
 * What the registration methods accept: a generator or an `async` function. `ctx` is typed for
 * both uses, so an unannotated `async (ctx) => ...` gets awaitable tasks and a `function*`
 * annotated with {@link OrchestrationContext} still fits.
 */
export type AnyOrchestrationHandler<TInput = Untyped, TOutput = unknown> = (
  ctx: AsyncOrchestrationContext & OrchestrationContext,
  input: TInput,
) => Generator<ScheduledTask, TOutput, Untyped> | Promise<TOutput>;

type State = 'new' | 'running' | 'stopped';

/** Runs orchestrations and activities against a provider. */
export class Runtime {
  readonly #provider: Provider;
  readonly #options: ResolvedRuntimeOptions;
  readonly #orchestrations = new OrchestrationRegistry();
  readonly #activities = new ActivityRegistry<ActivityContext>();
  readonly #runtimeId = randomBytes(4).toString('hex');
  #state: State = 'new';
  #metrics: RuntimeMetrics | null = null;
  #dispatcher: OrchestrationDispatcher | null = null;
  #workers: ActivityWorkerPool | null = null;
  #sessions: SessionManager | null = null;

  /** @throws when an option has the wrong type (unknown keys are ignored). */
  constructor(provider: Provider, options?: RuntimeOptions) {
    if (provider === null || typeof provider !== 'object' || typeof provider.fetchOrchestrationItem !== 'function') {
      throw new Error('new Runtime(provider): provider must be a Durox provider (e.g. PostgresProvider)');
    }
    this.#provider = provider;
    this.#options = resolveRuntimeOptions(options);
    // Every runtime runs schedules (Client.createSchedule), so any node can take their turns.
    this.#orchestrations.registerSystem(
      SCHEDULE_ORCHESTRATION,
      SCHEDULE_ORCHESTRATION_VERSION,
      scheduleOrchestration as OrchestrationFunction,
    );
  }

  /** Registers an activity. Registrations after `start()` are ignored. */
  registerActivity<TInput = Untyped, TOutput = unknown>(name: string, fn: ActivityHandler<TInput, TOutput>): void {
    if (this.#state === 'new') this.#activities.register(name, fn);
    else
      log('warn', RUNTIME_TARGET, `registerActivity('${name}') after start() is ignored; register before start()`, {
        activity_name: name,
      });
  }

  /** Same as {@link registerActivity}. */
  registerActivityTyped<TInput = Untyped, TOutput = unknown>(name: string, fn: ActivityHandler<TInput, TOutput>): void {
    this.registerActivity(name, fn);
  }

  /** Registers an orchestration (a generator or an `async` function) as version 1.0.0. */
  registerOrchestration<TInput = Untyped, TOutput = unknown>(
    name: string,
    fn: AnyOrchestrationHandler<TInput, TOutput>,
  ): void {
    this.#register(name, DEFAULT_VERSION, fn);
  }

  /** Same as {@link registerOrchestration}. */
  registerOrchestrationTyped<TInput = Untyped, TOutput = unknown>(
    name: string,
    fn: AnyOrchestrationHandler<TInput, TOutput>,
  ): void {
    this.#register(name, DEFAULT_VERSION, fn);
  }

  /**
   * Registers an orchestration (a generator or an `async` function) under a semver version.
   * Versions of one name must be registered in strictly increasing order (a plain registration
   * counts as 1.0.0); `start()` fails otherwise.
   */
  registerOrchestrationVersioned<TInput = Untyped, TOutput = unknown>(
    name: string,
    version: string,
    fn: AnyOrchestrationHandler<TInput, TOutput>,
  ): void {
    this.#register(name, version, fn);
  }

  /** Same as {@link registerOrchestrationVersioned}. */
  registerOrchestrationVersionedTyped<TInput = Untyped, TOutput = unknown>(
    name: string,
    version: string,
    fn: AnyOrchestrationHandler<TInput, TOutput>,
  ): void {
    this.#register(name, version, fn);
  }

  #register(name: string, version: string, fn: unknown): void {
    if (this.#state === 'new') this.#orchestrations.register(name, version, fn);
    else
      log(
        'warn',
        RUNTIME_TARGET,
        `registering orchestration '${name}' after start() is ignored; register before start()`,
        { orchestration_name: name },
      );
  }

  /**
   * Starts the dispatchers and resolves once they run (it does not wait for shutdown).
   * @throws listing every registration mistake, or when the runtime was already shut down.
   */
  async start(): Promise<void> {
    if (this.#state === 'running') return;
    if (this.#state === 'stopped') {
      throw new Error('Failed to start runtime: it has been shut down; create a new Runtime');
    }
    const problems = [...this.#orchestrations.problems, ...this.#activities.problems];
    const minimumIdle = Math.max(this.#options.workerLockTimeoutMs - FIXED.workerRenewalBufferMs, 1000);
    if (this.#options.sessionIdleTimeoutMs <= minimumIdle) {
      problems.push(
        `sessionIdleTimeoutMs (${this.#options.sessionIdleTimeoutMs}) must exceed ` +
          `${minimumIdle} ms (workerLockTimeoutMs - 5000)`,
      );
    }
    if (problems.length > 0) throw new Error(`Failed to start runtime: ${problems.join('; ')}`);

    installDefaultLogger(this.#options.logFormat, this.#options.logLevel);
    for (const warning of [...this.#orchestrations.warnings, ...this.#activities.warnings])
      log('warn', RUNTIME_TARGET, warning);
    const metrics = new RuntimeMetrics();
    const faults = new FaultLog();
    const deps = { provider: this.#provider, options: this.#options, metrics, faults };
    this.#dispatcher = new OrchestrationDispatcher({
      ...deps,
      engine: turnEngine,
      orchestrations: this.#orchestrations,
    });
    const sessions = new SessionManager(this.#provider, { ...this.#options, runtimeId: this.#runtimeId }, faults);
    this.#sessions = sessions;
    this.#workers = new ActivityWorkerPool({
      ...deps,
      activities: this.#activities,
      runtimeId: this.#runtimeId,
      sessions,
    });
    this.#metrics = metrics;
    this.#state = 'running';
    this.#dispatcher.handActivitiesTo(this.#workers);
    this.#workers.handTurnsTo(this.#dispatcher);
    this.#dispatcher.start();
    this.#workers.start();
    sessions.start(this.#options.tagFilter.mode === 'none' ? 0 : this.#options.workerConcurrency);
  }

  /**
   * Stops fetching new work, waits up to `timeoutMs` (default 1000; 0 = do not wait) for turns
   * and activities in progress, then gives back the activities still running (they run again
   * elsewhere; their late results are dropped). Returns early when nothing is in flight.
   */
  async shutdown(timeoutMs?: number): Promise<void> {
    if (this.#state !== 'running' || this.#dispatcher === null || this.#workers === null) return;
    this.#state = 'stopped';
    this.#metrics = null;
    const timeout = typeof timeoutMs === 'number' && timeoutMs > 0 ? timeoutMs : timeoutMs === 0 ? 0 : 1000;
    await Promise.all([this.#dispatcher.drain(timeout), this.#workers.drain(timeout)]);
    await this.#workers.releaseHeld();
    this.#sessions?.stop();
  }

  /** Counters since `start()`; null before `start()` and after `shutdown()`. */
  metricsSnapshot(): JsMetricsSnapshot | null {
    return this.#metrics === null ? null : this.#metrics.snapshot();
  }
}
