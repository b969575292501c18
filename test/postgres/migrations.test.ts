/** The migration runner: concurrency, idempotence, upgrades, version guard, hostile schema names. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  applyMigrations,
  BASELINE_VERSION,
  latestMigrationVersion,
  loadMigrations,
  loadProcedures,
} from '../../src/store/migrations';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { PostgresProvider } from '../../src/postgres/postgres-provider';
import { ProcedureProvider } from '../../src/store/procedure-provider';
import { ProviderError } from '../../src/provider/errors';
import { LOCK_MS, startItem } from '../conformance/fixtures';
import { CountingExecutor } from '../helpers/counting-executor';
import { databaseUrl, uniqueSchemaName } from '../helpers/postgres-harness';

async function appliedVersions(executor: PgExecutor, schema: string): Promise<number[]> {
  const rows = await executor.query(`SELECT version FROM "${schema}".schema_migrations ORDER BY version`);
  return rows.map((row) => Number(row.version));
}

async function dropSchema(executor: PgExecutor, schema: string): Promise<void> {
  await executor.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}

describe('postgres: migrations', () => {
  it('knows its migrations in order', () => {
    const versions = loadMigrations().map((m) => m.version);
    assert.deepEqual(
      versions,
      [...versions].sort((a, b) => a - b),
    );
    assert.equal(latestMigrationVersion(), versions[versions.length - 1]);
    assert.equal(versions[0], BASELINE_VERSION);
  });

  it('storage migrations create no functions; procedures define each function exactly once', () => {
    for (const migration of loadMigrations()) {
      assert.doesNotMatch(
        migration.sql,
        /CREATE\s+(OR\s+REPLACE\s+)?FUNCTION/i,
        `${migration.name} creates no function`,
      );
    }
    const names = [...loadProcedures().sql.matchAll(/CREATE OR REPLACE FUNCTION (\w+)\(/g)].map((match) => match[1]);
    assert.ok(names.length > 40);
    assert.deepEqual(
      names.filter((name, i) => names.indexOf(name) !== i),
      [],
      'no function is defined twice',
    );
  });

  it(
    'applies each migration once when 4 pools migrate the same schema at the same ' + 'time, and re-runs as a no-op',
    async () => {
      const schema = uniqueSchemaName('mig_conc');
      const pools = Array.from({ length: 4 }, () => PgExecutor.fromUrl(databaseUrl(), 2));
      try {
        await Promise.all(pools.map((pool) => applyMigrations(pool, schema)));
        assert.deepEqual(
          await appliedVersions(pools[0], schema),
          loadMigrations().map((m) => m.version),
        );
        const counting = new CountingExecutor(pools[1]);
        await applyMigrations(counting, schema);
        assert.ok(!counting.texts.some((t) => t.includes('CREATE OR REPLACE FUNCTION')), 're-run applies nothing');
        const provider = new ProcedureProvider(pools[2], schema, 'postgres');
        await provider.enqueueOrchestratorWork(startItem('after-migration'));
        assert.equal(
          (await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS }))?.instanceId,
          'after-migration',
        );
      } finally {
        await dropSchema(pools[0], schema);
        await Promise.all(pools.map((pool) => pool.close()));
      }
    },
  );

  it(
    're-applies the procedures when their recorded hash differs, dropping a ' + 'function they no longer define',
    async () => {
      const schema = uniqueSchemaName('mig_hash');
      const admin = PgExecutor.fromUrl(databaseUrl(), 2);
      try {
        await applyMigrations(admin, schema);
        await admin.query(`CREATE FUNCTION "${schema}".stale_procedure() RETURNS int LANGUAGE sql AS 'SELECT 1'`);
        await admin.query(`UPDATE "${schema}".schema_procedures SET hash = 'outdated'`);
        const counting = new CountingExecutor(admin);
        await applyMigrations(counting, schema);
        assert.ok(
          counting.texts.some((t) => t.includes('CREATE OR REPLACE FUNCTION')),
          'the procedures were re-applied',
        );
        assert.ok(
          !counting.texts.some((t) => t.includes('CREATE TABLE IF NOT EXISTS instances')),
          'no migration ran again',
        );
        const stale = await admin.query(`SELECT to_regprocedure($1) IS NULL AS gone`, [
          `"${schema}".stale_procedure()`,
        ]);
        assert.equal(stale[0].gone, true);
        const state = await admin.query(`SELECT "${schema}".schema_version() AS result`);
        assert.deepEqual(state[0].result, { migration: latestMigrationVersion(), procedures: loadProcedures().hash });
        counting.take();
        await applyMigrations(counting, schema);
        assert.equal(counting.count, 1, 'an up-to-date store opens in one statement');
      } finally {
        await dropSchema(admin, schema);
        await admin.close();
      }
    },
  );

  it('refuses a schema migrated by a newer build', async () => {
    const schema = uniqueSchemaName('mig_new');
    const admin = PgExecutor.fromUrl(databaseUrl(), 2);
    try {
      await applyMigrations(admin, schema);
      await admin.query(`INSERT INTO "${schema}".schema_migrations (version, name) VALUES ($1, 'future.sql')`, [
        latestMigrationVersion() + 1,
      ]);
      await assert.rejects(applyMigrations(admin, schema), /is at migration \d+ but this build only knows up to \d+/);
    } finally {
      await dropSchema(admin, schema);
      await admin.close();
    }
  });

  it('rejects hostile schema names before sending any SQL', async () => {
    const counting = new CountingExecutor(PgExecutor.fromUrl(databaseUrl(), 1));
    try {
      for (const name of ['a"; drop table x; --', 'Public', 'x'.repeat(64), '', '1abc', 'sch-ema', 'a b']) {
        await assert.rejects(applyMigrations(counting, name), (error: unknown) => {
          assert.ok(error instanceof ProviderError);
          assert.equal(error.code, 'invalid_argument');
          return true;
        });
        assert.throws(() => new ProcedureProvider(counting, name, 'postgres'), ProviderError);
        await assert.rejects(PostgresProvider.connectWithSchema(databaseUrl(), name), ProviderError);
      }
      assert.equal(counting.count, 0);
      assert.doesNotThrow(() => new ProcedureProvider(counting, 'x'.repeat(63), 'postgres'));
    } finally {
      await counting.close();
    }
  });

  it('PostgresProvider.connectWithSchema creates the schema; connection failures say so', async () => {
    const schema = uniqueSchemaName('mig_conn');
    const provider = await PostgresProvider.connectWithSchema(databaseUrl(), schema);
    const admin = PgExecutor.fromUrl(databaseUrl(), 1);
    try {
      assert.equal(provider.name, 'postgres');
      assert.deepEqual(await provider.listInstances(), []);
      await assert.rejects(
        PostgresProvider.connect('postgres://nobody@127.0.0.1:1/none'),
        /^Error: Failed to connect to PostgreSQL: /,
      );
    } finally {
      await provider.close();
      await dropSchema(admin, schema);
      await admin.close();
    }
  });
});
