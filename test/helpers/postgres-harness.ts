/**
 * Conformance factory for the PostgreSQL server provider: every test gets its own schema,
 * migrated from scratch, dropped again on close.
 *
 * The two statements below that are not procedure calls (corrupting a history row and dropping the
 * test schema) simulate storage damage and clean up test data; no procedure may do either, so
 * they live here, in test code only, on schema names validated by quoteSchemaName.
 */
import { randomBytes } from 'node:crypto';
import { applyMigrations } from '../../src/store/migrations';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { ProcedureProvider } from '../../src/store/procedure-provider';
import { quoteSchemaName } from '../../src/store/schema-name';
import type { Provider } from '../../src/provider/contract';
import type { ProviderTestFactory, ProviderTestHarness } from '../conformance/kit';

/** DATABASE_URL, or the local development server. */
export function databaseUrl(): string {
  return process.env.DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/test';
}

/** A schema name unique to this process and call. */
export function uniqueSchemaName(prefix: string): string {
  return `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;
}

/** Pool size per provider in tests: small, because many tests run at once. */
const TEST_POOL_MAX = 4;

/** Creates a migrated schema and the harness around it. */
export async function createPostgresHarness(url: string, prefix = 'conf'): Promise<ProviderTestHarness> {
  const schema = uniqueSchemaName(prefix);
  const quoted = quoteSchemaName(schema, 'test');
  const admin = PgExecutor.fromUrl(url, 2);
  await applyMigrations(admin, schema);
  const opened: Provider[] = [];
  const open = (): Provider => {
    const provider = new ProcedureProvider(PgExecutor.fromUrl(url, TEST_POOL_MAX), schema, 'postgres');
    opened.push(provider);
    return provider;
  };
  let offsetMs = 0;
  return {
    provider: open(),
    openPeer: async () => open(),
    advanceClock: async (ms) => {
      offsetMs += ms;
      await admin.query(`SELECT ${quoted}.set_test_clock_offset($1) AS result`, [offsetMs]);
    },
    corruptHistory: async (instanceId) => {
      await admin.query(`UPDATE ${quoted}.history SET event_data = 'not json {' WHERE instance_id = $1`, [instanceId]);
    },
    close: async () => {
      await Promise.all(opened.map((p) => p.close()));
      await admin.query(`DROP SCHEMA IF EXISTS ${quoted} CASCADE`);
      await admin.close();
    },
  };
}

/** The conformance factory for a server at `url`. */
export function postgresFactory(name: string, url: () => string): ProviderTestFactory {
  return { name, create: () => createPostgresHarness(url()) };
}

/** Migrates `schema` on the test server (its own short-lived connection). */
export async function migrateTestSchema(schema: string): Promise<void> {
  const admin = PgExecutor.fromUrl(databaseUrl(), 1);
  try {
    await applyMigrations(admin, schema);
  } finally {
    await admin.close();
  }
}

/** Drops a schema a test created (tests leave nothing behind in the user's database). */
export async function dropTestSchema(schema: string): Promise<void> {
  const admin = PgExecutor.fromUrl(databaseUrl(), 1);
  try {
    await admin.query(`DROP SCHEMA IF EXISTS ${quoteSchemaName(schema, 'test')} CASCADE`);
  } finally {
    await admin.close();
  }
}
