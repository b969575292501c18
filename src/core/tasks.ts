/**
 * Primitive tasks: the futures behind single descriptors. A task is polled by the generator
 * driver; it settles when the replay state holds its result. Dropping a pending task leaves a
 * breadcrumb (except timers, which are never cancelled).
 */
import { decodeResult } from './codec';
import type { DroppableKind, Outcome, RawResult, ReplayState } from './replay-state';

export type PollResult = { done: false } | { done: true; outcome: Outcome };

export const PENDING: PollResult = { done: false };

export interface Task {
  poll(): PollResult;
  /** The code no longer waits for this task (race loser). */
  drop(): void;
}

/** Decodes a successful raw result into the value the generator receives. */
export type Decoder = (raw: string | null) => unknown;

export const decodeJson: Decoder = (raw) => (raw === null ? null : decodeResult(raw));

function settle(result: RawResult, decode: Decoder): PollResult {
  return {
    done: true,
    outcome: result.ok ? { ok: true, value: decode(result.raw) } : { ok: false, error: result.error },
  };
}

/** Activity or sub-orchestration: settles with the completion delivered to its token. */
export class CompletionTask implements Task {
  constructor(
    private readonly state: ReplayState,
    readonly token: number,
    private readonly decode: Decoder,
    private readonly dropKind: DroppableKind | null,
  ) {}

  poll(): PollResult {
    const result = this.state.results.get(this.token);
    return result ? settle(result, this.decode) : PENDING;
  }

  drop(): void {
    if (this.dropKind !== null && !this.state.results.has(this.token)) this.state.drop(this.token, this.dropKind);
  }
}

/** External event subscription: settles with the event delivered to it by position. */
export class WaitEventTask implements Task {
  constructor(
    private readonly state: ReplayState,
    readonly token: number,
  ) {}

  poll(): PollResult {
    const arrival = this.state.externalArrival(this.token);
    return arrival === undefined ? PENDING : { done: true, outcome: { ok: true, value: decodeResult(arrival) } };
  }

  drop(): void {
    if (this.state.externalArrival(this.token) === undefined) this.state.drop(this.token, 'waitEvent');
  }
}

/** Queue subscription: once bound, takes the oldest unconsumed message of its queue. */
export class DequeueTask implements Task {
  private message: string | undefined;

  constructor(
    private readonly state: ReplayState,
    readonly token: number,
  ) {}

  poll(): PollResult {
    this.message ??= this.state.dequeue(this.token);
    return this.message === undefined
      ? PENDING
      : { done: true, outcome: { ok: true, value: decodeResult(this.message) } };
  }

  drop(): void {
    if (this.message === undefined) this.state.drop(this.token, 'dequeue');
  }
}

/** A task that is settled from the start (detached start, unsupported composite member). */
export class SettledTask implements Task {
  constructor(private readonly outcome: Outcome) {}
  poll(): PollResult {
    return { done: true, outcome: this.outcome };
  }
  drop(): void {}
}

/**
 * A detached start: settled (`null`) at once, with the token of its action, which `withFlowKey` /
 * `withPriority` on a started (async) descriptor still reach until the action is recorded.
 */
export class DetachedStartTask extends SettledTask {
  constructor(readonly token: number) {
    super({ ok: true, value: null });
  }
}

/** Continue-as-new: never resumes the generator. */
export class NeverTask implements Task {
  poll(): PollResult {
    return PENDING;
  }
  drop(): void {}
}
