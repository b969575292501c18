/** The PostgreSQL server provider: the stored-procedure provider on a `pg` pool. */
import { recordNodeChosen } from '../provider/availability';
import { applyMigrations } from '../store/migrations';
import { describeRole, formatHost, type TargetSessionAttrs } from './multi-host';
import { PgExecutor, poolMaxFromEnvironment, type PgConnectionOptions } from './pg-executor';
import { ProcedureProvider } from '../store/procedure-provider';
import { quoteSchemaName } from '../store/schema-name';

/** Connection settings beyond the URL (see README, "Operating with high availability"). */
export interface PostgresConnectOptions {
  /**
   * Candidate nodes in order (`host:port`), replacing the URL's host list. The URL may list them
   * too, libpq style: `postgres://h1:6001,h2:6002/db`.
   */
  hosts?: string[];
  /**
   * Which node to use: `read-write` (default; the only choice for a runtime or a Client that
   * writes), `primary`, or for read-only operator views `any`, `read-only`, `standby`,
   * `prefer-standby`. Overrides the URL's `target_session_attrs`.
   */
  targetSessionAttrs?: TargetSessionAttrs;
  /** Limit for opening one connection, in ms (default 5000): calls fail over instead of queueing. */
  connectTimeoutMs?: number;
  /**
   * Procedure calls as named prepared statements, parsed and planned once per connection (default
   * true). Set false behind a pooler that hands each transaction another server connection without
   * tracking prepared statements (PgBouncer in transaction mode before 1.21).
   */
  preparedStatements?: boolean;
}

/** Durox storage on a PostgreSQL server; procedures live in one schema per deployment. */
export class PostgresProvider extends ProcedureProvider {
  /** Internal marker used by the JavaScript API (`'postgres'`). */
  readonly _type = 'postgres';

  /** Connects to `databaseUrl` and migrates the `public` schema. */
  static connect(databaseUrl: string, options?: PostgresConnectOptions): Promise<PostgresProvider> {
    return PostgresProvider.connectWithSchema(databaseUrl, 'public', options);
  }

  /**
   * Connects to `databaseUrl`, creates `schema` if absent and migrates it. The pool size comes from
   * DUROXIDE_PG_POOL_MAX (default 10). The URL may list several nodes; every connection lands on
   * a node that matches `target_session_attrs` (default `read-write`), so migrations and work
   * never run on a standby. With a read-only target the schema must already be migrated.
   *
   * @throws ProviderError `invalid_argument` for a schema outside `^[a-z_][a-z0-9_]{0,62}$`, and
   *   an Error `Failed to connect to PostgreSQL: …` when the server cannot be reached or migrated.
   */
  static async connectWithSchema(
    databaseUrl: string,
    schema: string,
    options: PostgresConnectOptions = {},
  ): Promise<PostgresProvider> {
    quoteSchemaName(schema, 'connect');
    if (typeof databaseUrl !== 'string' || databaseUrl.length === 0) {
      throw new Error('Failed to connect to PostgreSQL: the database URL must be a non-empty string');
    }
    let executor: PgExecutor;
    try {
      executor = PgExecutor.fromUrl(databaseUrl, poolMaxFromEnvironment(), connectionOptions(options));
    } catch (error) {
      throw new Error(`Failed to connect to PostgreSQL: ${error instanceof Error ? error.message : String(error)}`, {
        cause: error,
      });
    }
    try {
      await applyMigrations(executor, schema);
    } catch (error) {
      await executor.close().catch(() => undefined);
      const message = error instanceof Error ? error.message : String(error);
      throw new Error(`Failed to connect to PostgreSQL: ${message}`, { cause: error });
    }
    return new PostgresProvider(executor, schema, 'postgres');
  }
}

function connectionOptions(options: PostgresConnectOptions): PgConnectionOptions {
  return {
    hosts: options.hosts,
    targetSessionAttrs: options.targetSessionAttrs,
    connectTimeoutMs: options.connectTimeoutMs,
    preparedStatements: options.preparedStatements,
    onNodeChosen: (node, role, previous) =>
      recordNodeChosen(formatHost(node), describeRole(role), previous === null ? null : formatHost(previous)),
  };
}
