/**
 * The migration runner: the only TypeScript allowed to send DDL. A store is two things:
 *
 * - storage, built by the numbered files of `sql/migrations/NNNN_name.sql` (tables, indexes,
 *   types; never functions), each applied once and recorded in `<schema>.schema_migrations`;
 * - procedures, the files of `sql/procedures/` (every function defined exactly once, with
 *   CREATE OR REPLACE), re-applied as a whole whenever the hash of their text differs from the one
 *   recorded in `<schema>.schema_procedures`.
 *
 * Both are copied next to the compiled file by scripts/copy-sql.js. See docs/sql.md.
 *
 * Opening an up-to-date store costs one statement (`schema_version()`, callable by the
 * application role). Otherwise a session advisory lock keyed on the schema serialises concurrent
 * starters, and one transaction applies the pending migrations, re-applies the procedures, drops
 * any function they no longer define and re-secures them (see admin.sql, secure_procedures).
 *
 * Stores of the earlier layout (migrations 1-10 or 1-11, each creating or renaming functions) are
 * recognised by a recorded version below the baseline's and upgraded in place, in the same single
 * transaction: every function of the schema is dropped (the renamed bodies too, and the triggers
 * with their functions), the old rows of schema_migrations give way to the baseline's, and the
 * procedures are applied. Their tables are exactly the baseline's, so no data moves.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProviderError } from '../provider/errors';
import type { SqlExecutor, SqlSession } from './sql-executor';
import { quoteSchemaName } from './schema-name';

const OPERATION = 'apply_migrations';
const SQL_DIR = join(__dirname, 'sql');
const MIGRATIONS_DIR = join(SQL_DIR, 'migrations');
const PROCEDURES_DIR = join(SQL_DIR, 'procedures');
const FILE_PATTERN = /^(\d+)_[a-z0-9_]+\.sql$/;

/**
 * The procedure files, in the order they are applied. A LANGUAGE sql body is checked when it is
 * created, so a file may only call SQL functions of files before it (PL/pgSQL bodies are
 * resolved at first call); triggers come after their functions, in the same file.
 */
export const PROCEDURE_FILES: readonly string[] = [
  'internal.sql',
  'notifications.sql',
  'flow.sql',
  'orchestration.sql',
  'worker.sql',
  'sessions.sql',
  'management.sql',
  'admin.sql',
];

/** Version of the baseline migration; stores recording a lower version use the earlier layout. */
export const BASELINE_VERSION = 100;

/**
 * Latest versions of the earlier layout (0001-0010, then 0011, each defining functions in
 * migrations) that can be upgraded in place. Earlier versions must first be opened by a release
 * of that layout.
 */
export const LEGACY_VERSIONS: readonly number[] = [10, 11];

/** One migration file. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** The procedure files as one script, and the hash recorded once they are applied. */
export interface Procedures {
  files: string[];
  sql: string;
  hash: string;
}

let cachedMigrations: Migration[] | undefined;
let cachedProcedures: Procedures | undefined;

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
    if (migrations.length === 0 || migrations[0].version !== BASELINE_VERSION) {
      throw new ProviderError(
        OPERATION,
        'internal',
        `the first migration must be the baseline, version ${BASELINE_VERSION}`,
      );
    }
    cachedMigrations = migrations;
  }
  return cachedMigrations;
}

/** The procedure files shipped with this build (every `.sql` file must be in {@link PROCEDURE_FILES}). */
export function loadProcedures(): Procedures {
  if (cachedProcedures === undefined) {
    const present = readdirSync(PROCEDURES_DIR).filter((file) => file.endsWith('.sql'));
    const unlisted = present.filter((file) => !PROCEDURE_FILES.includes(file));
    if (unlisted.length > 0) {
      throw new ProviderError(
        OPERATION,
        'internal',
        `procedure files missing from PROCEDURE_FILES: ${unlisted.join(', ')}`,
      );
    }
    const parts = PROCEDURE_FILES.map(
      (file) => `-- ==== ${file} ====\n${readFileSync(join(PROCEDURES_DIR, file), 'utf8')}`,
    );
    const sql = parts.join('\n');
    cachedProcedures = { files: [...PROCEDURE_FILES], sql, hash: createHash('sha256').update(sql).digest('hex') };
  }
  return cachedProcedures;
}

/** Highest migration version this build knows. */
export function latestMigrationVersion(): number {
  const migrations = loadMigrations();
  return migrations[migrations.length - 1].version;
}

/**
 * Brings `schema` up to the latest migration and procedures. Idempotent and safe under
 * concurrent callers; one statement when nothing changed.
 *
 * The executor's session must accept several statements in one parameterless `query` (the `pg`
 * simple-query protocol does; a PGlite session routes such calls to `exec`).
 *
 * @throws ProviderError `invalid_argument` for a bad schema name (before any SQL is sent), and
 *   `internal` when the schema was migrated by a newer build than this one, or uses the earlier
 *   layout at a version that cannot be upgraded in place.
 */
export async function applyMigrations(executor: SqlExecutor, schema: string): Promise<void> {
  const quoted = quoteSchemaName(schema, OPERATION);
  const procedures = loadProcedures();
  const state = await currentState(executor, quoted);
  if (state !== null && state.migration === latestMigrationVersion() && state.procedures === procedures.hash) {
    // Up to date: no DDL, no advisory lock. This is what lets an application role that may only
    // EXECUTE the procedures connect to a schema its owner migrated.
    return;
  }
  await executor.withSession(async (session) => {
    await session.query("SELECT pg_advisory_lock(hashtext('durox:migrations:' || $1))", [schema]);
    try {
      await migrateLocked(session, schema, quoted, procedures);
    } finally {
      await session.query("SELECT pg_advisory_unlock(hashtext('durox:migrations:' || $1))", [schema]);
    }
  });
}

async function migrateLocked(
  session: SqlSession,
  schema: string,
  quoted: string,
  procedures: Procedures,
): Promise<void> {
  await session.query(`CREATE SCHEMA IF NOT EXISTS ${quoted}`);
  await session.query(
    `CREATE TABLE IF NOT EXISTS ${quoted}.schema_migrations (
       version INTEGER PRIMARY KEY,
       name TEXT NOT NULL,
       applied_at TIMESTAMPTZ NOT NULL DEFAULT now());
     CREATE TABLE IF NOT EXISTS ${quoted}.schema_procedures (
       singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
       hash TEXT NOT NULL,
       applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`,
  );
  const rows = await session.query(
    `SELECT (SELECT COALESCE(json_agg(version ORDER BY version), '[]'::json) FROM ${quoted}.schema_migrations) AS versions,
            (SELECT hash FROM ${quoted}.schema_procedures) AS hash`,
  );
  const applied = new Set((rows[0]?.versions as number[]).map(Number));
  const recordedHash = (rows[0]?.hash as string | null) ?? null;
  const newest = Math.max(0, ...applied);
  if (newest > latestMigrationVersion()) {
    throw new ProviderError(
      OPERATION,
      'internal',
      `schema "${schema}" is at migration ${newest} but this build only knows up to ` +
        `${latestMigrationVersion()}; upgrade Durox`,
    );
  }
  const legacy = newest > 0 && newest < BASELINE_VERSION;
  if (legacy && !LEGACY_VERSIONS.includes(newest)) {
    throw new ProviderError(
      OPERATION,
      'internal',
      `schema "${schema}" is at migration ${newest} of the earlier layout; this build upgrades it from version ` +
        `${LEGACY_VERSIONS.join(' or ')} only: open it once with an earlier Durox release first`,
    );
  }
  const pending = loadMigrations().filter((m) => (legacy ? m.version > BASELINE_VERSION : !applied.has(m.version)));
  if (!legacy && pending.length === 0 && recordedHash === procedures.hash) return;

  await session.query('BEGIN');
  let step = 'upgrade from the earlier layout';
  try {
    await session.query("SELECT set_config('search_path', quote_ident($1) || ', pg_catalog, pg_temp', true)", [schema]);
    if (legacy) {
      // Drops every function (the renamed bodies and the migration helpers too); CASCADE takes
      // the triggers with their functions. The procedures below recreate both.
      await session.query(DROP_ALL_FUNCTIONS);
      await session.query(`DELETE FROM ${quoted}.schema_migrations`);
      await session.query(`INSERT INTO ${quoted}.schema_migrations (version, name) VALUES ($1, $2)`, [
        BASELINE_VERSION,
        loadMigrations()[0].name,
      ]);
    }
    for (const migration of pending) {
      step = `migration ${migration.name}`;
      await session.query(migration.sql);
      await session.query(`INSERT INTO ${quoted}.schema_migrations (version, name) VALUES ($1, $2)`, [
        migration.version,
        migration.name,
      ]);
    }
    step = 'the procedures';
    await session.query(procedures.sql);
    await session.query(DROP_STALE_FUNCTIONS);
    await session.query(`SELECT ${quoted}.secure_procedures()`);
    await session.query(
      `INSERT INTO ${quoted}.schema_procedures (singleton, hash) VALUES (TRUE, $1)
       ON CONFLICT (singleton) DO UPDATE SET hash = EXCLUDED.hash, applied_at = now()`,
      [procedures.hash],
    );
    await session.query('COMMIT');
  } catch (error) {
    // The original error matters more than a failed rollback on a broken connection.
    await session.query('ROLLBACK').catch(() => undefined);
    throw new ProviderError(OPERATION, 'internal', `${step} failed on schema "${schema}": ${describe(error)}`, {
      cause: error,
    });
  }
}

/** Every function of the current schema (the first of search_path). */
const DROP_ALL_FUNCTIONS = `DO $drop$
DECLARE
    v_function regprocedure;
BEGIN
    FOR v_function IN
        SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
        WHERE p.pronamespace = current_schema()::regnamespace AND p.prokind = 'f'
    LOOP
        EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', v_function);
    END LOOP;
END
$drop$`;

/**
 * Functions of the current schema that the procedure files did not (re)create in this
 * transaction: CREATE OR REPLACE rewrites a function's pg_proc row, so a row whose xmin is not
 * this transaction's id belongs to a function the files no longer define.
 */
const DROP_STALE_FUNCTIONS = `DO $drop$
DECLARE
    v_function regprocedure;
BEGIN
    FOR v_function IN
        SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
        WHERE p.pronamespace = current_schema()::regnamespace AND p.prokind = 'f'
          AND p.xmin <> pg_catalog.pg_current_xact_id()::xid
    LOOP
        EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', v_function);
    END LOOP;
END
$drop$`;

/** The schema's recorded state through its procedure, or null when it has none (yet). */
async function currentState(
  executor: SqlExecutor,
  quoted: string,
): Promise<{ migration: number; procedures: string | null } | null> {
  try {
    const rows = await executor.query(`SELECT ${quoted}.schema_version() AS result`);
    const result = rows[0]?.result as { migration?: unknown; procedures?: unknown } | number | null;
    // A store of the earlier layout answers a bare integer: the locked path upgrades it.
    if (result === null || typeof result !== 'object') return null;
    return {
      migration: Number(result.migration),
      procedures: typeof result.procedures === 'string' ? result.procedures : null,
    };
  } catch {
    // No schema yet: the locked path below creates it.
    return null;
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
