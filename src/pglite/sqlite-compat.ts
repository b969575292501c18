/**
 * `SqliteProvider` for programs written against duroxide's API (docs/runtime.md, "The package entry").
 *
 * Durox has no SQLite storage: its storage is PostgreSQL stored procedures. This class exists so
 * that `SqliteProvider.open(...)` / `SqliteProvider.inMemory()` keep working unchanged, and it is
 * backed by the embedded PostgreSQL ({@link PGliteProvider}).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IN_MEMORY, openDirectoryStore, openMemoryStore, PGliteProvider, type EmbeddedStore } from './pglite-provider';

/** `sqlite:<path>`, `sqlite://<path>` or a bare path, without sqlx-style `?options`. */
export function sqlitePathOf(location: string): string {
  let rest = location.startsWith('sqlite:') ? location.slice('sqlite:'.length) : location;
  if (location.startsWith('sqlite://')) rest = location.slice('sqlite://'.length);
  const query = rest.indexOf('?');
  return query === -1 ? rest : rest.slice(0, query);
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Same signatures as duroxide's `SqliteProvider`, **backed by Durox's embedded PostgreSQL
 * (PGlite), not by SQLite**: the data is a PostgreSQL data directory, not a SQLite file.
 *
 * - `SqliteProvider.open('app.db')` (or `'sqlite:app.db'`) creates or reopens a PGlite data
 *   *directory* named `app.db` (its parent directories are created as needed). SQLite tools cannot
 *   read it; `PGliteProvider.open('app.db')` opens the same store. One process may have it open
 *   at a time.
 * - `SqliteProvider.open(':memory:')` and `SqliteProvider.inMemory()` give a fresh isolated
 *   in-memory store, as {@link PGliteProvider.inMemory} does.
 *
 * Behaviour is that of the PostgreSQL provider (same migrations and stored procedures).
 */
export class SqliteProvider extends PGliteProvider {
  /** Internal marker used by the JavaScript API (`'sqlite'`, as in duroxide). */
  override readonly _type: string = 'sqlite';

  /** Not used by applications: obtain instances from {@link open} or {@link inMemory}. */
  protected constructor(store: EmbeddedStore) {
    super(store, 'pglite');
  }

  /**
   * Opens `sqlite:<path>` or a bare `<path>`: a PGlite data directory at that path, created with
   * its parent directories if missing. `:memory:` gives an in-memory store.
   *
   * @throws Error `Failed to create DB file: …` when the directory cannot be created, and
   *   `Failed to open SQLite: …` when the store cannot be opened (in use by another process, not
   *   a Durox store, written by a newer Durox, …).
   */
  static override async open(location: string): Promise<SqliteProvider> {
    if (typeof location !== 'string' || sqlitePathOf(location).length === 0) {
      throw new Error('Failed to open SQLite: the path must be a non-empty string');
    }
    const file = sqlitePathOf(location);
    if (file === IN_MEMORY) return SqliteProvider.inMemory();
    try {
      fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    } catch (error) {
      throw new Error(`Failed to create DB file: ${reason(error)}`, { cause: error });
    }
    try {
      return new SqliteProvider(await openDirectoryStore(file));
    } catch (error) {
      throw new Error(`Failed to open SQLite: ${path.resolve(file)}: ${reason(error)}`, { cause: error });
    }
  }

  /** A fresh, isolated in-memory store (each call is independent). */
  static override async inMemory(): Promise<SqliteProvider> {
    try {
      return new SqliteProvider(await openMemoryStore());
    } catch (error) {
      throw new Error(`Failed to create in-memory SQLite: ${reason(error)}`, { cause: error });
    }
  }
}
