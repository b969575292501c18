/**
 * Stores of the earlier SQL layout, for upgrade tests: applies the frozen migrations of
 * test/fixtures/legacy-migrations (0001-0011, each creating or renaming functions) exactly as the
 * earlier migration runner did: each file in its own transaction with search_path set to the
 * schema, recorded in schema_migrations, then secure_procedures() once 0009 is there.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SqlExecutor } from '../../src/store/sql-executor';

/** The frozen files (read from the source tree: tsc does not copy .sql files). */
export const LEGACY_MIGRATIONS_DIR = join(__dirname, '..', '..', '..', 'test', 'fixtures', 'legacy-migrations');

/** Creates `schema` as the earlier layout at migration `upToVersion` (default: its last file). */
export async function createLegacyStore(
  executor: SqlExecutor,
  schema: string,
  upToVersion = Number.MAX_SAFE_INTEGER,
): Promise<number> {
  const files = readdirSync(LEGACY_MIGRATIONS_DIR)
    .filter((file) => /^\d+_[a-z0-9_]+\.sql$/.test(file))
    .sort();
  let last = 0;
  await executor.withSession(async (session) => {
    await session.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await session.query(
      `CREATE TABLE IF NOT EXISTS "${schema}".schema_migrations (
         version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`,
    );
    for (const file of files) {
      const version = Number(file.slice(0, 4));
      if (version > upToVersion) break;
      await session.query('BEGIN');
      await session.query("SELECT set_config('search_path', quote_ident($1) || ', pg_catalog', true)", [schema]);
      await session.query(readFileSync(join(LEGACY_MIGRATIONS_DIR, file), 'utf8'));
      await session.query(`INSERT INTO "${schema}".schema_migrations (version, name) VALUES ($1, $2)`, [version, file]);
      await session.query('COMMIT');
      last = version;
    }
    if (last >= 9) await session.query(`SELECT "${schema}".secure_procedures()`);
  });
  return last;
}
