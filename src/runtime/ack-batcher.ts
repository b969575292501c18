/**
 * Group commit of acks. An ack is sent at once while fewer than
 * `maxInFlight` ack calls are out; otherwise it waits, and every ack that waited goes out
 * together in the next call, each with its own lock and outcome. Under load this turns one round
 * trip per ack into one per batch; alone, an ack costs what it did.
 */
import { MAX_TURNS_PER_CALL, MAX_WORK_ITEMS_PER_CALL } from '../core/limits';

/** One ack's outcome in a batch call. */
export type AckOutcome<R> = { ok: true; value: R } | { ok: false; error: unknown };

/** How to send one ack, and several in one call (outcomes in input order). */
export interface AckCalls<A, R> {
  one(ack: A): Promise<R>;
  many(acks: A[]): Promise<Array<AckOutcome<R>>>;
}

interface PendingAck<A, R> {
  ack: A;
  resolve: (value: R) => void;
  reject: (error: unknown) => void;
}

/** Most acks in one call: the smaller of the store's bounds, so turn and work-item acks both fit. */
const MAX_ACKS_PER_CALL = Math.min(MAX_TURNS_PER_CALL, MAX_WORK_ITEMS_PER_CALL);

export class GroupCommit<A, R> {
  private waiting: Array<PendingAck<A, R>> = [];
  private inFlight = 0;

  constructor(
    private readonly calls: AckCalls<A, R>,
    private readonly maxInFlight: number,
  ) {}

  /** Sends `ack` (alone or with others); resolves with its result, rejects with its own error. */
  ack(ack: A): Promise<R> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ ack, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.maxInFlight && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, MAX_ACKS_PER_CALL);
      this.inFlight += 1;
      // send() settles every waiting ack itself, success or failure, so it never rejects.
      void this.send(batch).finally(() => {
        this.inFlight -= 1;
        this.pump();
      });
    }
  }

  private async send(batch: Array<PendingAck<A, R>>): Promise<void> {
    try {
      if (batch.length === 1) {
        batch[0].resolve(await this.calls.one(batch[0].ack));
        return;
      }
      const outcomes = await this.calls.many(batch.map((pending) => pending.ack));
      outcomes.forEach((outcome, index) => {
        if (outcome.ok) batch[index].resolve(outcome.value);
        else batch[index].reject(outcome.error);
      });
    } catch (error) {
      for (const pending of batch) pending.reject(error);
    }
  }
}
