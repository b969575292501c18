/**
 * The boundary between the pure replay engine (src/core) and the runtime (src/runtime).
 *
 * The runtime fetches a batch, checks poison, then calls {@link TurnEngine.runTurn} with a
 * handler resolver; the engine returns the exact effects to acknowledge. The engine does no
 * I/O: time comes in as `nowMs`, traces go out through `trace`.
 */
import type { KvEntry, OrchestrationTurnAck } from './turn-types';
import type { ErrorDetails, HistoryEvent, OrchestratorWorkItem } from './types';

/**
 * A value that crosses into user code untyped: an orchestration's or activity's input, and what
 * a generator receives from `yield`. duroxide's typings make these `any`, so a handler may declare
 * its parameter as any type it likes; Durox keeps that for drop-in compatibility.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the one place the public API is untyped
export type Untyped = any;

/**
 * An orchestration function as registered by users: a sync generator `function*(ctx, input)`
 * or an `async function (ctx, input)`.
 */
// The yielded and returned values are arbitrary user values; `unknown` keeps them honest.
export type OrchestrationFunction<Ctx = unknown> = (
  ctx: Ctx,
  input: Untyped,
) => Generator<unknown, unknown, Untyped> | Promise<unknown>;

/** A handler found in the registry for (name, requested version). */
export interface ResolvedHandler {
  /** The exact semver of the handler that will run. */
  version: string;
  handler: OrchestrationFunction;
}

/**
 * Looks a handler up: `requestedVersion` null means the registry's latest version.
 * Returns null when nothing matches (the turn is then "unregistered").
 */
export type HandlerResolver = (name: string, requestedVersion: string | null) => ResolvedHandler | null;

export type TraceLevel = 'info' | 'warn' | 'error' | 'debug';

/** Receives orchestration traces; the engine never calls it while replaying. */
export type TraceSink = (level: TraceLevel, message: string, fields: Record<string, string | number>) => void;

/** Everything a turn needs; mirrors the fetched OrchestrationItem. */
export interface TurnRequest {
  instanceId: string;
  orchestrationName: string;
  orchestrationVersion: string | null;
  executionId: number;
  history: HistoryEvent[];
  messages: OrchestratorWorkItem[];
  kvSnapshot: Record<string, KvEntry>;
  customStatus: string | null;
  /** Store clock at fetch time: stamps events and computes timer fire times. */
  nowMs: number;
  resolveHandler: HandlerResolver;
  trace: TraceSink;
  /**
   * Async orchestrations only: fail an orchestration that creates a non-durable resource (a
   * timer, file or network I/O) with a message naming it. Off by default (it installs an
   * async_hooks hook while async turns run).
   */
  asyncGuards?: boolean;
}

/** How the turn ended, for metrics and logs. */
export type TurnOutcome =
  | { kind: 'continue' }
  | { kind: 'completed'; output: string }
  | { kind: 'failed'; details: ErrorDetails }
  | { kind: 'continuedAsNew'; input: string }
  /** History was already terminal: the batch is acknowledged with no changes. */
  | { kind: 'discarded' };

export type TurnResult =
  | { kind: 'ack'; ack: OrchestrationTurnAck; outcome: TurnOutcome }
  /** No handler for (name, version): the runtime abandons the batch with backoff. */
  | { kind: 'unregistered'; name: string; version: string | null };

/** The operations the runtime needs from the engine. */
export interface TurnEngine {
  /** Synchronous for generator orchestrations; a promise for async ones (their code must be awaited). */
  runTurn(request: TurnRequest): TurnResult | Promise<TurnResult>;
  /**
   * The ack that fails an instance whose batch exceeded its delivery attempts: synthesises
   * OrchestrationStarted if the history is empty, records OrchestrationFailed{poison} and
   * notifies a parent.
   */
  poisonTurn(
    request: Omit<TurnRequest, 'resolveHandler' | 'trace'>,
    attemptCount: number,
    maxAttempts: number,
  ): OrchestrationTurnAck;
  /**
   * The ack committed instead of `refused` when the store refuses a turn's ack for good (e.g. a
   * payload it rejects): records OrchestrationFailed{infrastructure} after `request.history`,
   * cancels the activities still in flight and notifies a parent, so the same doomed turn is not
   * retried forever (runtime-and-api.md section 1.4, step 9).
   */
  infrastructureFailureTurn(
    request: Pick<TurnRequest, 'instanceId' | 'nowMs' | 'history'>,
    refused: OrchestrationTurnAck,
    message: string,
  ): OrchestrationTurnAck;
}
