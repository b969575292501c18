/**
 * Drives an orchestration generator (docs/replay.md, "Generators and async functions"): each yielded descriptor
 * becomes a task; when the task settles the generator is resumed with `next(value)` or
 * `throw(new Error(message))`. Driving is synchronous and stops at the first unsettled task.
 */
import { decodeOrchestrationInput, decodeTypedValue, errorMessageForGenerator } from './codec';
import { describeYielded, isScheduledTask, type ScheduledTask } from './descriptors';
import { applicationError } from './error-details';
import type { OrchestrationContext } from './orchestration-context';
import { CompositionError, FatalStepError, type TaskBuilder } from './task-builder';
import type { Task } from './tasks';
import type { OrchestrationFunction } from './turn-api';
import { taskFailure, thrownDescription } from './thrown';
import type { ErrorDetails } from './types';

/** How the generator ended. */
export type DriverResult = { kind: 'returned'; output: string } | { kind: 'failed'; details: ErrorDetails };

type Step = { ok: true; result: IteratorResult<unknown, unknown> } | { ok: false; error: unknown };

/**
 * The message of an uncaught orchestration error: `String(e.stack || e)` as duroxide writes it,
 * without Durox's own frames; non-Error values readably (JSON for plain objects).
 */
export function describeThrown(error: unknown): string {
  return thrownDescription(error);
}

/** Applies the typed variants' second parse to a settled top-level value. */
export function typedValue(task: ScheduledTask, value: unknown): unknown {
  if (!('_typed' in task) || task._typed !== true) return value;
  switch (task.type) {
    case 'activity':
    case 'activityWithRetry':
    case 'subOrchestration':
    case 'subOrchestrationWithId':
      return decodeTypedValue(value);
    case 'join':
      return (value as Array<{ ok?: unknown; err?: unknown }>).map((entry) =>
        'ok' in entry ? { ok: decodeTypedValue(entry.ok) } : { err: decodeTypedValue(entry.err) },
      );
    case 'select': {
      const race = value as { index: number; value: unknown };
      return { index: race.index, value: decodeTypedValue(race.value) };
    }
    default:
      return value;
  }
}

/** The result of an orchestration that returned `value`: its JSON output, or a failure when it has none. */
export function returnedResult(value: unknown): DriverResult {
  let output: string | undefined;
  try {
    output = JSON.stringify(value ?? null);
  } catch (error) {
    return {
      kind: 'failed',
      details: applicationError(
        'OrchestrationFailed',
        `orchestration output is not JSON-serialisable: ${describeThrown(error)}`,
      ),
    };
  }
  // JSON.stringify returns undefined for functions and symbols.
  return { kind: 'returned', output: output ?? 'null' };
}

/** Drives a generator orchestration synchronously. */
export class GeneratorDriver {
  /** Set once the generator returned or failed. */
  result: DriverResult | null = null;
  private generator: Generator<unknown, unknown, unknown> | null = null;
  private current: { task: Task; descriptor: ScheduledTask } | null = null;

  constructor(
    private readonly handler: OrchestrationFunction,
    private readonly ctx: OrchestrationContext,
    private readonly rawInput: string,
    private readonly builder: TaskBuilder,
  ) {}

  /** Runs the code as far as settled results allow. */
  poll(): void {
    if (this.result) return;
    let step: Step;
    if (!this.generator) {
      const generator = this.create();
      if (!generator) return;
      this.generator = generator;
      step = this.resume(() => generator.next());
    } else {
      const next = this.resumeCurrent();
      if (!next) return;
      step = next;
    }
    this.advance(step);
  }

  private create(): Generator<unknown, unknown, unknown> | null {
    try {
      const input = decodeOrchestrationInput(this.rawInput);
      const generator = this.handler(this.ctx, input) as unknown;
      if (typeof generator !== 'object' || generator === null || typeof (generator as Generator).next !== 'function') {
        this.fail(
          applicationError(
            'OrchestrationFailed',
            `orchestration '${this.ctx.orchestrationName}' must be a generator function ` +
              `(function*) or an async function, it returned ${describeYielded(generator)}`,
          ),
        );
        return null;
      }
      return generator as Generator<unknown, unknown, unknown>;
    } catch (error) {
      this.fail(applicationError('OrchestrationFailed', describeThrown(error)));
      return null;
    }
  }

  private resume(run: () => IteratorResult<unknown, unknown>): Step {
    try {
      return { ok: true, result: run() };
    } catch (error) {
      return { ok: false, error };
    }
  }

  /** Feeds steps until a yielded task is pending or the generator ends. */
  private advance(first: Step): void {
    let step = first;
    for (;;) {
      if (!step.ok) return this.fail(applicationError('OrchestrationFailed', describeThrown(step.error)));
      if (step.result.done) return this.complete(step.result.value);
      const yielded = step.result.value;
      if (!isScheduledTask(yielded)) {
        return this.fail(
          applicationError(
            'OrchestrationFailed',
            `invalid step result: orchestration yielded ${describeYielded(yielded)}; yield ` +
              `a task created by a ctx method`,
          ),
        );
      }
      let task: Task;
      try {
        task = this.builder.build(yielded);
      } catch (error) {
        if (error instanceof FatalStepError) return this.fail(error.details);
        if (!(error instanceof CompositionError)) throw error;
        const generator = this.generator!;
        step = this.resume(() => generator.throw(error));
        continue;
      }
      this.current = { task, descriptor: yielded };
      const next = this.resumeCurrent();
      if (!next) return;
      step = next;
    }
  }

  /** Resumes the generator with the current task's outcome, or returns null while it is pending. */
  private resumeCurrent(): Step | null {
    const { task, descriptor } = this.current!;
    const settled = task.poll();
    if (!settled.done) return null;
    const generator = this.generator!;
    const outcome = settled.outcome;
    return outcome.ok
      ? this.resume(() => generator.next(typedValue(descriptor, outcome.value)))
      : this.resume(() => generator.throw(taskFailure(errorMessageForGenerator(outcome.error))));
  }

  private complete(value: unknown): void {
    this.result = returnedResult(value);
  }

  private fail(details: ErrorDetails): void {
    this.result = { kind: 'failed', details };
  }
}
