/**
 * Composite tasks built from primitives: join (`ctx.all`), select (`ctx.race`) and the retry
 * loop of `scheduleActivityWithRetry` (docs/replay.md, "Composite tasks").
 */
import { decodeResult } from './codec';
import type { Outcome, ReplayState } from './replay-state';
import { CompletionTask, PENDING, type PollResult, type Task } from './tasks';

/** Waits for every member; yields `{ok}`/`{err}` per member in order. */
export class JoinTask implements Task {
  private readonly outcomes: Array<Outcome | undefined>;

  constructor(private readonly members: Task[]) {
    this.outcomes = members.map(() => undefined);
  }

  poll(): PollResult {
    let pending = false;
    this.members.forEach((member, i) => {
      if (this.outcomes[i] !== undefined) return;
      const result = member.poll();
      if (result.done) this.outcomes[i] = result.outcome;
      else pending = true;
    });
    if (pending) return PENDING;
    const value = this.outcomes.map((outcome) =>
      outcome!.ok ? { ok: outcome!.value } : { err: decodeResult((outcome as { error: string }).error) },
    );
    return { done: true, outcome: { ok: true, value } };
  }

  drop(): void {
    this.members.forEach((member, i) => {
      if (this.outcomes[i] === undefined) member.drop();
    });
  }
}

/** Two-way race, biased to the first member; the loser is dropped. */
export class RaceTask implements Task {
  private winner: { index: number; outcome: Outcome } | undefined;

  constructor(private readonly members: [Task, Task]) {}

  /** The winner and its unflattened outcome, or undefined while both are pending. */
  pollWinner(): { index: number; outcome: Outcome } | undefined {
    if (this.winner) return this.winner;
    for (let index = 0; index < 2; index++) {
      const result = this.members[index].poll();
      if (result.done) {
        this.winner = { index, outcome: result.outcome };
        this.members[1 - index].drop();
        return this.winner;
      }
    }
    return undefined;
  }

  /** `ctx.race` result: errors are flattened into `value`. */
  poll(): PollResult {
    const winner = this.pollWinner();
    if (!winner) return PENDING;
    const value = winner.outcome.ok ? winner.outcome.value : winner.outcome.error;
    return { done: true, outcome: { ok: true, value: { index: winner.index, value } } };
  }

  drop(): void {
    if (!this.winner) this.members.forEach((member) => member.drop());
  }
}

/** The normalised retry policy. */
export interface RetrySpec {
  name: string;
  sessionId: string | null;
  maxAttempts: number;
  /** Per-attempt timeout, or null. */
  timeoutMs: number | null;
  backoff: string | undefined;
  /** Flow key of every attempt (`withFlowKey`), or null for `activity:<name>`. */
  flowKey: string | null;
  /** Priority level of every attempt (`withPriority`), or null for the instance's. */
  priority: number | null;
}

/** Delay before attempt `attempt + 1` after attempt `attempt` failed (section 2.2). */
export function backoffDelayMs(backoff: string | undefined, attempt: number): number {
  if (backoff === undefined || backoff === null || backoff === 'exponential')
    return Math.min(100 * 2 ** (attempt - 1), 30_000);
  if (backoff === 'fixed') return 1000;
  return Math.min(100 * attempt, 30_000);
}

/** Factories the retry loop uses to emit its primitive actions. */
export interface RetryPrimitives {
  activity(): Task;
  timer(delayMs: number): Task;
}

/**
 * The retry loop as a state machine over primitive tasks: activity (raced with a timeout timer
 * when configured), then a backoff timer before the next attempt.
 */
export class RetryTask implements Task {
  private attempt = 0;
  private current!: Task;
  /** The activity of the current attempt (`current` races it with a timeout timer when set). */
  private attemptActivity!: Task;
  private phase: 'attempt' | 'backoff' = 'attempt';
  private settled: Outcome | undefined;

  constructor(
    private readonly state: ReplayState,
    private readonly spec: RetrySpec,
    private readonly primitives: RetryPrimitives,
  ) {
    this.startAttempt();
  }

  private startAttempt(): void {
    this.attempt++;
    this.phase = 'attempt';
    const activity = this.primitives.activity();
    this.attemptActivity = activity;
    this.current =
      this.spec.timeoutMs === null ? activity : new RaceTask([activity, this.primitives.timer(this.spec.timeoutMs)]);
  }

  private attemptOutcome(): Outcome | undefined {
    if (this.current instanceof RaceTask) {
      const winner = this.current.pollWinner();
      if (!winner) return undefined;
      return winner.index === 0 ? winner.outcome : { ok: false, error: 'timeout: activity timed out' };
    }
    const result = this.current.poll();
    return result.done ? result.outcome : undefined;
  }

  /**
   * `withFlowKey` on a started retry (async orchestrations): the first attempt's action is emitted
   * already, not recorded yet, so it is updated; later attempts read the spec.
   */
  setFlowKey(key: string): void {
    this.spec.flowKey = key;
    if (this.attemptActivity instanceof CompletionTask) this.state.setFlowKey(this.attemptActivity.token, key);
  }

  /** `withPriority` on a started retry, as {@link setFlowKey}. */
  setPriority(level: number): void {
    this.spec.priority = level;
    if (this.attemptActivity instanceof CompletionTask) this.state.setPriority(this.attemptActivity.token, level);
  }

  poll(): PollResult {
    while (this.settled === undefined) {
      if (this.phase === 'backoff') {
        if (!this.current.poll().done) return PENDING;
        this.startAttempt();
        continue;
      }
      const outcome = this.attemptOutcome();
      if (outcome === undefined) return PENDING;
      const timedOut = !outcome.ok && this.current instanceof RaceTask && this.current.pollWinner()?.index === 1;
      if (outcome.ok || timedOut || this.attempt >= this.spec.maxAttempts) {
        this.settled = outcome;
        break;
      }
      const session = this.spec.sessionId === null ? '' : ` (session=${this.spec.sessionId})`;
      this.state.trace(
        'warn',
        `Activity '${this.spec.name}' attempt ${this.attempt}/${this.spec.maxAttempts} ` +
          `failed: ${outcome.error}. Retrying...${session}`,
      );
      const delay = backoffDelayMs(this.spec.backoff, this.attempt);
      if (delay > 0) {
        this.phase = 'backoff';
        this.current = this.primitives.timer(delay);
      } else this.startAttempt();
    }
    return { done: true, outcome: this.settled };
  }

  drop(): void {
    if (this.settled === undefined) this.current.drop();
  }
}
