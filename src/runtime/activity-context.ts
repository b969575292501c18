/** The context handed to activity functions (docs/runtime.md, "The activity worker"). */
import { Client } from '../client/client';
import type { Provider } from '../provider/contract';
import { ACTIVITY_TARGET, log, type LogLevel } from './logger';

/** Set by the worker when the activity's lock is lost (cancelled, race loser or expired). */
export class CancellationToken {
  private cancelled = false;

  cancel(): void {
    this.cancelled = true;
  }

  get isCancelled(): boolean {
    return this.cancelled;
  }
}

/** What the worker knows about one activity execution. */
export interface ActivityContextInit {
  instanceId: string;
  executionId: number;
  orchestrationName: string;
  orchestrationVersion: string;
  activityName: string;
  activityId: number;
  workerId: string;
  sessionId: string | null;
  tag: string | null;
  provider: Provider;
  cancellation: CancellationToken;
}

/** Identity and services of one running activity. */
export class ActivityContext {
  /** Instance that scheduled the activity. */
  readonly instanceId: string;
  /** Execution of that instance (changes after continue-as-new). */
  readonly executionId: number;
  /** Name of the scheduling orchestration, or `unknown`. */
  readonly orchestrationName: string;
  /** Version of the scheduling orchestration, or `unknown`. */
  readonly orchestrationVersion: string;
  /** Registered name of this activity. */
  readonly activityName: string;
  /** `work-<slot>-<runtime id or workerNodeId>`. */
  readonly workerId: string;
  /** Session the activity was scheduled on, or null. */
  readonly sessionId: string | null;
  readonly #tag: string | null;
  readonly #activityId: number;
  readonly #provider: Provider;
  readonly #cancellation: CancellationToken;

  constructor(init: ActivityContextInit) {
    this.instanceId = init.instanceId;
    this.executionId = init.executionId;
    this.orchestrationName = init.orchestrationName;
    this.orchestrationVersion = init.orchestrationVersion;
    this.activityName = init.activityName;
    this.workerId = init.workerId;
    this.sessionId = init.sessionId;
    this.#tag = init.tag;
    this.#activityId = init.activityId;
    this.#provider = init.provider;
    this.#cancellation = init.cancellation;
  }

  /** Routing tag the activity was scheduled with, or null. */
  tag(): string | null {
    return this.#tag;
  }

  /**
   * True once the activity's lock was lost: its orchestration finished or was cancelled, it lost
   * a race, or its lock expired. Poll it in long loops; a result returned afterwards is dropped.
   */
  isCancelled(): boolean {
    return this.#cancellation.isCancelled;
  }

  /** A Client on the same provider, to start orchestrations or raise events from an activity. */
  getClient(): Client | null {
    return new Client(this.#provider);
  }

  /** Logs at info level (activity traces are never suppressed). */
  traceInfo(message: unknown): void {
    this.trace('info', message);
  }

  traceWarn(message: unknown): void {
    this.trace('warn', message);
  }

  traceError(message: unknown): void {
    this.trace('error', message);
  }

  traceDebug(message: unknown): void {
    this.trace('debug', message);
  }

  private trace(level: LogLevel, message: unknown): void {
    log(level, ACTIVITY_TARGET, String(message), {
      instance_id: this.instanceId,
      execution_id: this.executionId,
      orchestration_name: this.orchestrationName,
      orchestration_version: this.orchestrationVersion,
      activity_name: this.activityName,
      activity_id: this.#activityId,
      worker_id: this.workerId,
    });
  }
}
