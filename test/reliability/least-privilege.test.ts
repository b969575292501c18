/**
 * Least privilege (src/store/sql/procedures/admin.sql): the schema owner migrates and calls grant_execute_role(role);
 * the application then runs under `role`, which may only EXECUTE the procedures. The runtime and
 * the client work under it; the role cannot read, change or create tables, cannot call the
 * administrative functions or the test clock, and cannot shadow a table with a temporary one.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import type { Client as PgClient } from 'pg';
import { DATABASE_URL, durox, type Provider, type Runtime } from '../e2e/helpers';
import { adminConnection, freshSchema, urlAs } from './support';
import { dropTestSchema } from '../helpers/postgres-harness';

const role = `durox_app_${randomBytes(4).toString('hex')}`;
const password = randomBytes(12).toString('hex');
const schema = freshSchema('rel_least');
let admin: PgClient;
let owner: Provider;
let appUrl: string;

before(async () => {
  admin = await adminConnection();
  owner = await durox.PostgresProvider.connectWithSchema(DATABASE_URL, schema);
  // Test set-up as the database superuser: a login role with no privileges of its own.
  await admin.query(`CREATE ROLE "${role}" LOGIN PASSWORD '${password}' NOSUPERUSER NOCREATEDB NOCREATEROLE`);
  await admin.query(`SELECT "${schema}".grant_execute_role($1)`, [role]);
  appUrl = urlAs(DATABASE_URL, role, password);
});

after(async () => {
  await owner.close();
  await dropTestSchema(schema);
  await admin.query(`DROP OWNED BY "${role}"`);
  await admin.query(`DROP ROLE IF EXISTS "${role}"`);
  await admin.end();
});

async function asApp<T>(work: (client: PgClient) => Promise<T>): Promise<T> {
  const client = await adminConnection(appUrl);
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function sqlState(client: PgClient, text: string): Promise<string> {
  try {
    await client.query(text);
    return 'succeeded';
  } catch (error) {
    return String((error as { code?: string }).code);
  }
}

test('the runtime and the client work under a role that can only EXECUTE the procedures', async () => {
  const provider = await durox.PostgresProvider.connectWithSchema(appUrl, schema);
  const runtime: Runtime = new durox.Runtime(provider, { dispatcherPollIntervalMs: 20, logLevel: 'error' });
  try {
    runtime.registerActivity('Greet', async (_ctx, name: string) => `hello ${name}`);
    runtime.registerOrchestration('Greeter', function* (ctx, name: string) {
      ctx.setValue('who', name);
      yield ctx.scheduleTimer(20);
      const child: string = yield ctx.scheduleSubOrchestration('Child', name);
      const greeting: string = yield ctx.scheduleActivity('Greet', name);
      return `${greeting} / ${child}`;
    });
    runtime.registerOrchestration('Child', function* (ctx, name: string) {
      return yield ctx.scheduleActivity('Greet', `child ${name}`);
    });
    await runtime.start();
    const client = new durox.Client(provider);
    await client.startOrchestration('lp-1', 'Greeter', 'world');
    const status = await client.waitForOrchestration('lp-1', 20_000);
    assert.equal(status.status, 'Completed');
    assert.equal(status.output, 'hello world / hello child world');
    assert.equal(await client.getValue('lp-1', 'who'), 'world');
    assert.ok((await client.readExecutionHistory('lp-1', 1)).length > 5);
    assert.ok((await client.listAllInstances()).includes('lp-1'));
  } finally {
    await runtime.shutdown(100);
    await provider.close();
  }
});

test('the role cannot read, change or create tables, nor call the administrative functions', async () => {
  await asApp(async (client) => {
    for (const table of [
      'instances',
      'executions',
      'history',
      'orchestrator_queue',
      'worker_queue',
      'kv_store',
      'schema_migrations',
      'schema_procedures',
      'sessions',
    ]) {
      assert.equal(
        await sqlState(client, `SELECT * FROM "${schema}".${table}`),
        '42501',
        `SELECT on ${table} is refused`,
      );
      assert.equal(
        await sqlState(client, `DELETE FROM "${schema}".${table}`),
        '42501',
        `DELETE on ${table} is refused`,
      );
    }
    assert.equal(await sqlState(client, `UPDATE "${schema}".instances SET custom_status = 'x'`), '42501');
    assert.equal(await sqlState(client, `INSERT INTO "${schema}".history VALUES ('i', 1, 1, 'x', '{}', 0)`), '42501');
    assert.equal(await sqlState(client, `CREATE TABLE "${schema}".intruder (x int)`), '42501');
    assert.equal(
      await sqlState(client, `CREATE FUNCTION "${schema}".intruder() RETURNS int LANGUAGE sql AS 'SELECT 1'`),
      '42501',
    );
    assert.equal(
      await sqlState(client, `SELECT "${schema}".set_test_clock_offset(100000)`),
      '42501',
      'the test clock is not granted',
    );
    assert.equal(await sqlState(client, `SELECT "${schema}".secure_procedures()`), '42501');
    assert.equal(await sqlState(client, `SELECT "${schema}".grant_execute_role('${role}')`), '42501');
    assert.equal(
      await sqlState(client, `SELECT "${schema}".get_queue_depths()`),
      'succeeded',
      'procedures are callable',
    );
  });
});

test('a temporary table cannot shadow a table used by an elevated procedure (pg_temp is searched last)', async () => {
  await asApp(async (client) => {
    await client.query('CREATE TEMP TABLE instances (LIKE pg_catalog.pg_class)');
    await client.query(
      `CREATE TEMP TABLE executions AS SELECT 'ghost'::text AS instance_id, 1::bigint AS execution_id, 'Completed'::text AS status,
         'ghost output'::text AS output, NULL::text AS failure_details, 0::bigint AS started_at_ms, 0::bigint AS completed_at_ms`,
    );
    const status = await client.query(`SELECT "${schema}".get_instance_status('ghost') AS result`);
    assert.equal(status.rows[0].result.status, 'NotFound', 'the procedure read the real table, not the temporary one');
    const info = await client.query(`SELECT "${schema}".get_instance_info('lp-1') AS result`);
    assert.equal(info.rows[0].result.instanceId, 'lp-1');
  });
});

test('every procedure the role or the owner calls pins its search_path and nobody else may execute it', async () => {
  const rows = await admin.query(
    `SELECT p.proname AS name, p.prosecdef AS definer, p.proconfig AS config,
            has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute,
            has_function_privilege($2, p.oid, 'EXECUTE') AS role_execute
     FROM pg_proc p WHERE p.pronamespace = $1::regnamespace ORDER BY 1`,
    [schema, role],
  );
  const administrative = new Set(['secure_procedures', 'grant_execute_role', 'set_test_clock_offset']);
  assert.ok(rows.rows.length > 20);
  let internal = 0;
  for (const row of rows.rows) {
    const paths = ((row.config as string[] | null) ?? []).filter((setting) => setting.startsWith('search_path='));
    if (String(row.name).startsWith('internal_')) {
      // Helpers resolve names in the path of the procedure that calls them (nobody else can).
      assert.deepEqual(paths, [], `${row.name} inherits its caller's search_path`);
    } else {
      assert.deepEqual(paths, [`search_path=${schema}, pg_catalog, pg_temp`], `${row.name} pins its search_path`);
    }
    assert.equal(row.public_execute, false, `${row.name} is not executable by PUBLIC`);
    const isPublic = !administrative.has(row.name) && !String(row.name).startsWith('internal_');
    if (String(row.name).startsWith('internal_')) internal += 1;
    assert.equal(row.definer, isPublic, `${row.name} security`);
    assert.equal(row.role_execute, isPublic, `${row.name} granted to the app role`);
  }
  assert.ok(internal > 10, 'helpers and trigger functions are internal');
});

test('the role cannot call an internal helper, which would skip the advisory-lock order', async () => {
  await asApp(async (client) => {
    const calls = [
      `SELECT "${schema}".internal_commit_orchestration_turn('token', '{}'::jsonb, 0, FALSE, FALSE)`,
      `SELECT "${schema}".internal_lock_instances_in_key_order(ARRAY['lp-1'], ARRAY[]::text[])`,
      `SELECT "${schema}".internal_finish_work_item('token', NULL, NULL, NULL, 0)`,
      `SELECT "${schema}".internal_lock_orchestration_batch('lp-1', 1, 1000, NULL, NULL, 0)`,
      `SELECT "${schema}".internal_current_time_ms()`,
    ];
    for (const call of calls) assert.equal(await sqlState(client, call), '42501', `${call} is refused`);
  });
});

test('procedures added by a later build reach a role granted earlier, and helpers never do', async () => {
  // Simulate a later build: a new public procedure and a new helper, then a re-application.
  await admin.query(`CREATE FUNCTION "${schema}".later_procedure() RETURNS int LANGUAGE sql AS 'SELECT 1'`);
  await admin.query(`CREATE FUNCTION "${schema}".internal_later_helper() RETURNS int LANGUAGE sql AS 'SELECT 2'`);
  try {
    await admin.query(`SELECT "${schema}".secure_procedures()`);
    await asApp(async (client) => {
      assert.equal(await sqlState(client, `SELECT "${schema}".later_procedure()`), 'succeeded');
      assert.equal(await sqlState(client, `SELECT "${schema}".internal_later_helper()`), '42501');
    });
  } finally {
    await admin.query(`DROP FUNCTION "${schema}".later_procedure()`);
    await admin.query(`DROP FUNCTION "${schema}".internal_later_helper()`);
  }
});

test('procedures re-applied by the migration runner (their text changed) are secured again', async () => {
  // Simulate a re-application's CREATE OR REPLACE, which resets SECURITY DEFINER and the grants.
  await admin.query(`ALTER FUNCTION "${schema}".get_queue_depths() SECURITY INVOKER RESET search_path`);
  await admin.query(`GRANT EXECUTE ON FUNCTION "${schema}".get_queue_depths() TO PUBLIC`);
  await admin.query(`UPDATE "${schema}".schema_procedures SET hash = 'changed'`);
  const again = await durox.PostgresProvider.connectWithSchema(DATABASE_URL, schema);
  await again.close();
  const row = await admin.query(
    `SELECT prosecdef, proconfig, has_function_privilege('public', oid, 'EXECUTE') AS public_execute
     FROM pg_proc WHERE oid = $1::regprocedure`,
    [`"${schema}".get_queue_depths()`],
  );
  assert.equal(row.rows[0].prosecdef, true);
  assert.ok(row.rows[0].proconfig.includes(`search_path=${schema}, pg_catalog, pg_temp`));
  assert.equal(row.rows[0].public_execute, false);
});

test('grant_execute_role refuses an unknown role with a clear error', async () => {
  await assert.rejects(
    admin.query(`SELECT "${schema}".grant_execute_role($1)`, ['no_such_role_x']),
    /grant_execute_role: role 'no_such_role_x' does not exist/,
  );
});
