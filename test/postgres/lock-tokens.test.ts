/**
 * Lock tokens stay short however long an instance runs. An activity claimed by a turn's ack and
 * a turn claimed by an activity's ack take tokens derived from the acking token (so that a
 * repeated ack recognises what it claimed); derived naively, each step of a chain of activities
 * would lengthen them, and every call of a long orchestration would carry (and index) them.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Client, PostgresProvider, Runtime } from '../../src/index';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { databaseUrl, dropTestSchema, uniqueSchemaName } from '../helpers/postgres-harness';

const STEPS = 60;
const schema = uniqueSchemaName('tokens');
let provider: PostgresProvider;
let runtime: Runtime;
let observer: PgExecutor;
const seen: string[] = [];

before(async () => {
  provider = await PostgresProvider.connectWithSchema(databaseUrl(), schema);
  observer = PgExecutor.fromUrl(databaseUrl(), 1);
  runtime = new Runtime(provider, { logLevel: 'warn' });
  runtime.registerActivity('Look', async (_ctx, step: number) => {
    // The running activity's own lease is in the table now: the longest token in use.
    const rows = await observer.query(
      `SELECT lock_token FROM "${schema}".worker_queue WHERE lock_token IS NOT NULL
       UNION ALL SELECT lock_token FROM "${schema}".instance_locks
       ORDER BY 1`,
    );
    seen.push(...rows.map((r) => String(r.lock_token)));
    return step + 1;
  });
  runtime.registerOrchestration('Chain', function* (ctx) {
    let step = 0;
    for (let i = 0; i < STEPS; i += 1) step = (yield ctx.scheduleActivity('Look', step)) as number;
    return step;
  });
  await runtime.start();
});

after(async () => {
  await runtime.shutdown(500);
  await provider.close();
  await observer.close();
  await dropTestSchema(schema);
});

test(`a chain of ${STEPS} activities keeps every lock token short`, async () => {
  const client = new Client(provider);
  await client.startOrchestration('chain-1', 'Chain', null);
  const result = await client.waitForOrchestration('chain-1', 60_000);
  assert.equal(result.status, 'Completed');
  assert.equal(result.output, STEPS);
  // The chain went through the claiming paths (tokens derived by an ack), not only fetches.
  const derived = seen.filter((token) => token.startsWith('ack:'));
  assert.ok(derived.length >= STEPS / 2, `only ${derived.length} of ${seen.length} tokens were derived by an ack`);
  const longest = Math.max(...seen.map((token) => token.length));
  assert.ok(longest <= 80, `the longest lock token had ${longest} characters`);
});
