/**
 * Durox's embedded store: the very same migrations and stored procedures as on a PostgreSQL
 * server, run in process by PGlite (PostgreSQL compiled to WebAssembly). No server, no setup.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import { applyMigrations, latestMigrationVersion } from '../store/migrations';
import { ProcedureProvider } from '../store/procedure-provider';
import { quoteSchemaName } from '../store/schema-name';
import type { SqlExecutor } from '../store/sql-executor';
import { inspectDataDirectory, LOCK_FILE, PGDATA_DIR, writeMarker } from './data-directory';
import { leaseMemoryStore } from './memory-engine';
import { PGliteExecutor } from './pglite-executor';
import { createPGlite } from './pglite-factory';
import { StoreLock } from './store-lock';

/** Schema holding the tables and procedures in a data directory created by this build. */
const DIRECTORY_SCHEMA = 'durox';

/** Where {@link PGliteProvider.location} says an in-memory store lives. */
export const IN_MEMORY = ':memory:';

/** An opened store, ready to be wrapped by a provider class. */
export interface EmbeddedStore {
  executor: SqlExecutor;
  schema: string;
  location: string;
}

/**
 * Opens (or creates) the data directory `dir`; see {@link PGliteProvider.open}.
 * Nothing is written before the directory is known to be new or ours and not too new.
 */
export async function openDirectoryStore(dir: string): Promise<EmbeddedStore> {
  const root = path.resolve(dir);
  const state = inspectDataDirectory(root);
  if (state.kind === 'existing' && state.marker.migrationVersion > latestMigrationVersion()) {
    throw new Error(
      `${root} was written by a newer Durox (migration ${state.marker.migrationVersion}; this build knows up to ` +
        `${latestMigrationVersion()}); upgrade Durox to open it. Nothing was changed.`,
    );
  }
  const schema = state.kind === 'existing' ? state.marker.schema : DIRECTORY_SCHEMA;
  quoteSchemaName(schema, 'open');
  fs.mkdirSync(root, { recursive: true });
  const lock = StoreLock.acquire(path.join(root, LOCK_FILE));
  let db: PGlite | undefined;
  try {
    if (state.kind === 'new') writeMarker(root, schema, 0);
    const opened = await createPGlite(path.join(root, PGDATA_DIR));
    db = opened;
    const executor = new PGliteExecutor(opened, async () => {
      try {
        await opened.close();
      } finally {
        lock.release();
      }
    });
    await applyMigrations(executor, schema);
    writeMarker(root, schema, latestMigrationVersion());
    return { executor, schema, location: root };
  } catch (error) {
    await db?.close().catch(() => undefined);
    lock.release();
    throw error;
  }
}

/** Creates an isolated in-memory store; see {@link PGliteProvider.inMemory}. */
export async function openMemoryStore(): Promise<EmbeddedStore> {
  const lease = await leaseMemoryStore(dropSchema);
  try {
    await applyMigrations(lease.executor, lease.schema);
  } catch (error) {
    await lease.executor.close().catch(() => undefined);
    throw error;
  }
  return { executor: lease.executor, schema: lease.schema, location: IN_MEMORY };
}

/**
 * Removes an in-memory store's schema when its provider closes, so the shared engine does not
 * grow. This is the only DDL outside the migration runner: the name comes from the engine
 * (`mem_<n>`) and is validated and quoted all the same.
 */
async function dropSchema(shared: SqlExecutor, schema: string): Promise<void> {
  await shared.query(`DROP SCHEMA IF EXISTS ${quoteSchemaName(schema, 'close')} CASCADE`);
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The embedded Durox provider: PostgreSQL in process (PGlite), running the same migrations and
 * stored procedures as {@link PostgresProvider} does on a server.
 *
 * - {@link PGliteProvider.open} keeps its data in a directory, reopened with its data next time.
 *   One process at a time: a second opener is refused while the first runs.
 * - {@link PGliteProvider.inMemory} is a fresh, isolated store that disappears on `close()`.
 *
 * The embedded engine has a single connection, so all calls run one after the other; see
 * src/pglite/pglite-executor.ts for every difference from a server.
 *
 * Call `close()` when done: it releases the directory's lock at once, and lets the process exit
 * promptly (an open engine keeps Node alive up to ~10 s after its last statement, because of
 * PostgreSQL's idle statistics timer).
 */
export class PGliteProvider extends ProcedureProvider {
  /** Internal marker used by the JavaScript API. */
  readonly _type: string = 'pglite';
  /** Absolute data directory, or `:memory:`. */
  readonly location: string;

  protected constructor(store: EmbeddedStore, name = 'pglite') {
    super(store.executor, store.schema, name);
    this.location = store.location;
  }

  /**
   * Opens the data directory `dir`, creating it (and its parents) when missing or empty, and
   * brings it to the latest migration.
   *
   * @throws Error `Failed to open the embedded store at <dir>: …` when another process has it open
   *   (lock file with the owner's pid; a crashed owner's lock is taken over), when the directory
   *   holds something that is not a Durox store, or when a newer Durox wrote it. In each case
   *   nothing in the directory is changed.
   */
  static async open(dir: string): Promise<PGliteProvider> {
    if (typeof dir !== 'string' || dir.length === 0) {
      throw new Error('Failed to open the embedded store: the directory must be a non-empty string');
    }
    try {
      return new PGliteProvider(await openDirectoryStore(dir));
    } catch (error) {
      throw new Error(`Failed to open the embedded store at ${path.resolve(dir)}: ${reason(error)}`, { cause: error });
    }
  }

  /**
   * A fresh in-memory store, isolated from every other. All in-memory stores of a process share
   * one engine, each in its own schema, so only the first one pays for starting PostgreSQL.
   * `close()` discards the data.
   */
  static async inMemory(): Promise<PGliteProvider> {
    try {
      return new PGliteProvider(await openMemoryStore());
    } catch (error) {
      throw new Error(`Failed to create the in-memory embedded store: ${reason(error)}`, { cause: error });
    }
  }
}
