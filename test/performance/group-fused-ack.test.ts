/**
 * Group commit of fused completions on the real PostgreSQL server (docs/runtime.md, "Fused
 * completion"): while one fused ack of a runtime's activity slots is out, the slots that finish
 * next wait and go out together in one ack_work_items_with_turns call, each committing its own
 * turn. The first fused ack is held back by the store wrapper below, so the other slots, which
 * finish their activities meanwhile, are certain to queue behind it.
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
import { sleep } from '../../src/runtime/timing';
import { databaseUrl, dropTestSchema, migrateTestSchema, uniqueSchemaName } from '../helpers/postgres-harness';

const SLOTS = 4;
const CHAINS = 8;
const STEPS = 3;
const schema = uniqueSchemaName('perf_group_fused');
const groups: FusedWorkItemAckOutcome[][] = [];
let singles = 0;
let provider: ProcedureProvider;
let runtime: Runtime;

/** The store, with its first single fused ack held back 300 ms and every fused ack recorded. */
class HeldBackStore extends ProcedureProvider {
  override async ackWorkItemWithTurn(
    lockToken: string,
    completion: ActivityCompletionItem,
    claim: TurnClaim,
    turn: FusedTurn,
  ): Promise<FusedAckOutcome> {
    singles += 1;
    if (singles === 1) await sleep(300);
    return super.ackWorkItemWithTurn(lockToken, completion, claim, turn);
  }

  override async ackWorkItemsWithTurns(acks: readonly FusedWorkItemAck[]): Promise<FusedWorkItemAckOutcome[]> {
    const outcomes = await super.ackWorkItemsWithTurns(acks);
    groups.push(outcomes);
    return outcomes;
  }
}

before(async () => {
  await migrateTestSchema(schema);
  provider = new HeldBackStore(PgExecutor.fromUrl(databaseUrl(), 6), schema, 'postgres');
  runtime = new Runtime(provider, { logLevel: 'warn', workerConcurrency: SLOTS, orchestrationConcurrency: 1 });
  runtime.registerActivity('Add', (_ctx, n: number) => n + 1);
  runtime.registerOrchestration('Chain', function* (ctx, steps: number) {
    let total = 0;
    for (let i = 0; i < steps; i += 1) total = (yield ctx.scheduleActivity('Add', total)) as number;
    return total;
  });
  await runtime.start();
});

after(async () => {
  await runtime.shutdown(500);
  await provider.close();
  await dropTestSchema(schema);
});

test(`the slots of ${CHAINS} chains commit their fused steps together while one is out`, async () => {
  const client = new Client(provider);
  const ids = Array.from({ length: CHAINS }, (_, i) => `chain-${i}`);
  await Promise.all(ids.map((id) => client.startOrchestration(id, 'Chain', STEPS)));
  const results = await Promise.all(ids.map((id) => client.waitForOrchestration(id, 30_000)));
  assert.deepEqual(
    results.map((result) => [result.status, result.output]),
    ids.map(() => ['Completed', STEPS]),
  );
  const sizes = groups.map((outcomes) => outcomes.length);
  assert.ok(
    sizes.some((size) => size >= 2),
    `no group call carried two fused acks or more (groups: [${sizes.join(', ')}], single calls: ${singles})`,
  );
  const elements = groups.flat();
  assert.ok(
    elements.every((element) => element.ok),
    'no element of a group call was refused',
  );
  assert.ok(
    elements.some((element) => element.ok && element.outcome.fused),
    'elements of group calls committed their turns',
  );
  const calls = singles + groups.length;
  assert.ok(calls < singles + elements.length, `${calls} calls carried ${singles + elements.length} fused acks`);
});
