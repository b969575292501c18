/**
 * Stores for the flow-control tests: a fresh schema on the PostgreSQL server (one provider per
 * runtime, each with its own small pool and push channel) or a fresh in-memory PGlite (runtimes share
 * its one provider), a test clock (set_test_clock_offset) and a read-only SQL handle for the
 * invariants (flow_limits.active against the rows that hold permits).
 */
import { openMemoryStore, PGliteProvider, type EmbeddedStore } from '../../src/pglite/pglite-provider';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { applyMigrations } from '../../src/store/migrations';
import { ProcedureProvider } from '../../src/store/procedure-provider';
import { quoteSchemaName } from '../../src/store/schema-name';
import type { SqlExecutor } from '../../src/store/sql-executor';
import { databaseUrl, dropTestSchema, uniqueSchemaName } from '../helpers/postgres-harness';
import { sleep, until } from '../helpers/sleep';

export type FlowStoreKind = 'postgres' | 'pglite';
export const FLOW_STORE_KINDS: readonly FlowStoreKind[] = ['postgres', 'pglite'];

export interface FlowStore {
  kind: FlowStoreKind;
  /** The store's schema (PGlite: the engine-chosen one). */
  schema: string;
  /** A provider for one more runtime or client (PGlite: the store's one provider). */
  openProvider(): Promise<ProcedureProvider>;
  /** Moves the store clock `ms` further ahead of real time. */
  advanceClock(ms: number): Promise<void>;
  /** A query on the store's schema (`${schema}` in the text is replaced by the quoted name). */
  query(text: string, params?: unknown[]): Promise<Array<Record<string, unknown>>>;
  close(): Promise<void>;
}

/** Reaches the protected constructor so the test keeps the store's executor for its checks. */
class TestPGliteProvider extends PGliteProvider {
  static fromStore(store: EmbeddedStore): TestPGliteProvider {
    return new TestPGliteProvider(store);
  }
}

export async function openFlowStore(kind: FlowStoreKind): Promise<FlowStore> {
  let executor: SqlExecutor;
  let schema: string;
  let openProvider: () => Promise<ProcedureProvider>;
  let dispose: () => Promise<void>;
  if (kind === 'postgres') {
    schema = uniqueSchemaName('flow');
    const admin = PgExecutor.fromUrl(databaseUrl(), 2);
    await applyMigrations(admin, schema);
    executor = admin;
    const opened: ProcedureProvider[] = [];
    // Small pools (4 connections): a test opens several providers on a server other tests share.
    openProvider = async () => {
      const provider = new ProcedureProvider(PgExecutor.fromUrl(databaseUrl(), 4), schema, 'postgres');
      opened.push(provider);
      return provider;
    };
    dispose = async () => {
      await Promise.all(opened.map((p) => p.close()));
      await admin.close();
      await dropTestSchema(schema);
    };
  } else {
    const store = await openMemoryStore();
    schema = store.schema;
    executor = store.executor;
    const provider = TestPGliteProvider.fromStore(store);
    openProvider = async () => provider;
    dispose = () => provider.close();
  }
  const quoted = quoteSchemaName(schema, 'test');
  let offsetMs = 0;
  return {
    kind,
    schema,
    openProvider,
    advanceClock: async (ms) => {
      offsetMs += ms;
      await executor.query(`SELECT ${quoted}.set_test_clock_offset($1)`, [offsetMs]);
    },
    query: (text, params) => executor.query(text.replaceAll('${schema}', quoted), params),
    close: dispose,
  };
}

/** Per key: flow_limits.active, the worker_queue rows holding a permit, and the parked rows. */
export async function permitCounts(
  store: FlowStore,
): Promise<Array<{ key: string; active: number; holding: number; parked: number }>> {
  const rows = await store.query(
    `SELECT f.flow_key AS key, f.active,
            (SELECT count(*) FROM \${schema}.worker_queue w WHERE w.flow_key = f.flow_key) AS holding,
            (SELECT count(*) FROM \${schema}.flow_parked p WHERE p.flow_key = f.flow_key) AS parked
     FROM \${schema}.flow_limits f ORDER BY f.flow_key`,
  );
  return rows.map((r) => ({
    key: String(r.key),
    active: Number(r.active),
    holding: Number(r.holding),
    parked: Number(r.parked),
  }));
}

export { sleep };

/** Polls `check` every 5 ms until it returns a value other than undefined (`until`, flow's pace). */
export function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  return until(what, check, timeoutMs, 5);
}
