/** A {@link SqlExecutor} over a `pg` connection pool (PostgreSQL server). */
import { Client, Pool, type PoolConfig } from 'pg';
import type { NotificationEvent, Row, SqlExecutor, SqlSession } from '../store/sql-executor';

/** Reconnect backoff of the notification connection: 100 ms doubling up to 5 s. */
const LISTEN_RETRY_BASE_MS = 100;
const LISTEN_RETRY_MAX_MS = 5000;

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
  private readonly config: PoolConfig;
  private closed = false;

  constructor(config: PoolConfig) {
    this.config = config;
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

  /**
   * One dedicated connection outside the pool (TCP keep-alive on, so an idle listener sends no
   * queries). After a loss it reconnects with exponential backoff and runs `setupText` again.
   */
  subscribe(setupText: string, onEvent: (event: NotificationEvent) => void): () => Promise<void> {
    let stopped = false;
    let current: Client | null = null;
    let retry: NodeJS.Timeout | undefined;
    let failures = 0;
    const connect = async (): Promise<void> => {
      if (stopped) return;
      const client = new Client({ ...this.config, keepAlive: true });
      current = client;
      let lost = false;
      const onLost = (error: Error): void => {
        if (lost) return;
        lost = true;
        client.removeAllListeners('notification');
        client.end().catch(() => undefined);
        if (current === client) current = null;
        if (stopped) return;
        onEvent({ type: 'disconnected', error });
        // connect() catches its own failures (they come back here as another retry).
        retry = setTimeout(() => void connect(), Math.min(LISTEN_RETRY_BASE_MS * 2 ** Math.min(failures++, 10), LISTEN_RETRY_MAX_MS));
      };
      client.on('error', onLost);
      client.on('end', () => onLost(new Error('the notification connection was closed')));
      client.on('notification', (message) => onEvent({ type: 'notification', channel: message.channel, payload: message.payload ?? '' }));
      try {
        await client.connect();
        const result = await client.query(setupText);
        failures = 0;
        if (!stopped && !lost) onEvent({ type: 'connected', rows: result.rows as Row[] });
      } catch (error) {
        onLost(error instanceof Error ? error : new Error(String(error)));
      }
    };
    // The subscriber hears the outcome as a 'connected' or 'disconnected' event, not from this call.
    void connect();
    return async () => {
      stopped = true;
      clearTimeout(retry);
      const client = current;
      current = null;
      if (client !== null) await client.end().catch(() => undefined);
    };
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
