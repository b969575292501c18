/**
 * Opens the store the CLI works on: a PostgreSQL schema (`--database` or DATABASE_URL, with
 * DUROX_DATABASE_URL accepted as an alias; `--schema` or DUROX_SCHEMA, default `public`) or an
 * embedded data directory (`--data-dir`). Only `migrate` creates a store: every other command
 * refuses a schema or directory that holds no Durox store, so a typo never looks like lost data.
 * Opening an existing store migrates it to this build's latest version, as every provider does.
 */
import { Client as PgClient } from 'pg';
import { Client } from '../client/client';
import { PostgresProvider } from '../postgres';
import type { Provider } from '../provider/contract';
import { inspectDataDirectory } from '../pglite/data-directory';
import { latestMigrationVersion } from '../store/migrations';
import { notFoundError, unavailableError, usageError, type OperatorError } from './errors';

/** Connection options shared by every command. */
export interface ConnectionOptions {
  database?: string;
  schema?: string;
  dataDir?: string;
  /** Create the store when it does not exist (`durox migrate`); otherwise a missing store is an error. */
  create?: boolean;
}

/** An open store. */
export interface Store {
  provider: Provider;
  client: Client;
  /** Human-readable location, without credentials. */
  location: string;
  /** The migration the store is at: opening migrated it to this build's latest. */
  schemaVersion: number;
  close(): Promise<void>;
}

const SCHEMA_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<database url>';
  }
}

/** Opens the store named by `options` (falling back to the environment). */
export async function openStore(options: ConnectionOptions, env: NodeJS.ProcessEnv = process.env): Promise<Store> {
  const url = options.database ?? databaseUrlFromEnv(env);
  if (options.dataDir !== undefined && options.database !== undefined) {
    throw usageError('use either --database or --data-dir, not both');
  }
  if (options.dataDir !== undefined) {
    if (options.dataDir.trim() === '') throw usageError('--data-dir must not be empty');
    if (options.create !== true) requireEmbeddedStore(options.dataDir);
    // The embedded engine is loaded only when asked for.
    const { PGliteProvider } = await import('../pglite');
    const provider = await open(() => PGliteProvider.open(options.dataDir as string));
    return {
      provider,
      client: new Client(provider),
      location: provider.location,
      schemaVersion: latestMigrationVersion(),
      close: () => provider.close(),
    };
  }
  if (url === undefined || url.trim() === '') {
    throw usageError('no store given: pass --database <url> (or set DATABASE_URL) or --data-dir <dir>');
  }
  const schema = options.schema ?? env.DUROX_SCHEMA ?? 'public';
  if (!SCHEMA_PATTERN.test(schema)) {
    throw usageError(`--schema must match ^[a-z_][a-z0-9_]{0,62}$, got ${JSON.stringify(schema)}`);
  }
  if (options.create !== true) await requireServerStore(url, schema);
  const provider = await open(() => PostgresProvider.connectWithSchema(url, schema));
  return {
    provider,
    client: new Client(provider),
    location: `${redact(url)} schema ${schema}`,
    schemaVersion: latestMigrationVersion(),
    close: () => provider.close(),
  };
}

async function open<P>(opener: () => Promise<P>): Promise<P> {
  try {
    return await opener();
  } catch (error) {
    throw unavailableError(error instanceof Error ? error.message : String(error));
  }
}

/** The database URL from the environment: DATABASE_URL, or its alias DUROX_DATABASE_URL. */
export function databaseUrlFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const primary = env.DATABASE_URL;
  if (primary !== undefined && primary.trim() !== '') return primary;
  return env.DUROX_DATABASE_URL;
}

function noStore(where: string, createWith: string): OperatorError {
  return notFoundError(
    `no Durox store at ${where}; nothing was created (create one with: durox ${createWith} migrate)`,
  );
}

function requireEmbeddedStore(dir: string): void {
  let state: ReturnType<typeof inspectDataDirectory>;
  try {
    state = inspectDataDirectory(dir);
  } catch (error) {
    throw unavailableError(error instanceof Error ? error.message : String(error));
  }
  if (state.kind === 'new') throw noStore(dir, `--data-dir ${JSON.stringify(dir)}`);
}

/** Looks for the schema's migration table with a plain connection, creating nothing. */
async function requireServerStore(url: string, schema: string): Promise<void> {
  const client = new PgClient({ connectionString: url, connectionTimeoutMillis: 10_000 });
  let found: boolean;
  try {
    await client.connect();
    const result = await client.query<{ found: boolean }>(
      "SELECT to_regclass(format('%I.schema_migrations', $1::text)) IS NOT NULL AS found",
      [schema],
    );
    found = result.rows[0]?.found === true;
  } catch (error) {
    throw unavailableError(error instanceof Error ? error.message : String(error));
  } finally {
    await client.end().catch(() => undefined);
  }
  if (!found) throw noStore(`${redact(url)} schema ${schema}`, `--schema ${schema}`);
}
