/**
 * A PostgreSQL store whose first fused ack of one instance waits until the test lets it go: the
 * slot that sent it is then certain to be without its ack for as long as the test needs (slot
 * pipelining tests). Single and grouped fused acks are held alike; only the first is held.
 */
import type { ActivityCompletionItem } from '../../src/core/types';
import type {
  FusedAckOutcome,
  FusedTurn,
  FusedWorkItemAck,
  FusedWorkItemAckOutcome,
  TurnClaim,
} from '../../src/provider/contract';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { ProcedureProvider } from '../../src/store/procedure-provider';
import { databaseUrl } from './postgres-harness';

/** Which fused ack to hold, and the test's hooks around it. */
export interface FusedAckHold {
  instanceId: string;
  /** Called when the ack starts waiting. */
  held(): void;
  /** The ack goes out once this resolves. */
  release: Promise<void>;
  /** Called when the ack goes out. */
  sent?(): void;
}

export class FirstFusedAckHeldStore extends ProcedureProvider {
  private holding = false;

  constructor(
    schema: string,
    private readonly hold: FusedAckHold,
  ) {
    super(PgExecutor.fromUrl(databaseUrl(), 4), schema, 'postgres');
  }

  private async holdFirst(instances: readonly string[]): Promise<void> {
    if (this.holding || !instances.includes(this.hold.instanceId)) return;
    this.holding = true;
    this.hold.held();
    await this.hold.release;
    this.hold.sent?.();
  }

  override async ackWorkItemWithTurn(
    lockToken: string,
    completion: ActivityCompletionItem,
    claim: TurnClaim,
    turn: FusedTurn,
  ): Promise<FusedAckOutcome> {
    await this.holdFirst([completion.instance]);
    return super.ackWorkItemWithTurn(lockToken, completion, claim, turn);
  }

  override async ackWorkItemsWithTurns(acks: readonly FusedWorkItemAck[]): Promise<FusedWorkItemAckOutcome[]> {
    await this.holdFirst(acks.map((ack) => ack.completion.instance));
    return super.ackWorkItemsWithTurns(acks);
  }
}
