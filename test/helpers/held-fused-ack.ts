/**
 * PostgreSQL stores that see every fused ack before it goes out: one with a hook for tests to
 * record or tamper with them, and one whose first fused ack of one instance waits until the test
 * lets it go: the slot that sent it is then certain to be without its ack for as long as the test
 * needs (slot pipelining tests). Single and grouped fused acks are treated alike.
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
import type { SqlExecutor } from '../../src/store/sql-executor';
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

/**
 * A PostgreSQL store that calls `before` with every fused ack, single or in a group, before it
 * goes out (and waits for it): tests record, hold or tamper with them there.
 */
export class FusedAckHookStore extends ProcedureProvider {
  constructor(
    executor: SqlExecutor,
    schema: string,
    private readonly before: (acks: readonly FusedWorkItemAck[]) => Promise<void> | void,
  ) {
    super(executor, schema, 'postgres');
  }

  override async ackWorkItemWithTurn(
    lockToken: string,
    completion: ActivityCompletionItem,
    claim: TurnClaim,
    turn: FusedTurn,
  ): Promise<FusedAckOutcome> {
    await this.before([{ lockToken, completion, claim, turn }]);
    return super.ackWorkItemWithTurn(lockToken, completion, claim, turn);
  }

  override async ackWorkItemsWithTurns(acks: readonly FusedWorkItemAck[]): Promise<FusedWorkItemAckOutcome[]> {
    await this.before(acks);
    return super.ackWorkItemsWithTurns(acks);
  }
}

/** The store whose first fused ack of `hold.instanceId` waits until the test lets it go. */
export class FirstFusedAckHeldStore extends FusedAckHookStore {
  constructor(schema: string, hold: FusedAckHold) {
    let holding = false;
    super(PgExecutor.fromUrl(databaseUrl(), 4), schema, async (acks) => {
      if (holding || !acks.some((ack) => ack.completion.instance === hold.instanceId)) return;
      holding = true;
      hold.held();
      await hold.release;
      hold.sent?.();
    });
  }
}
