/**
 * The procedures a runtime calls for every orchestration run their statements with generic plans
 * from the first call (docs/sql.md, "Plans"). PL/pgSQL caches a plan per statement and
 * connection, but by default plans it afresh for each of the first five executions; over a
 * pool of fresh connections that is most executions. The procedures the runtime really called
 * for a chain, a fan-out and the Client's waits are looked up in pg_proc: each must carry the
 * setting and be PL/pgSQL (a public procedure runs SECURITY DEFINER, which the planner never
 * inlines, so a SQL body is parsed and planned on every call). Operator procedures keep
 * PostgreSQL's default: their optional filters are folded by custom plans.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Client, PostgresProvider, Runtime } from '../../src/index';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { ProcedureProvider } from '../../src/store/procedure-provider';
import { databaseUrl, dropTestSchema, uniqueSchemaName } from '../helpers/postgres-harness';

const SETTING = 'plan_cache_mode=force_generic_plan';
const schema = uniqueSchemaName('plans');
let provider: PostgresProvider;
let runtime: Runtime;
let observer: PgExecutor;
const called = new Set<string>();

type CallFn = (operation: string, params: unknown[], instanceId?: string) => Promise<unknown>;
const prototype = ProcedureProvider.prototype as unknown as { call: CallFn };
const originalCall = prototype.call;

before(async () => {
  prototype.call = function recordedCall(this: ProcedureProvider, operation, params, instanceId) {
    called.add(operation);
    return originalCall.call(this, operation, params, instanceId);
  };
  provider = await PostgresProvider.connectWithSchema(databaseUrl(), schema);
  observer = PgExecutor.fromUrl(databaseUrl(), 1);
  runtime = new Runtime(provider, { logLevel: 'warn', workerConcurrency: 2, orchestrationConcurrency: 1 });
  runtime.registerActivity('Add', (_ctx, n: number) => n + 1);
  runtime.registerOrchestration('Chain', function* (ctx, n: number) {
    let value = n;
    for (let i = 0; i < 3; i += 1) value = (yield ctx.scheduleActivity('Add', value)) as number;
    return value;
  });
  runtime.registerOrchestration('Fan', function* (ctx, width: number) {
    const results = (yield ctx.all(
      Array.from({ length: width }, (_, i) => ctx.scheduleActivity('Add', i)),
    )) as number[];
    return results.length;
  });
  await runtime.start();
});

after(async () => {
  prototype.call = originalCall;
  await runtime.shutdown(500);
  await provider.close();
  await observer.close();
  await dropTestSchema(schema);
});

/** Each function of the test schema: its language and settings. */
async function functions(): Promise<Map<string, { language: string; settings: string[] }>> {
  const rows = await observer.query(
    `SELECT p.proname AS name, l.lanname AS language, COALESCE(p.proconfig, '{}') AS settings
     FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
     WHERE n.nspname = $1`,
    [schema],
  );
  return new Map(rows.map((r) => [String(r.name), { language: String(r.language), settings: r.settings as string[] }]));
}

test('every procedure a runtime calls plans generically from its first call', async () => {
  const client = new Client(provider);
  await client.startOrchestration('chain-1', 'Chain', 0);
  await client.startOrchestration('fan-1', 'Fan', 12);
  assert.equal((await client.waitForOrchestration('chain-1', 30_000)).output, 3);
  assert.equal((await client.waitForOrchestration('fan-1', 30_000)).output, 12);

  const byName = await functions();
  // listen_for_wakeups runs once per LISTEN connection (a dynamic LISTEN, nothing to cache).
  const hot = [...called].filter((name) => name !== 'listen_for_wakeups');
  assert.ok(hot.length >= 5, `only ${hot.length} procedures were called: ${hot.join(', ')}`);
  const missing = hot.filter((name) => {
    const fn = byName.get(name);
    assert.ok(fn !== undefined, `${name} is not a function of the schema`);
    return !fn.settings.includes(SETTING);
  });
  assert.deepEqual(missing, [], `called by a runtime without generic plans: ${missing.join(', ')}`);
  const replanned = hot.filter((name) => byName.get(name)?.language !== 'plpgsql');
  assert.deepEqual(replanned, [], `called by a runtime, planned on every call: ${replanned.join(', ')}`);
});

test('operator procedures keep custom plans for their optional filters', async () => {
  const byName = await functions();
  for (const name of ['list_instances_page', 'get_queue_depths', 'delete_instances']) {
    const fn = byName.get(name);
    assert.ok(fn !== undefined, `${name} is not a function of the schema`);
    assert.ok(!fn.settings.includes(SETTING), `${name} should keep PostgreSQL's default plan choice`);
  }
});
