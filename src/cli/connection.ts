/**
 * Opens the store the CLI works on: a PostgreSQL schema (`--database` or DUROX_DATABASE_URL,
 * `--schema` or DUROX_SCHEMA, default `public`) or an embedded data directory (`--data-dir`).
 * Opening migrates the schema to this build's latest version, as every Durox provider does.
 */
import { Client } from '../client/client';
import { PostgresProvider } from '../postgres';
import type { Provider } from '../provider/contract';
import { CliError, EXIT_UNAVAILABLE, usageError } from './errors';

/** Connection options shared by every command. */
export interface ConnectionOptions {
  database?: string;
  schema?: string;
  dataDir?: string;
}

/** An open store. */
export interface Store {
  provider: Provider;
  client: Client;
  /** Human-readable location, without credentials. */
  location: string;
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
  const url = options.database ?? env.DUROX_DATABASE_URL;
  if (options.dataDir !== undefined && options.database !== undefined) {
    throw usageError('use either --database or --data-dir, not both');
  }
  if (options.dataDir !== undefined) {
    if (options.dataDir.trim() === '') throw usageError('--data-dir must not be empty');
    // The embedded engine is loaded only when asked for.
    const { PGliteProvider } = await import('../pglite');
    const provider = await open(() => PGliteProvider.open(options.dataDir as string));
    return { provider, client: new Client(provider), location: provider.location, close: () => provider.close() };
  }
  if (url === undefined || url.trim() === '') {
    throw usageError('no store given: pass --database <url> (or set DUROX_DATABASE_URL) or --data-dir <dir>');
  }
  const schema = options.schema ?? env.DUROX_SCHEMA ?? 'public';
  if (!SCHEMA_PATTERN.test(schema)) {
    throw usageError(`--schema must match ^[a-z_][a-z0-9_]{0,62}$, got ${JSON.stringify(schema)}`);
  }
  const provider = await open(() => PostgresProvider.connectWithSchema(url, schema));
  return { provider, client: new Client(provider), location: `${redact(url)} schema ${schema}`, close: () => provider.close() };
}

async function open<P>(opener: () => Promise<P>): Promise<P> {
  try {
    return await opener();
  } catch (error) {
    throw new CliError(EXIT_UNAVAILABLE, error instanceof Error ? error.message : String(error));
  }
}
