/**
 * Drives an `async` orchestration so that it writes exactly the history its generator twin
 * writes. Each `ctx` call starts its task at once (the action is emitted when it is called) and
 * returns the descriptor made thenable. The engine then settles tasks one at a time: after each
 * delivery to one awaiting continuation it drains the microtask queue (async-scope.ts) before
 * the next one, so the interleaving of branches depends only on the order of history, never on
 * how completions were batched into turns or on how many `await`s a branch crosses.
 *
 * A task only turns into a promise when something awaits it (calls `then`); a task nobody
 * awaits never rejects, so a failing fire-and-forget call cannot raise an unhandled rejection.
 */
import { decodeOrchestrationInput, errorMessageForGenerator } from './codec';
import { drain, enterDrive, leaveDrive, runInScope, type DriveScope } from './async-scope';
import type { ScheduledTask } from './descriptors';
import { applicationError, nondeterminismError } from './error-details';
import { taskFailure } from './thrown';
import { describeThrown, returnedResult, typedValue, type DriverResult } from './generator-driver';
import { OrchestrationContext, type OrchestrationContextInfo, type TaskStarter } from './orchestration-context';
import type { Outcome, ReplayState } from './replay-state';
import { RetryTask } from './composites';
import { CompletionTask, DetachedStartTask, type Task } from './tasks';
import { FatalStepError, TaskBuilder } from './task-builder';
import type { OrchestrationFunction } from './turn-api';

type Settle = { resolve: (value: unknown) => void; reject: (error: unknown) => void };

/** A started task: the descriptor the code holds, the task behind it, and who awaits it. */
interface Handle {
  readonly descriptor: ScheduledTask;
  readonly task: Task;
  outcome: Outcome | undefined;
  awaiting: Settle[];
}

/** Whether a registered function is an `async` function (drives it with {@link AsyncDriver}). */
export function isAsyncFunction(fn: unknown): boolean {
  return Object.prototype.toString.call(fn) === '[object AsyncFunction]';
}

/**
 * What the chaining setters of a started descriptor (`withTag`, `withFlowKey`, `withPriority`)
 * must also reach: the action its task emitted already (the code calls them right after the
 * ctx call, when the action is emitted but not recorded yet).
 */
interface ChainTarget {
  tag?: (tag: string) => void;
  flowKey?: (key: string) => void;
  priority?: (level: number) => void;
}

/** The chaining setters and the descriptor field each sets (the {@link ChainTarget} it reaches). */
const CHAINED = { withTag: 'tag', withFlowKey: 'flowKey', withPriority: 'priority' } as const;

/**
 * Wraps the chaining setters `descriptor` has so that each, after setting its field (and checking
 * its argument), hands the field's value to `target`. Each property keeps its attributes, so a
 * non-enumerable setter stays non-enumerable and descriptors still compare by their data.
 */
function followChainedSetters(descriptor: ScheduledTask, target: ChainTarget): void {
  const fields = descriptor as unknown as Record<string, unknown>;
  for (const [method, field] of Object.entries(CHAINED) as Array<[string, keyof ChainTarget]>) {
    const property = Object.getOwnPropertyDescriptor(descriptor, method);
    const setter = property?.value as ((...args: unknown[]) => unknown) | undefined;
    const reach = target[field] as ((value: unknown) => void) | undefined;
    if (typeof setter !== 'function' || reach === undefined) continue;
    Object.defineProperty(descriptor, method, {
      ...property,
      value: (...args: unknown[]) => {
        setter.apply(descriptor, args);
        reach(fields[field]);
        return descriptor;
      },
    });
  }
}

/**
 * The async counterpart of the generator driver: starts ctx tasks as the code creates them
 * ({@link TaskStarter}), settles them one at a time when polled, and receives what the
 * process-level hooks attribute to this drive ({@link DriveScope}).
 */
export class AsyncDriver implements TaskStarter, DriveScope {
  /** Set once the function settled, or the drive failed. */
  result: DriverResult | null = null;
  readonly guarded: boolean;
  private readonly ctx: OrchestrationContext;
  private readonly builder: TaskBuilder;
  private readonly handles = new WeakMap<object, Handle>();
  /** Started tasks not settled yet, in creation order (the order they are settled in). */
  private readonly unsettled: Handle[] = [];
  private started = false;
  /** A failure found while the code ran (invalid task, non-durable resource); applied at the next check. */
  private pendingFailure: DriverResult | null = null;

  constructor(
    private readonly handler: OrchestrationFunction,
    info: OrchestrationContextInfo,
    private readonly state: ReplayState,
    private readonly rawInput: string,
    options: { guarded: boolean },
  ) {
    this.guarded = options.guarded;
    this.ctx = new OrchestrationContext(info, state, this);
    this.builder = new TaskBuilder(state, (descriptor) => this.handles.get(descriptor)?.task);
  }

  /** Turns on the process-level tracking for the duration of the turn; pair with {@link leave}. */
  enter(): void {
    enterDrive();
  }

  leave(): void {
    leaveDrive();
  }

  // --- TaskStarter: called by ctx methods while the code runs ----------------------------------

  start<D extends ScheduledTask>(descriptor: D): D {
    let task: Task;
    try {
      task = this.builder.build(descriptor);
    } catch (error) {
      if (!(error instanceof FatalStepError)) throw error;
      // The code may catch what it is thrown; the orchestration fails regardless, like a generator's.
      this.pendingFailure ??= { kind: 'failed', details: error.details };
      throw new Error(error.message, { cause: error });
    }
    const handle: Handle = { descriptor, task, outcome: undefined, awaiting: [] };
    this.handles.set(descriptor, handle);
    this.unsettled.push(handle);
    if (task instanceof RetryTask) {
      // Every attempt of a retry runs under the key and level given (the first one is emitted already).
      followChainedSetters(descriptor, {
        flowKey: (key) => task.setFlowKey(key),
        priority: (level) => task.setPriority(level),
      });
    } else if (task instanceof CompletionTask || task instanceof DetachedStartTask) {
      const { state } = this;
      const { token } = task;
      followChainedSetters(descriptor, {
        tag: (tag) => state.retag(token, tag),
        flowKey: (key) => state.setFlowKey(token, key),
        priority: (level) => state.setPriority(token, level),
      });
    }
    Object.defineProperty(descriptor, 'then', {
      configurable: true,
      enumerable: false,
      value: (onFulfilled?: (value: unknown) => unknown, onRejected?: (error: unknown) => unknown) =>
        new Promise((resolve, reject) => this.await(handle, { resolve, reject })).then(onFulfilled, onRejected),
    });
    return descriptor;
  }

  private await(handle: Handle, settle: Settle): void {
    if (handle.outcome === undefined) handle.awaiting.push(settle);
    else this.deliver(handle, settle);
  }

  private deliver(handle: Handle, settle: Settle): void {
    const outcome = handle.outcome!;
    if (outcome.ok) settle.resolve(typedValue(handle.descriptor, outcome.value));
    else settle.reject(taskFailure(errorMessageForGenerator(outcome.error)));
  }

  // --- DriveScope: what the process-level hooks attribute to this drive -----------------------

  foreignResource(what: string, where: string): void {
    if (this.state.isSealed() || this.result !== null) return;
    this.pendingFailure ??= {
      kind: 'failed',
      details: nondeterminismError(
        `orchestration '${this.ctx.orchestrationName}' awaited ${what}, created at ${where}; ` +
          'only ctx tasks can be awaited (their results come from history), so this await cannot be replayed',
      ),
    };
  }

  unhandledRejection(reason: unknown): void {
    // Logged, not failed: whether a rejection is still unhandled when Node checks depends on where
    // a turn ends, which must never change an orchestration's outcome.
    this.state.log(
      'error',
      `unhandled rejection in orchestration code (ignored; await or catch it): ${describeThrown(reason)}`,
    );
  }

  // --- driving --------------------------------------------------------------------------------

  /** Runs the code until nothing settled can move it: the async counterpart of the generator poll. */
  async poll(): Promise<void> {
    if (this.result !== null) return;
    if (!this.started) {
      this.started = true;
      this.run();
    }
    await this.quiesce();
    while (this.result === null) {
      const handle = this.nextSettled();
      if (handle === undefined) return;
      // One awaiting continuation at a time, each run to quiescence: a branch's number of
      // awaits cannot reorder it against another branch resumed by the same completion.
      for (const settle of handle.awaiting.splice(0)) {
        this.deliver(handle, settle);
        await this.quiesce();
        if (this.result !== null) return;
      }
    }
  }

  /** The first started task (creation order) that has settled since the last look, or undefined. */
  private nextSettled(): Handle | undefined {
    for (let i = 0; i < this.unsettled.length; i++) {
      const handle = this.unsettled[i];
      const polled = handle.task.poll();
      if (!polled.done) continue;
      this.unsettled.splice(i, 1);
      handle.outcome = polled.outcome;
      if (handle.awaiting.length > 0) return handle;
      i--;
    }
    return undefined;
  }

  private run(): void {
    let returned: unknown;
    try {
      const input = decodeOrchestrationInput(this.rawInput);
      returned = runInScope(this, () => this.handler(this.ctx, input));
    } catch (error) {
      this.result = { kind: 'failed', details: applicationError('OrchestrationFailed', describeThrown(error)) };
      return;
    }
    // The engine's own reactions to the function's promise: it never rejects unhandled.
    Promise.resolve(returned).then(
      (value) => this.settleFunction(returnedResult(value)),
      (error) =>
        this.settleFunction({
          kind: 'failed',
          details: applicationError('OrchestrationFailed', describeThrown(error)),
        }),
    );
  }

  private settleFunction(result: DriverResult): void {
    // A failure found while the code ran wins: the error it threw at the code says less.
    if (this.result === null && !this.state.isSealed()) this.result = this.pendingFailure ?? result;
  }

  private async quiesce(): Promise<void> {
    await drain();
    if (this.pendingFailure !== null) this.result = this.pendingFailure;
  }

  /**
   * At the end of a turn: a function that has not settled and awaits no started task can never
   * be resumed by history, so it awaits something that is not durable.
   */
  stuckResult(): DriverResult | null {
    if (this.result !== null || this.state.continueAsNew !== null) return null;
    if (this.unsettled.some((handle) => handle.awaiting.length > 0)) return null;
    return {
      kind: 'failed',
      details: nondeterminismError(
        `orchestration '${this.ctx.orchestrationName}' is awaiting something that is not a ctx task ` +
          ('(a promise no history event can settle, e.g. a timer, I/O, or a promise that ' +
            'never settles); await only ctx tasks'),
      ),
    };
  }
}
