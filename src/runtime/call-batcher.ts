/**
 * Group calls: acks (group commit) and activity fetches (group fetch). A request is sent at once
 * while fewer than `maxInFlight` calls are out; otherwise it waits, and every request that waited
 * goes out together in the next call, each with its own outcome. Under load this turns one round
 * trip per request into one per batch; alone, a request costs what it did.
 * Waiting pays where a call's time is the database's work (a near database: fewer, larger calls
 * cost it less CPU), not where it is the network's: while `slow()` says recent calls waited on
 * the network (a distant database, `Provider.callsAreSlow`), up to `whenSlow.maxInFlight` calls
 * go out at once.
 */
import { MAX_TURNS_PER_CALL, MAX_WORK_ITEMS_PER_CALL } from '../core/limits';

/** One request's outcome in a batch call. */
export type CallOutcome<R> = { ok: true; value: R } | { ok: false; error: unknown };

/** How to send one request, and several in one call (outcomes in input order). */
export interface BatchCalls<A, R> {
  one(request: A): Promise<R>;
  many(requests: A[]): Promise<Array<CallOutcome<R>>>;
}

/** `many` for a store without the group call: the requests go out side by side, one call each. */
function sideBySide<A, R>(one: (request: A) => Promise<R>): (requests: A[]) => Promise<Array<CallOutcome<R>>> {
  return async (requests) =>
    (await Promise.allSettled(requests.map(one))).map((settled) =>
      settled.status === 'fulfilled'
        ? { ok: true as const, value: settled.value }
        : { ok: false as const, error: settled.reason as unknown },
    );
}

/**
 * A batcher for an operation a store may lack (then null): `one` sends one request; several go in
 * the store's group call `many` when it has one (each element's `outcome`, or its error), else
 * side by side.
 */
export function optionalBatcher<A, R>(
  one: ((request: A) => Promise<R>) | undefined,
  many: ((requests: A[]) => Promise<Array<{ ok: true; outcome: R } | { ok: false; error: unknown }>>) | undefined,
  maxInFlight: number,
  whenSlow: { maxInFlight: number; slow: () => boolean } | null = null,
): CallBatcher<A, R> | null {
  if (one === undefined) return null;
  const group =
    many === undefined
      ? sideBySide(one)
      : async (requests: A[]): Promise<Array<CallOutcome<R>>> =>
          (await many(requests)).map((element) =>
            element.ok ? { ok: true as const, value: element.outcome } : element,
          );
  return new CallBatcher({ one, many: group }, maxInFlight, whenSlow);
}

interface PendingRequest<A, R> {
  request: A;
  resolve: (value: R) => void;
  reject: (error: unknown) => void;
}

/** Most requests in one call: the smaller of the store's bounds, so turn and work-item calls both fit. */
const MAX_REQUESTS_PER_CALL = Math.min(MAX_TURNS_PER_CALL, MAX_WORK_ITEMS_PER_CALL);

export class CallBatcher<A, R> {
  private waiting: Array<PendingRequest<A, R>> = [];
  private inFlight = 0;

  constructor(
    private readonly calls: BatchCalls<A, R>,
    private readonly maxInFlight: number,
    private readonly whenSlow: { maxInFlight: number; slow: () => boolean } | null = null,
  ) {}

  /** Sends `request` (alone or with others); resolves with its result, rejects with its own error. */
  submit(request: A): Promise<R> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ request, resolve, reject });
      this.pump();
    });
  }

  private limit(): number {
    if (this.whenSlow === null || !this.whenSlow.slow()) return this.maxInFlight;
    return Math.max(this.maxInFlight, this.whenSlow.maxInFlight);
  }

  private pump(): void {
    while (this.inFlight < this.limit() && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, MAX_REQUESTS_PER_CALL);
      this.inFlight += 1;
      // send() settles every waiting request itself, success or failure, so it never rejects.
      void this.send(batch).finally(() => {
        this.inFlight -= 1;
        this.pump();
      });
    }
  }

  private async send(batch: Array<PendingRequest<A, R>>): Promise<void> {
    try {
      if (batch.length === 1) {
        batch[0].resolve(await this.calls.one(batch[0].request));
        return;
      }
      const outcomes = await this.calls.many(batch.map((pending) => pending.request));
      outcomes.forEach((outcome, index) => {
        if (outcome.ok) batch[index].resolve(outcome.value);
        else batch[index].reject(outcome.error);
      });
    } catch (error) {
      for (const pending of batch) pending.reject(error);
    }
  }
}
