/**
 * Procedure calls as named prepared statements (src/postgres/pg-executor.ts, README "Prepared
 * procedure calls"), on the real server: each call text is parsed once per connection and then
 * only bound and executed; a re-applied procedure and a schema dropped and migrated again under
 * the same name still answer through the statements prepared before (PostgreSQL re-analyses them);
 * `preparedStatements: false` prepares nothing.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { applyMigrations } from '../../src/store/migrations';
import { ProcedureProvider } from '../../src/store/procedure-provider';
import { databaseUrl, dropTestSchema, uniqueSchemaName } from '../helpers/postgres-harness';

const schemas: string[] = [];

after(async () => {
  for (const schema of schemas) await dropTestSchema(schema);
});

/** A store on one pooled connection, so its prepared statements are visible to its own queries. */
async function openStore(
  preparedStatements: boolean,
): Promise<{ executor: PgExecutor; provider: ProcedureProvider; schema: string }> {
  const schema = uniqueSchemaName('prepared_calls');
  schemas.push(schema);
  const executor = new PgExecutor(databaseUrl(), { max: 1, preparedStatements });
  await applyMigrations(executor, schema);
  return { executor, provider: new ProcedureProvider(executor, schema, 'postgres'), schema };
}

async function preparedOnConnection(executor: PgExecutor): Promise<Array<{ name: string; statement: string }>> {
  const rows = await executor.query(
    "SELECT name, statement FROM pg_prepared_statements WHERE name LIKE 'durox_%' ORDER BY name",
  );
  return rows as Array<{ name: string; statement: string }>;
}

test('each procedure call text is prepared once on a connection and reused', async () => {
  const { executor, provider, schema } = await openStore(true);
  try {
    assert.equal(await provider.fetchOrchestrationItem({ lockTimeoutMs: 30_000 }), null);
    assert.equal(await provider.fetchOrchestrationItem({ lockTimeoutMs: 30_000 }), null);
    assert.equal((await provider.readHistory('nobody')).length, 0);
    const prepared = await preparedOnConnection(executor);
    assert.equal(prepared.length, 2, JSON.stringify(prepared));
    assert.ok(prepared.some((p) => p.statement.startsWith(`SELECT "${schema}".fetch_orchestration_item(`)));
    assert.ok(prepared.some((p) => p.statement.includes('.read_history')));
  } finally {
    await provider.close();
  }
});

test('a prepared call keeps working after its procedure is re-applied and after its schema is migrated again', async () => {
  const { executor, provider, schema } = await openStore(true);
  try {
    assert.equal(await provider.fetchOrchestrationItem({ lockTimeoutMs: 30_000 }), null);
    // The migration runner re-applies every procedure (CREATE OR REPLACE) on each connect.
    await applyMigrations(executor, schema);
    assert.equal(await provider.fetchOrchestrationItem({ lockTimeoutMs: 30_000 }), null);
    // Dropped and created again: new function objects under the same names.
    await executor.query(`DROP SCHEMA "${schema}" CASCADE`);
    await applyMigrations(executor, schema);
    assert.equal(await provider.fetchOrchestrationItem({ lockTimeoutMs: 30_000 }), null);
    assert.equal((await preparedOnConnection(executor)).length, 1);
  } finally {
    await provider.close();
  }
});

test('with preparedStatements: false nothing is prepared', async () => {
  const { executor, provider } = await openStore(false);
  try {
    assert.equal(await provider.fetchOrchestrationItem({ lockTimeoutMs: 30_000 }), null);
    assert.equal(await provider.fetchOrchestrationItem({ lockTimeoutMs: 30_000 }), null);
    assert.deepEqual(await preparedOnConnection(executor), []);
  } finally {
    await provider.close();
  }
});
