/** PostgreSQL storage for Durox: the server provider, the shared procedure provider and migrations. */
export { PostgresProvider } from './postgres-provider';
export { ProcedureProvider } from '../store/procedure-provider';
export { applyMigrations, latestMigrationVersion, loadMigrations, type Migration } from '../store/migrations';
export { PgExecutor, poolMaxFromEnvironment, DEFAULT_POOL_MAX } from './pg-executor';
export { quoteSchemaName } from '../store/schema-name';
export type { Row, SqlExecutor, SqlSession } from '../store/sql-executor';
