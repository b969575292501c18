import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { PGlite } from '@electric-sql/pglite';
import { PG_COMPATIBLE_PARSERS, PGliteExecutor } from '../../src/pglite/pglite-executor';
import { applyMigrations, latestMigrationVersion } from '../../src/store/migrations';
import type { NotificationEvent } from '../../src/store/sql-executor';

let executor: PGliteExecutor;

test.before(async () => {
  executor = new PGliteExecutor(await PGlite.create({ parsers: PG_COMPATIBLE_PARSERS }));
});
after(() => executor.close());

test('values decode like the pg driver: int8 as string, jsonb parsed', async () => {
  const rows = await executor.query('SELECT 42::int8 AS big, 7::int4 AS small, $1::jsonb AS doc', [{ a: [1, 2] }]);
  assert.deepEqual(rows, [{ big: '42', small: 7, doc: { a: [1, 2] } }]);
});

test('a session cannot interleave with queries issued while it runs', async () => {
  const order: string[] = [];
  const session = executor.withSession(async (s) => {
    await s.query('BEGIN');
    await s.query('CREATE TEMP TABLE interleave_probe (x int)');
    order.push('session-created');
    await new Promise((resolve) => setTimeout(resolve, 30));
    await s.query('ROLLBACK');
    order.push('session-rolled-back');
  });
  // Issued while the session holds BEGIN: must wait, so it cannot see (or join) the open transaction.
  const probe = executor.query("SELECT to_regclass('pg_temp.interleave_probe')::text AS t").then((rows) => {
    order.push('probe');
    return rows;
  });
  await session;
  const rows = await probe;
  assert.deepEqual(order, ['session-created', 'session-rolled-back', 'probe']);
  assert.equal(rows[0].t, null);
});

test('a parameterless session statement may hold several statements', async () => {
  const rows = await executor.withSession((s) => s.query('SELECT 1 AS a; SELECT 2 AS b'));
  assert.deepEqual(rows, [{ b: 2 }]);
});

test('notifications reach subscribers in process, after the setup statement reports connected', async () => {
  const events: NotificationEvent[] = [];
  const stop = executor.subscribe('LISTEN durox_probe', (event) => events.push(event));
  await executor.query("SELECT pg_notify('durox_probe', $1)", ['hello']);
  await stop();
  await executor.query("SELECT pg_notify('durox_probe', $1)", ['after-stop']);
  assert.deepEqual(events, [
    { type: 'connected', rows: [] },
    { type: 'notification', channel: 'durox_probe', payload: 'hello' },
  ]);
});

test('a failing setup statement is reported as disconnected', async () => {
  const events: NotificationEvent[] = [];
  executor.subscribe('SELECT no_such_function()', (event) => events.push(event));
  await executor.query('SELECT 1');
  assert.equal(events.length, 1);
  assert.equal(events[0].type, 'disconnected');
});

test('the migrations apply to PGlite and are idempotent', async () => {
  await applyMigrations(executor, 'probe_schema');
  await applyMigrations(executor, 'probe_schema');
  const rows = await executor.query('SELECT max(version) AS v FROM probe_schema.schema_migrations');
  assert.equal(Number(rows[0].v), latestMigrationVersion());
});

test('a closed executor refuses statements with a clear error', async () => {
  let released = 0;
  const own = new PGliteExecutor(executor.db, async () => {
    released++;
  });
  await own.close();
  await own.close();
  await assert.rejects(own.query('SELECT 1'), /embedded PostgreSQL \(PGlite\) store is closed/);
  assert.equal(released, 1, 'the second close is a no-op');
});
