/**
 * Slot pipelining on the real PostgreSQL server (docs/runtime.md, "Fused completion"): a slot
 * whose fused ack claims the chain's next activity does not wait for that ack while an inbox
 * place can hold the claimed activity; it runs other queued work meanwhile, and the claimed
 * activity waits in the inbox for the first slot that finishes.
 *
 * One slot only. The fused ack of chain A's first step is held back by the store wrapper below
 * until activity `Other` of instance B, started once that ack is held, has started: a slot that
 * waits for its own ack never starts `Other`, and the test fails on its deadline instead of
 * passing by luck.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Client, Runtime } from '../../src/index';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { ProcedureProvider } from '../../src/store/procedure-provider';
import type { ActivityCompletionItem } from '../../src/core/types';
import type {
  FusedAckOutcome,
  FusedTurn,
  FusedWorkItemAck,
  FusedWorkItemAckOutcome,
  TurnClaim,
} from '../../src/provider/contract';
import { databaseUrl, dropTestSchema, migrateTestSchema, uniqueSchemaName } from '../helpers/postgres-harness';

const schema = uniqueSchemaName('perf_slot_pipelining');
const events: string[] = [];
let otherStarted: () => void = () => undefined;
const otherHasStarted = new Promise<void>((resolve) => (otherStarted = resolve));
let ackHeld: () => void = () => undefined;
const firstAckIsHeld = new Promise<void>((resolve) => (ackHeld = resolve));
let provider: ProcedureProvider;
let runtime: Runtime;

/** The store, with chain A's first fused ack held until `Other` has started. */
class HeldUntilOtherStore extends ProcedureProvider {
  private held = false;

  private async holdFirst(instances: readonly string[]): Promise<void> {
    if (this.held || !instances.includes('chain-a')) return;
    this.held = true;
    events.push('fused ack of chain-a held');
    ackHeld();
    await otherHasStarted;
    events.push('fused ack of chain-a sent');
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

before(async () => {
  await migrateTestSchema(schema);
  provider = new HeldUntilOtherStore(PgExecutor.fromUrl(databaseUrl(), 4), schema, 'postgres');
  runtime = new Runtime(provider, { logLevel: 'warn', workerConcurrency: 1, orchestrationConcurrency: 1 });
  let steps = 0;
  runtime.registerActivity('Step', (_ctx, n: number) => {
    steps += 1;
    events.push(`Step ${steps} started`);
    return n + 1;
  });
  runtime.registerActivity('Other', () => {
    events.push('Other started');
    otherStarted();
    return 'other';
  });
  runtime.registerOrchestration('Chain', function* (ctx) {
    const first = (yield ctx.scheduleActivity('Step', 0)) as number;
    return yield ctx.scheduleActivity('Step', first);
  });
  runtime.registerOrchestration('Single', function* (ctx) {
    return yield ctx.scheduleActivity('Other', null);
  });
  await runtime.start();
});

after(async () => {
  await runtime.shutdown(500);
  await provider.close();
  await dropTestSchema(schema);
});

test('a slot runs queued work while its fused ack is out, and then the step that ack claimed', async () => {
  const client = new Client(provider);
  await client.startOrchestration('chain-a', 'Chain', null);
  await firstAckIsHeld;
  await client.startOrchestration('single-b', 'Single', null);

  const [a, b] = await Promise.all([
    client.waitForOrchestration('chain-a', 15_000),
    client.waitForOrchestration('single-b', 15_000),
  ]);
  assert.deepEqual([a.status, a.output], ['Completed', 2]);
  assert.deepEqual([b.status, b.output], ['Completed', 'other']);
  assert.deepEqual(events, [
    'Step 1 started',
    'fused ack of chain-a held',
    'Other started',
    'fused ack of chain-a sent',
    'Step 2 started',
  ]);
});
