/**
 * Shared set-up of the end-to-end tests: every test file works in its own PostgreSQL schema on
 * the real server, or in its own in-memory embedded store when `DUROX_E2E_STORE=pglite`
 * (scripts/run-tests.js runs the suite both ways), and loads Durox through the package entry
 * exactly as users do.
 */
import { randomBytes } from 'node:crypto';
import { sleep, until } from '../helpers/sleep';
import { dropTestSchema } from '../helpers/postgres-harness';

export { sleep };

/** The package as `require('durox')` returns it (self-reference through package.json exports). */
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const durox: typeof import('../../src/index') = require('durox');

export type Provider =
  | Awaited<ReturnType<typeof durox.PostgresProvider.connectWithSchema>>
  | Awaited<ReturnType<typeof durox.PGliteProvider.inMemory>>;
export type Runtime = InstanceType<typeof durox.Runtime>;
export type Client = InstanceType<typeof durox.Client>;

export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/test';

/** A fresh schema name for one test file, e.g. `e2e_events_1a2b3c4d`. */
export function schemaFor(file: string): string {
  const tag = file
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .slice(0, 30);
  return `e2e_${tag}_${randomBytes(4).toString('hex')}`;
}

/** The store the suite runs on: the PostgreSQL server (default) or the embedded PGlite. */
export const E2E_STORE: 'postgres' | 'pglite' = process.env.DUROX_E2E_STORE === 'pglite' ? 'pglite' : 'postgres';

/**
 * Connects to a fresh store for the test file `file`: its own schema, dropped when the provider
 * is closed, or its own in-memory PGlite.
 */
export async function connect(file: string): Promise<Provider> {
  if (E2E_STORE === 'pglite') return durox.PGliteProvider.inMemory();
  const schema = schemaFor(file);
  const provider = await durox.PostgresProvider.connectWithSchema(DATABASE_URL, schema);
  const close = provider.close.bind(provider);
  Object.defineProperty(provider, 'close', {
    configurable: true,
    value: async () => {
      await close();
      await dropTestSchema(schema);
    },
  });
  return provider;
}

let counter = 0;
/** A unique instance id. */
export function uid(prefix: string): string {
  counter += 1;
  return `${prefix}-${counter}-${randomBytes(3).toString('hex')}`;
}

/** Options used by most tests: quick polling, quiet logs. */
export const FAST = { dispatcherPollIntervalMs: 20, logLevel: 'warn' } as const;

/** Creates, configures and starts a runtime. */
export async function startRuntime(
  provider: Provider,
  register: (runtime: Runtime) => void,
  options: Record<string, unknown> = {},
): Promise<Runtime> {
  const runtime = new durox.Runtime(provider, { ...FAST, ...options });
  register(runtime);
  await runtime.start();
  return runtime;
}

/** Polls `check` until it returns a non-undefined value or the timeout passes (`until`, e2e argument order). */
export function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  return until(what, check, timeoutMs);
}

/** Kinds of the events of one execution, in order. */
export async function historyKinds(client: Client, instanceId: string, executionId = 1): Promise<string[]> {
  return (await client.readExecutionHistory(instanceId, executionId)).map((e) => e.kind);
}
