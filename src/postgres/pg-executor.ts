/** A {@link SqlExecutor} over a `pg` connection pool (PostgreSQL server). */
import { Pool, type PoolConfig } from 'pg';
import type { Row, SqlExecutor, SqlSession } from './sql-executor';

/** Default pool size when DUROXIDE_PG_POOL_MAX is not set. */
export const DEFAULT_POOL_MAX = 10;

/** Pool size from the environment (DUROXIDE_PG_POOL_MAX), falling back to {@link DEFAULT_POOL_MAX}. */
export function poolMaxFromEnvironment(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.DUROXIDE_PG_POOL_MAX;
  const parsed = raw === undefined ? NaN : Number(raw);
  return Number.isInteger(parsed) && parsed > 0 ? parsed : DEFAULT_POOL_MAX;
}

/** Runs each statement on a pooled connection; sessions pin one connection. */
export class PgExecutor implements SqlExecutor {
  private readonly pool: Pool;
  private closed = false;

  constructor(config: PoolConfig) {
    this.pool = new Pool(config);
    // An idle client that loses its server must not crash the process; the next query reports it.
    this.pool.on('error', () => undefined);
  }

  /** A pool on `connectionString` with `max` connections (default from the environment). */
  static fromUrl(connectionString: string, max: number = poolMaxFromEnvironment()): PgExecutor {
    return new PgExecutor({ connectionString, max });
  }

  async query(text: string, params: unknown[] = []): Promise<Row[]> {
    const result = await this.pool.query(text, params);
    return result.rows as Row[];
  }

  async withSession<T>(work: (session: SqlSession) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      return await work({
        query: async (text: string, params?: unknown[]) => {
          try {
            const result = params === undefined || params.length === 0 ? await client.query(text) : await client.query(text, params);
            return result.rows as Row[];
          } catch (error) {
            if (!isSqlError(error)) broken = error instanceof Error ? error : new Error(String(error));
            throw error;
          }
        },
      });
    } finally {
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}

/** Errors sent by the server leave the connection usable; anything else may have broken it. */
function isSqlError(error: unknown): boolean {
  return typeof error === 'object' && error !== null && typeof (error as { code?: unknown }).code === 'string' &&
    /^[0-9A-Z]{5}$/.test((error as { code: string }).code);
}
