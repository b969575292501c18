/**
 * Turns a yielded descriptor into a task, emitting its primitive actions in argument order
 * (join members in order, race: first member first). Validates composition rules of section 4.6.
 */
import { decodeResult, encodeValue } from './codec';
import { JoinTask, RaceTask, RetryTask, type RetrySpec } from './composites';
import { describeYielded, isScheduledTask, type ScheduledTask } from './descriptors';
import { applicationError } from './error-details';
import { isPriority, priorityProblem } from './priority';
import type { ReplayState } from './replay-state';
import { SYSCALL_GET_KV_VALUE, SYSCALL_NEW_GUID, SYSCALL_UTC_NOW_MS } from './system-activities';
import {
  CompletionTask,
  DequeueTask,
  DetachedStartTask,
  NeverTask,
  SettledTask,
  WaitEventTask,
  decodeJson,
  type Decoder,
  type Task,
} from './tasks';
import type { ErrorDetails } from './types';

/** A composition error: thrown into the generator (user code may catch it). */
export class CompositionError extends Error {}

/** A step the engine cannot execute: fails the orchestration outright. */
export class FatalStepError extends Error {
  constructor(readonly details: ErrorDetails) {
    super(details.category === 'application' ? details.message : 'fatal step');
  }
}

/** Where a descriptor appears: yielded directly, or as a member of `all`/`race`. */
type Placement = 'top' | 'join' | 'select';

const decodeKvLookup: Decoder = (raw) => {
  if (raw === null) return null;
  const value = decodeResult(raw);
  return value === null || typeof value === 'string' ? value : raw;
};
const decodeUtcNow: Decoder = (raw) => Number(raw);
const decodeRaw: Decoder = (raw) => raw;
const decodeNull: Decoder = () => null;

function invalid(message: string): FatalStepError {
  return new FatalStepError(applicationError('OrchestrationFailed', `invalid step result: ${message}`));
}

function requireString(task: ScheduledTask, field: string): string {
  const value = (task as unknown as Record<string, unknown>)[field];
  if (typeof value !== 'string')
    throw invalid(`'${task.type}' task needs a string '${field}', got ${describeYielded(value)}`);
  return value;
}

function optionalString(task: ScheduledTask, field: string): string | null {
  const value = (task as unknown as Record<string, unknown>)[field];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string')
    throw invalid(`'${task.type}' task needs a string '${field}', got ${describeYielded(value)}`);
  return value;
}

/** The `priority` of a descriptor (set by `withPriority`, or by hand on a plain object), or null. */
function optionalPriority(task: ScheduledTask): number | null {
  const value = (task as unknown as Record<string, unknown>).priority;
  if (value === undefined || value === null) return null;
  if (!isPriority(value)) throw invalid(`'${task.type}' task: ${priorityProblem(value)}`);
  return value;
}

function validDelay(delayMs: unknown, what: string): number {
  if (typeof delayMs !== 'number' || !Number.isInteger(delayMs) || delayMs < 0) {
    throw invalid(`${what} must be a non-negative integer number of milliseconds, got ${describeYielded(delayMs)}`);
  }
  return delayMs;
}

/** Descriptors that only run when yielded or awaited directly, never inside `all`/`race`. */
const TOP_LEVEL_ONLY: ReadonlySet<ScheduledTask['type']> = new Set([
  'orchestration',
  'orchestrationVersioned',
  'newGuid',
  'utcNow',
  'continueAsNew',
  'continueAsNewVersioned',
]);

export class TaskBuilder {
  /**
   * @param started finds the task of a descriptor that is already running (async
   *   orchestrations start tasks when they are created, so `all`/`race` reuse them).
   */
  constructor(
    private readonly state: ReplayState,
    private readonly started: (task: ScheduledTask) => Task | undefined = () => undefined,
  ) {}

  /** Builds the task for a yielded descriptor (validated by the caller with isScheduledTask). */
  build(task: ScheduledTask, placement: Placement = 'top'): Task {
    if (placement !== 'top' && TOP_LEVEL_ONLY.has(task.type)) return this.unsupported(placement);
    return this.started(task) ?? this.create(task);
  }

  private create(task: ScheduledTask): Task {
    switch (task.type) {
      case 'activity':
        return this.activity(
          requireString(task, 'name'),
          requireString(task, 'input'),
          optionalString(task, 'sessionId'),
          optionalString(task, 'tag'),
          decodeJson,
          optionalString(task, 'flowKey'),
          optionalPriority(task),
        );
      case 'activityWithRetry':
        return this.retry(
          task.retry,
          requireString(task, 'name'),
          requireString(task, 'input'),
          optionalString(task, 'sessionId'),
          optionalString(task, 'flowKey'),
          optionalPriority(task),
        );
      case 'timer':
        return this.timer(validDelay(task.delayMs, 'timer delayMs'));
      case 'waitEvent':
        return new WaitEventTask(this.state, this.state.emit({ kind: 'waitEvent', name: requireString(task, 'name') }));
      case 'dequeueEvent':
        return new DequeueTask(
          this.state,
          this.state.emit({ kind: 'dequeue', name: requireString(task, 'queueName') }),
        );
      case 'getValueFromInstance': {
        const input = encodeValue({ instanceId: requireString(task, 'instanceId'), key: requireString(task, 'key') });
        return this.activity(SYSCALL_GET_KV_VALUE, input, null, null, decodeKvLookup);
      }
      case 'subOrchestration':
      case 'subOrchestrationWithId':
      case 'subOrchestrationVersioned':
      case 'subOrchestrationVersionedWithId': {
        const token = this.state.emit({
          kind: 'subOrchestration',
          name: requireString(task, 'name'),
          instanceId: task.type.endsWith('WithId') ? requireString(task, 'instanceId') : null,
          version: optionalString(task, 'version'),
          input: requireString(task, 'input'),
          flowKey: optionalString(task, 'flowKey'),
          priority: optionalPriority(task),
        });
        return new CompletionTask(this.state, token, decodeJson, 'subOrchestration');
      }
      case 'orchestration':
      case 'orchestrationVersioned': {
        const token = this.state.emit({
          kind: 'detached',
          name: requireString(task, 'name'),
          instanceId: requireString(task, 'instanceId'),
          version: optionalString(task, 'version'),
          input: requireString(task, 'input'),
          flowKey: optionalString(task, 'flowKey'),
          priority: optionalPriority(task),
        });
        return new DetachedStartTask(token);
      }
      case 'newGuid':
        return this.activity(SYSCALL_NEW_GUID, '', null, null, decodeRaw);
      case 'utcNow':
        return this.activity(SYSCALL_UTC_NOW_MS, '', null, null, decodeUtcNow);
      case 'continueAsNew':
      case 'continueAsNewVersioned':
        this.state.continueAsNew ??= { input: requireString(task, 'input'), version: optionalString(task, 'version') };
        return new NeverTask();
      case 'join':
        return new JoinTask(this.members(task.tasks, 'join').map((member) => this.build(member, 'join')));
      case 'select': {
        const members = this.members(task.tasks, 'select');
        if (members.length !== 2) throw new CompositionError('select currently supports exactly 2 tasks');
        const first = this.build(members[0], 'select');
        return new RaceTask([first, this.build(members[1], 'select')]);
      }
    }
  }

  private members(tasks: unknown, kind: 'join' | 'select'): ScheduledTask[] {
    if (!Array.isArray(tasks)) throw invalid(`'${kind}' task needs an array of tasks, got ${describeYielded(tasks)}`);
    for (const member of tasks) {
      if (!isScheduledTask(member)) throw invalid(`member of '${kind}' is not a task: ${describeYielded(member)}`);
      if (member.type === 'join' || member.type === 'select') {
        throw new CompositionError(`nested join/select inside ${kind} is not supported`);
      }
    }
    return tasks as ScheduledTask[];
  }

  private unsupported(placement: 'join' | 'select'): Task {
    return placement === 'join'
      ? new SettledTask({ ok: false, error: encodeValue('unsupported task in join') })
      : new SettledTask({ ok: true, value: 'unsupported task in select' });
  }

  private activity(
    name: string,
    input: string,
    sessionId: string | null,
    tag: string | null,
    decode: Decoder,
    flowKey: string | null = null,
    priority: number | null = null,
  ): Task {
    const token = this.state.emit({ kind: 'activity', name, input, sessionId, tag, flowKey, priority });
    return new CompletionTask(this.state, token, decode, 'activity');
  }

  private timer(delayMs: number): Task {
    return new CompletionTask(this.state, this.state.emit({ kind: 'timer', delayMs }), decodeNull, null);
  }

  private retry(
    retry: unknown,
    name: string,
    input: string,
    sessionId: string | null,
    flowKey: string | null,
    priority: number | null,
  ): Task {
    if (typeof retry !== 'object' || retry === null)
      throw invalid(`'activityWithRetry' task needs a retry policy, got ${describeYielded(retry)}`);
    const policy = retry as Record<string, unknown>;
    const maxAttempts =
      policy.maxAttempts === undefined || policy.maxAttempts === null ? 3 : Number(policy.maxAttempts);
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
      throw new FatalStepError(
        applicationError('Panicked', `RetryPolicy: maxAttempts must be at least 1 (got ${String(policy.maxAttempts)})`),
      );
    }
    const rawTimeout = policy.totalTimeoutMs ?? policy.timeoutMs;
    const timeoutMs =
      rawTimeout === undefined || rawTimeout === null || rawTimeout === 0
        ? null
        : validDelay(rawTimeout, 'retry timeout');
    const spec: RetrySpec = {
      name,
      sessionId,
      maxAttempts,
      timeoutMs,
      backoff: typeof policy.backoff === 'string' ? policy.backoff : undefined,
      flowKey,
      priority,
    };
    return new RetryTask(this.state, spec, {
      // Each attempt reads the spec's flow key and level: withFlowKey / withPriority on a started
      // retry (async orchestrations) update it for the attempts still to come (RetryTask).
      activity: () => this.activity(name, input, sessionId, null, decodeJson, spec.flowKey, spec.priority),
      timer: (delayMs) => this.timer(delayMs),
    });
  }
}
