/** The PostgreSQL server provider: the stored-procedure provider on a `pg` pool. */
import { applyMigrations } from '../store/migrations';
import { PgExecutor, poolMaxFromEnvironment } from './pg-executor';
import { ProcedureProvider } from '../store/procedure-provider';
import { quoteSchemaName } from '../store/schema-name';

/** Durox storage on a PostgreSQL server; procedures live in one schema per deployment. */
export class PostgresProvider extends ProcedureProvider {
  /** Internal marker used by the JavaScript API (`'postgres'`). */
  readonly _type = 'postgres';

  /** Connects to `databaseUrl` and migrates the `public` schema. */
  static connect(databaseUrl: string): Promise<PostgresProvider> {
    return PostgresProvider.connectWithSchema(databaseUrl, 'public');
  }

  /**
   * Connects to `databaseUrl`, creates `schema` if absent and migrates it. The pool size comes from
   * DUROXIDE_PG_POOL_MAX (default 10).
   *
   * @throws ProviderError `invalid_argument` for a schema outside `^[a-z_][a-z0-9_]{0,62}$`, and
   *   an Error `Failed to connect to PostgreSQL: …` when the server cannot be reached or migrated.
   */
  static async connectWithSchema(databaseUrl: string, schema: string): Promise<PostgresProvider> {
    quoteSchemaName(schema, 'connect');
    if (typeof databaseUrl !== 'string' || databaseUrl.length === 0) {
      throw new Error('Failed to connect to PostgreSQL: the database URL must be a non-empty string');
    }
    const executor = PgExecutor.fromUrl(databaseUrl, poolMaxFromEnvironment());
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
