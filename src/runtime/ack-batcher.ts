/**
 * Group commit of activity acks (performance issue 7). An ack is sent at once while fewer than
 * `maxInFlight` ack calls are out; otherwise it waits, and every ack that waited goes out
 * together in the next call (`ack_work_items`), each with its own lock and outcome. Under load
 * this turns one round trip per activity into one per batch; alone, an ack costs what it did.
 */
import type { OrchestrationItem, Provider, WorkItemAck } from '../provider/contract';

interface PendingAck {
  ack: WorkItemAck;
  resolve: (turn: OrchestrationItem | null) => void;
  reject: (error: unknown) => void;
}

/** Most acks in one call. */
const MAX_ACKS_PER_CALL = 100;

export class WorkItemAckBatcher {
  private waiting: PendingAck[] = [];
  private inFlight = 0;

  constructor(
    private readonly provider: Provider,
    private readonly maxInFlight: number,
  ) {}

  /** Acknowledges one work item; resolves with the turn it claimed, rejects with its own error. */
  ack(ack: WorkItemAck): Promise<OrchestrationItem | null> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ ack, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.maxInFlight && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, MAX_ACKS_PER_CALL);
      this.inFlight += 1;
      void this.send(batch).finally(() => {
        this.inFlight -= 1;
        this.pump();
      });
    }
  }

  private async send(batch: PendingAck[]): Promise<void> {
    try {
      if (batch.length === 1) {
        const [only] = batch;
        only.resolve(await this.provider.ackWorkItem(only.ack.lockToken, only.ack.completion, only.ack.claim));
        return;
      }
      const outcomes = await this.provider.ackWorkItems(batch.map((pending) => pending.ack));
      outcomes.forEach((outcome, index) => {
        if (outcome.ok) batch[index].resolve(outcome.claimedTurn);
        else batch[index].reject(outcome.error);
      });
    } catch (error) {
      for (const pending of batch) pending.reject(error);
    }
  }
}
