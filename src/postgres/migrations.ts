/**
 * The migration runner: the only TypeScript allowed to send DDL. It applies the versioned
 * `migrations/NNNN_name.sql` files (copied next to the compiled file by scripts/copy-sql.js) to
 * one schema, each in its own transaction, and records them in `<schema>.schema_migrations`.
 *
 * Several processes may start at once: a session advisory lock keyed on the schema serialises
 * them, so each file runs exactly once and late starters just see it recorded.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProviderError } from '../provider/errors';
import type { SqlExecutor, SqlSession } from './sql-executor';
import { quoteSchemaName } from './schema-name';

const OPERATION = 'apply_migrations';
const MIGRATIONS_DIR = join(__dirname, 'migrations');
const FILE_PATTERN = /^(\d+)_[a-z0-9_]+\.sql$/;

/** One migration file. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

let cachedMigrations: Migration[] | undefined;

/** The migrations shipped with this build, ordered by version. */
export function loadMigrations(): Migration[] {
  if (cachedMigrations === undefined) {
    const migrations: Migration[] = [];
    for (const file of readdirSync(MIGRATIONS_DIR).sort()) {
      const match = FILE_PATTERN.exec(file);
      if (match === null) continue;
      migrations.push({ version: Number(match[1]), name: file, sql: readFileSync(join(MIGRATIONS_DIR, file), 'utf8') });
    }
    migrations.sort((a, b) => a.version - b.version);
    for (let i = 1; i < migrations.length; i += 1) {
      if (migrations[i].version === migrations[i - 1].version) {
        throw new ProviderError(OPERATION, 'internal', `two migrations share version ${migrations[i].version}`);
      }
    }
    cachedMigrations = migrations;
  }
  return cachedMigrations;
}

/** Highest migration version this build knows. */
export function latestMigrationVersion(): number {
  const migrations = loadMigrations();
  return migrations.length === 0 ? 0 : migrations[migrations.length - 1].version;
}

/**
 * Brings `schema` up to the latest migration (or to `options.upToVersion`, used by upgrade
 * tests). Idempotent and safe under concurrent callers.
 *
 * The executor's session must accept several statements in one parameterless `query` (the `pg`
 * simple-query protocol does; a PGlite session should route such calls to `exec`).
 *
 * @throws ProviderError `invalid_argument` for a bad schema name (before any SQL is sent), and
 *   `internal` when the schema was migrated by a newer build than this one.
 */
export async function applyMigrations(
  executor: SqlExecutor,
  schema: string,
  options: { upToVersion?: number } = {},
): Promise<void> {
  const quoted = quoteSchemaName(schema, OPERATION);
  const migrations = loadMigrations().filter((m) => options.upToVersion === undefined || m.version <= options.upToVersion);
  if (options.upToVersion === undefined && (await currentVersion(executor, quoted)) === latestMigrationVersion()) {
    // Up to date: no DDL, no advisory lock. This is what lets an application role that may only
    // EXECUTE the procedures (0009_least_privilege.sql) connect to a schema its owner migrated.
    return;
  }
  await executor.withSession(async (session) => {
    await session.query("SELECT pg_advisory_lock(hashtext('durox:migrations:' || $1))", [schema]);
    try {
      await migrateLocked(session, schema, quoted, migrations);
    } finally {
      await session.query("SELECT pg_advisory_unlock(hashtext('durox:migrations:' || $1))", [schema]);
    }
  });
}

async function migrateLocked(session: SqlSession, schema: string, quoted: string, migrations: Migration[]): Promise<void> {
  await session.query(`CREATE SCHEMA IF NOT EXISTS ${quoted}`);
  await session.query(
    `CREATE TABLE IF NOT EXISTS ${quoted}.schema_migrations (
       version INTEGER PRIMARY KEY,
       name TEXT NOT NULL,
       applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`,
  );
  const rows = await session.query(`SELECT version FROM ${quoted}.schema_migrations ORDER BY version`);
  const applied = new Set(rows.map((row) => Number(row.version)));
  const newest = Math.max(0, ...applied);
  if (newest > latestMigrationVersion()) {
    throw new ProviderError(
      OPERATION,
      'internal',
      `schema "${schema}" is at migration ${newest} but this build only knows up to ${latestMigrationVersion()}; upgrade Durox`,
    );
  }
  let ranAny = false;
  for (const migration of migrations) {
    if (applied.has(migration.version)) continue;
    ranAny = true;
    await session.query('BEGIN');
    try {
      await session.query("SELECT set_config('search_path', quote_ident($1) || ', pg_catalog', true)", [schema]);
      await session.query(migration.sql);
      await session.query(`INSERT INTO ${quoted}.schema_migrations (version, name) VALUES ($1, $2)`, [
        migration.version,
        migration.name,
      ]);
      await session.query('COMMIT');
    } catch (error) {
      // The original error matters more than a failed rollback on a broken connection.
      await session.query('ROLLBACK').catch(() => undefined);
      throw new ProviderError(OPERATION, 'internal', `migration ${migration.name} failed on schema "${schema}": ${describe(error)}`, {
        cause: error,
      });
    }
  }
  if (ranAny) await secureProcedures(session, schema, quoted);
}

/** The schema's recorded migration version through its procedure, or null when it has none yet. */
async function currentVersion(executor: SqlExecutor, quoted: string): Promise<number | null> {
  try {
    const rows = await executor.query(`SELECT ${quoted}.schema_version() AS result`);
    return Number(rows[0]?.result);
  } catch {
    // No schema, or a schema from before 0009: the locked path below finds out and migrates.
    return null;
  }
}

/**
 * Re-applies the least-privilege rules (SECURITY DEFINER, pinned search_path, no PUBLIC EXECUTE)
 * once the schema has them: a CREATE OR REPLACE FUNCTION in any migration resets those attributes.
 */
async function secureProcedures(session: SqlSession, schema: string, quoted: string): Promise<void> {
  const present = await session.query("SELECT to_regprocedure(quote_ident($1) || '.secure_procedures()') IS NOT NULL AS present", [schema]);
  if (present[0]?.present === true) await session.query(`SELECT ${quoted}.secure_procedures()`);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
