/**
 * The LISTEN connection's set-up (`listen_for_wakeups`) listens, then reads what is waiting.
 * PostgreSQL puts a LISTEN into effect only when its statement commits, and does not deliver what
 * committed between the statement's reads and that commit. A delayed item committed in that
 * window must still reach the subscriber: the executor reads the state again once the LISTEN is
 * in effect. The window is held open deterministically: the set-up waits for an advisory lock the
 * test holds, after its reads and before its commit.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Client as PgClient } from 'pg';
import { applyMigrations } from '../../src/store/migrations';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { ProcedureProvider } from '../../src/store/procedure-provider';
import type { NotificationEvent } from '../../src/store/sql-executor';
import { databaseUrl, dropTestSchema, uniqueSchemaName } from '../helpers/postgres-harness';
import { sleep } from '../helpers/sleep';

const schema = uniqueSchemaName('listen');
const GATE = 4242_0001;
let executor: PgExecutor;
let provider: ProcedureProvider;
let gate: PgClient;

before(async () => {
  executor = PgExecutor.fromUrl(databaseUrl(), 2);
  await applyMigrations(executor, schema);
  provider = new ProcedureProvider(executor, schema, 'postgres');
  await executor.query(`CREATE FUNCTION "${schema}".test_listen_then_wait() RETURNS json LANGUAGE plpgsql AS $$
    DECLARE
      v_state json;
    BEGIN
      v_state := "${schema}".listen_for_wakeups();
      PERFORM pg_advisory_xact_lock_shared(${GATE});
      RETURN v_state;
    END $$`);
  gate = new PgClient({ connectionString: databaseUrl() });
  await gate.connect();
});

after(async () => {
  await gate.end();
  await provider.close();
  await dropTestSchema(schema);
});

/** Resolves once a backend waits for the gate's advisory lock. */
async function setupBlocked(): Promise<void> {
  for (let waited = 0; waited < 10_000; waited += 10) {
    const { rows } = await gate.query(
      `SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = $1`,
      [GATE],
    );
    if (rows.length > 0) return;
    await sleep(10);
  }
  throw new Error('the set-up never waited for the gate');
}

test('a delayed item committed while the set-up commits its LISTEN is in the state the subscriber gets', async () => {
  await gate.query('SELECT pg_advisory_lock($1)', [GATE]);
  const events: NotificationEvent[] = [];
  let connected: (rows: unknown) => void = () => undefined;
  const state = new Promise((resolve) => (connected = resolve));
  const stop = executor.subscribe(`SELECT "${schema}".test_listen_then_wait() AS result`, (event) => {
    events.push(event);
    if (event.type === 'connected') connected(event.rows);
  });
  try {
    await setupBlocked(); // listened and read; not committed yet
    await provider.enqueueOrchestratorWork(
      { type: 'ExternalRaised', instance: 'in-the-window', name: 'late', data: '1' },
      { delayMs: 60_000 },
    );
    await gate.query('SELECT pg_advisory_unlock($1)', [GATE]);
    const rows = (await state) as Array<{ result: { orchestratorDueInMs: number[] } }>;
    const due = rows[0].result.orchestratorDueInMs;
    const announced = events.filter((e) => e.type === 'notification' && /^o:0:\d+/.test(e.payload));
    assert.ok(
      due.some((ms) => ms > 50_000 && ms <= 60_000) || announced.length > 0,
      `the delayed item reached the subscriber (due ${JSON.stringify(due)}, ${announced.length} notifications)`,
    );
  } finally {
    await gate.query('SELECT pg_advisory_unlock_all()');
    await stop();
  }
});
