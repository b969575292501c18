/**
 * The smallest driver surface the stored-procedure provider needs. The `pg` pool implements it
 * for a server (src/postgres) and PGlite for the embedded store (src/pglite), so both run the
 * same migrations and the same procedure calls.
 */

/** Rows of one statement; column values as the driver decodes them (jsonb is already parsed). */
export type Row = Record<string, unknown>;

/** A single connection held for a sequence of statements (used by the migration runner only). */
export interface SqlSession {
  query(text: string, params?: unknown[]): Promise<Row[]>;
}

/** What a notification subscription reports (see {@link SqlExecutor.subscribe}). */
export type NotificationEvent =
  | { type: 'connected'; rows: Row[] }
  | { type: 'notification'; channel: string; payload: string }
  | { type: 'disconnected'; error: Error };

/** How a statement is run (see {@link SqlExecutor.query}). */
export interface QueryOptions {
  /**
   * The text is one of the few the caller runs again and again (a procedure call): a server
   * connection may parse and plan it once and then only bind and execute it.
   */
  prepared?: boolean;
}

export interface SqlExecutor {
  /** Runs one statement in its own implicit transaction: exactly one round trip. */
  query(text: string, params?: unknown[], options?: QueryOptions): Promise<Row[]>;
  /**
   * Runs `work` on one dedicated connection. Only the migration runner uses it, to hold a
   * session advisory lock across several migration transactions.
   */
  withSession<T>(work: (session: SqlSession) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  /**
   * Optional push channel: keeps one dedicated connection that runs `setupText` (a procedure call
   * that LISTENs) after every (re)connect, reports `connected` with its rows, then every
   * notification, and `disconnected` when the connection is lost (it reconnects with backoff).
   * Returns a function that stops it.
   */
  subscribe?(setupText: string, onEvent: (event: NotificationEvent) => void): () => Promise<void>;
  /** Optional: whether recent calls spend their time on the network (a distant server), not in the database. */
  callsAreSlow?(): boolean;
  /** Optional: whether calls sent at once run at once (a server's connections), not one after the other (an embedded engine). */
  runsCallsInParallel?(): boolean;
}
