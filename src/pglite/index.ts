/** Embedded Durox storage: the PostgreSQL provider's migrations and procedures, run in process by PGlite. */
export { PGliteProvider } from './pglite-provider';
export { SqliteProvider } from './sqlite-compat';
export { PGliteExecutor } from './pglite-executor';
