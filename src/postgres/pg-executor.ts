/**
 * A {@link SqlExecutor} over a `pg` connection pool (PostgreSQL server). Every connection, pooled
 * or the LISTEN one, lands on the node its {@link NodeSelector} chooses (multi-host URLs and
 * `target_session_attrs`, see multi-host.ts); a connection that reports the node unavailable or
 * read-only is discarded and makes the selector choose again.
 */
import { Pool, type ClientConfig } from 'pg';
import { isNodeUnavailableError } from '../store/error-mapping';
import { ConnectionAllowance } from './connection-allowance';
import { parseConnectionTarget, type ConnectionTargetOptions, type HostAddress, type NodeRole } from './multi-host';
import { chosenNodeClientClass, NodeSelector, type ChosenNodeClient } from './node-selector';
import type { NotificationEvent, QueryOptions, Row, SqlExecutor, SqlSession } from '../store/sql-executor';

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

/**
 * How long opening one connection may take before it fails (and the caller's retry policy tries
 * again, possibly on another node), instead of queueing silently during an outage.
 */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5000;

/**
 * How the pool's connections come into use (connection-allowance.ts): 4 at first; more for callers
 * that waited 20 ms while even the quickest calls hold their connection 10 ms (a distant
 * database), or one more each time a caller waited 100 ms (sustained load). The pool's maximum
 * stays the limit.
 */
export const CONNECTION_GROWTH = { initial: 4, growAfterMs: 20, slowHoldMs: 10, starvedAfterMs: 100 } as const;

/** Connection settings beyond the URL. */
export interface PgConnectionOptions extends ConnectionTargetOptions {
  /** Most pooled connections. Default DUROXIDE_PG_POOL_MAX or {@link DEFAULT_POOL_MAX}. */
  max?: number;
  /** Limit for opening one connection, in ms. Default {@link DEFAULT_CONNECT_TIMEOUT_MS}. */
  connectTimeoutMs?: number;
  /** Called when a connection lands on a node other than the one chosen before (a failover). */
  onNodeChosen?: (node: HostAddress, role: NodeRole, previous: HostAddress | null) => void;
  /**
   * Whether statements run with `prepared` (procedure calls) are named prepared statements,
   * parsed and planned once per connection (default true). Off for a pooler that hands each
   * transaction another server connection and does not track prepared statements itself
   * (PgBouncer in transaction mode before 1.21, or with max_prepared_statements = 0).
   */
  preparedStatements?: boolean;
}

/** A connection checked out of the pool: given back with `release()`, destroyed with `release(error)`. */
type PooledClient = ChosenNodeClient & { release(error?: Error | boolean): void };

/** Runs each statement on a pooled connection; sessions pin one connection. */
export class PgExecutor implements SqlExecutor {
  private readonly pool: Pool;
  /** How many of the pool's connections may be in use now (connection-allowance.ts). */
  private readonly allowance: ConnectionAllowance;
  /** Per checked-out connection: gives its place back to the allowance. */
  private readonly allowanceDone = new WeakMap<PooledClient, () => void>();
  /** Chooses the node of every new connection. */
  readonly selector: NodeSelector;
  private readonly ClientClass: new (config?: ClientConfig) => ChosenNodeClient;
  private closed = false;
  private readonly preparedStatements: boolean;
  /** Prepared statement names by text (see statementName). */
  private readonly statementNames = new Map<string, string>();

  constructor(url: string, options: PgConnectionOptions = {}) {
    const target = parseConnectionTarget(url, options);
    const connectionTimeoutMillis = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.selector = new NodeSelector(
      target,
      (node) => ({ connectionString: target.urlFor(node), connectionTimeoutMillis }),
      { chosen: (node, role, previous) => options.onNodeChosen?.(node, role, previous) },
    );
    this.ClientClass = chosenNodeClientClass(this.selector);
    this.preparedStatements = options.preparedStatements ?? true;
    const max = options.max ?? poolMaxFromEnvironment();
    this.allowance = new ConnectionAllowance({ max, ...CONNECTION_GROWTH });
    this.pool = new Pool({
      connectionString: target.urlFor(target.hosts[0]),
      max,
      connectionTimeoutMillis,
      Client: this.ClientClass,
    });
    // An idle client that loses its server must not crash the process; the next query reports it.
    this.pool.on('error', () => undefined);
  }

  /** A pool on `connectionString` (one host or a libpq multi-host URI) with `max` connections (default from the environment). */
  static fromUrl(
    connectionString: string,
    max: number = poolMaxFromEnvironment(),
    options: PgConnectionOptions = {},
  ): PgExecutor {
    return new PgExecutor(connectionString, { ...options, max });
  }

  async query(text: string, params: unknown[] = [], options: QueryOptions = {}): Promise<Row[]> {
    const client = await this.connect();
    try {
      const name = options.prepared === true ? this.statementName(text) : undefined;
      const result = await (name === undefined
        ? client.query(text, params)
        : client.query({ name, text, values: params }));
      this.giveBack(client);
      return result.rows as Row[];
    } catch (error) {
      this.discardAfter(client, error);
      throw error;
    }
  }

  /**
   * The name of `text` as a prepared statement (one name per text for this pool's connections; the
   * `pg` driver parses it on each connection's first use), or undefined when they are off. A
   * prepared call skips the parse, analysis and planning of its SELECT on every later call: about
   * 7 % of the server's CPU for a one-activity orchestration (README, "Prepared procedure calls").
   */
  private statementName(text: string): string | undefined {
    if (!this.preparedStatements) return undefined;
    let name = this.statementNames.get(text);
    if (name === undefined) {
      name = `durox_${this.statementNames.size + 1}`;
      this.statementNames.set(text, name);
    }
    return name;
  }

  /**
   * A pooled connection on the chosen node: an idle one that was opened before the selector
   * forgot its node (a failover) is closed instead of used.
   */
  private async connect(): Promise<PooledClient> {
    const done = await this.allowance.acquire();
    try {
      for (;;) {
        const client = (await this.pool.connect()) as unknown as PooledClient;
        if (client.generation === this.selector.generation) {
          this.allowanceDone.set(client, done);
          return client;
        }
        client.release(true);
      }
    } catch (error) {
      done();
      throw error;
    }
  }

  /** Whether recent calls spend their time waiting for a distant server (connection-allowance.ts). */
  callsAreSlow(): boolean {
    return this.allowance.callsAreSlow();
  }

  /** Each call has a connection and a server backend of its own. */
  runsCallsInParallel(): boolean {
    return true;
  }

  /** Gives a connection back to the pool (destroyed when `error` is set) and its place to the allowance. */
  private giveBack(client: PooledClient, error?: Error): void {
    // Taken off first: once released, the same client may be checked out again at once.
    const done = this.allowanceDone.get(client);
    this.allowanceDone.delete(client);
    client.release(error);
    done?.();
  }

  /**
   * Keeps a connection after an ordinary SQL error. A broken connection, or one whose node went
   * read-only or is shutting down, is dropped, and the selector chooses the node again.
   */
  private discardAfter(client: PooledClient, error: unknown): void {
    if (!connectionAtFault(error)) {
      this.giveBack(client);
      return;
    }
    if (client.node !== null) this.selector.reject(client.node);
    this.giveBack(client, toError(error));
  }

  async withSession<T>(work: (session: SqlSession) => Promise<T>): Promise<T> {
    const client = await this.connect();
    let broken: Error | undefined;
    try {
      return await work({
        query: async (text: string, params?: unknown[]) => {
          try {
            const result =
              params === undefined || params.length === 0 ? await client.query(text) : await client.query(text, params);
            return result.rows as Row[];
          } catch (error) {
            if (connectionAtFault(error)) {
              broken = toError(error);
              if (client.node !== null) this.selector.reject(client.node);
            }
            throw error;
          }
        },
      });
    } finally {
      this.giveBack(client, broken);
    }
  }

  /**
   * One dedicated connection outside the pool (TCP keep-alive on, so an idle listener sends no
   * queries). After a loss it reconnects with exponential backoff and runs `setupText` again.
   */
  subscribe(setupText: string, onEvent: (event: NotificationEvent) => void): () => Promise<void> {
    let stopped = false;
    let current: ChosenNodeClient | null = null;
    let retry: NodeJS.Timeout | undefined;
    let failures = 0;
    const connect = async (): Promise<void> => {
      if (stopped) return;
      const client = new this.ClientClass({
        ...this.selector.configFor(this.selector.target.hosts[0]),
        keepAlive: true,
      });
      current = client;
      let lost = false;
      const onLost = (error: Error): void => {
        if (lost) return;
        lost = true;
        if (client.node !== null) this.selector.reject(client.node);
        client.removeAllListeners('notification');
        client.end().catch(() => undefined);
        if (current === client) current = null;
        if (stopped) return;
        onEvent({ type: 'disconnected', error });
        // connect() catches its own failures (they come back here as another retry).
        retry = setTimeout(
          () => void connect(),
          Math.min(LISTEN_RETRY_BASE_MS * 2 ** Math.min(failures++, 10), LISTEN_RETRY_MAX_MS),
        );
      };
      client.on('error', onLost);
      client.on('end', () => onLost(new Error('the notification connection was closed')));
      client.on('notification', (message) =>
        onEvent({ type: 'notification', channel: message.channel, payload: message.payload ?? '' }),
      );
      try {
        await client.connect();
        // LISTEN takes effect when its statement commits, and PostgreSQL does not deliver what
        // committed between the set-up's reads and that commit: a wake-up announced there would
        // be in neither. So the set-up runs twice, and the state comes from the second run, read
        // with the LISTEN in effect (repeating it changes nothing). Costs one round trip per
        // connection opened.
        await client.query(setupText);
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
    this.allowance.openAll();
    await this.pool.end();
  }
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** A broken connection, or a node that cannot serve writes any more (standby, shutting down). */
function connectionAtFault(error: unknown): boolean {
  return !isSqlError(error) || isNodeUnavailableError(error);
}

/** Errors sent by the server leave the connection usable; anything else may have broken it. */
function isSqlError(error: unknown): boolean {
  return (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as { code?: unknown }).code === 'string' &&
    /^[0-9A-Z]{5}$/.test((error as { code: string }).code)
  );
}
