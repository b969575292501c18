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

export interface SqlExecutor {
  /** Runs one statement in its own implicit transaction: exactly one round trip. */
  query(text: string, params?: unknown[]): Promise<Row[]>;
  /**
   * Runs `work` on one dedicated connection. Only the migration runner uses it, to hold a
   * session advisory lock across several migration transactions.
   */
  withSession<T>(work: (session: SqlSession) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
