/**
 * {@link SqlExecutor} on an in-process PGlite database (PostgreSQL compiled to WebAssembly).
 *
 * How this differs from the `pg` pool on a server, in one place:
 * - One connection. PGlite is a single backend, so every statement of every caller runs one after
 *   the other. PGlite queues statements itself; this executor additionally runs each call (and each
 *   whole {@link PGliteExecutor.withSession}) under its own mutex, so the migration runner's
 *   `BEGIN ... COMMIT` and session advisory lock can never interleave with a procedure call of a
 *   dispatcher. `FOR UPDATE SKIP LOCKED` and advisory locks still work; they simply never contend.
 * - A session's parameterless statement goes through PGlite's `exec` (simple-query protocol), so a
 *   whole migration file can run as one call, as it does with `pg`.
 * - "Round trips" are in-process function calls (about a millisecond per procedure call).
 * - Notifications are delivered in-process: a `NOTIFY` sent by a procedure reaches the callbacks
 *   of {@link PGliteExecutor.subscribe} (PGlite's `onNotification`) right after the statement
 *   that committed it, because that statement ran on the same and only connection. The
 *   subscription never disconnects, so there is nothing to reconnect.
 * - One process: a data directory may be open in one process only (lock file, store-lock.ts); there
 *   is no sharing between processes as there is on a server.
 * - An open engine keeps Node alive up to ~10 s after its last statement (PostgreSQL's idle
 *   statistics timer runs as a WebAssembly timer), so providers should be closed.
 * - Values are decoded like `pg` does by default (int8 as a decimal string, jsonb parsed,
 *   timestamptz as `Date`), so the provider code sees the same shapes on both drivers.
 */
/**
 * The part of a PGlite database this executor uses. Declared here instead of importing PGlite's
 * type so that Durox's published declarations do not pull in PGlite's, which need Emscripten's
 * global types that PGlite does not install (a strict project with `skipLibCheck: false` would
 * fail on them). A `PGlite` instance satisfies it.
 */
export interface PGliteDatabase {
  query<T>(text: string, params?: unknown[]): Promise<{ rows: T[] }>;
  exec(text: string): Promise<Array<{ rows: Row[] }>>;
  onNotification(callback: (channel: string, payload: string) => void): () => void;
  close(): Promise<void>;
}
import type { NotificationEvent, Row, SqlExecutor, SqlSession } from '../store/sql-executor';

/** OID of PostgreSQL `int8`: `pg` returns it as a string, PGlite as a number; we follow `pg`. */
const INT8_OID = 20;

/** PGlite options that make its decoding match the `pg` driver's defaults. */
export const PG_COMPATIBLE_PARSERS: Record<number, (text: string) => unknown> = {
  [INT8_OID]: (text) => text,
};

/** Runs async tasks strictly one after another, in call order. */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task, task);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

/** A `SqlExecutor` backed by one PGlite database. */
export class PGliteExecutor implements SqlExecutor {
  private readonly mutex = new Mutex();
  private closed = false;

  /**
   * @param db an open PGlite database, ideally created with `parsers: PG_COMPATIBLE_PARSERS`.
   * @param onClose called by {@link close} instead of closing `db` (lets a shared engine count users).
   */
  constructor(
    readonly db: PGliteDatabase,
    private readonly onClose: () => Promise<void> = () => db.close(),
  ) {}

  query(text: string, params?: unknown[]): Promise<Row[]> {
    return this.mutex.run(async () => {
      this.assertOpen();
      const result = await this.db.query<Row>(text, params);
      return result.rows;
    });
  }

  withSession<T>(work: (session: SqlSession) => Promise<T>): Promise<T> {
    return this.mutex.run(async () => {
      this.assertOpen();
      const session: SqlSession = {
        query: async (text, params) => {
          if (params !== undefined && params.length > 0) return (await this.db.query<Row>(text, params)).rows;
          // Like `pg`'s simple-query protocol: a parameterless text may hold several statements
          // (a whole migration file); the rows are those of the last statement.
          const results = await this.db.exec(text);
          return results[results.length - 1]?.rows ?? [];
        },
      };
      return work(session);
    });
  }

  /**
   * Push channel (see {@link SqlExecutor.subscribe}). `setupText` runs like any statement (its
   * LISTEN applies to the one and only connection); then every notification the engine delivers
   * is reported, whatever its channel (the caller filters). There is no connection to lose, so
   * `disconnected` is reported only when the setup statement itself fails.
   */
  subscribe(setupText: string, onEvent: (event: NotificationEvent) => void): () => Promise<void> {
    let stopped = false;
    const stopNotifications = this.db.onNotification((channel, payload) => {
      if (!stopped) onEvent({ type: 'notification', channel, payload });
    });
    this.query(setupText).then(
      (rows) => {
        if (!stopped) onEvent({ type: 'connected', rows });
      },
      (error: unknown) => {
        if (!stopped)
          onEvent({ type: 'disconnected', error: error instanceof Error ? error : new Error(String(error)) });
      },
    );
    return async () => {
      stopped = true;
      stopNotifications();
    };
  }

  /** Waits for queued statements, then releases the database. Idempotent. */
  close(): Promise<void> {
    return this.mutex.run(async () => {
      if (this.closed) return;
      this.closed = true;
      await this.onClose();
    });
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('The embedded PostgreSQL (PGlite) store is closed');
  }
}
