/**
 * The provider conformance kit on the embedded store: the same migrations and procedures as the
 * server, through PGliteProvider on a fresh in-memory schema per test.
 */
import { defineProviderConformanceTests, type ProviderTestHarness } from '../conformance/kit';
import { openMemoryStore, PGliteProvider, type EmbeddedStore } from '../../src/pglite/pglite-provider';
import { ProcedureProvider } from '../../src/store/procedure-provider';
import type { SqlExecutor } from '../../src/store/sql-executor';

/** Reaches the protected constructor so the harness keeps the store's executor for its hooks. */
class HarnessPGliteProvider extends PGliteProvider {
  static fromStore(store: EmbeddedStore): HarnessPGliteProvider {
    return new HarnessPGliteProvider(store);
  }
}

async function createHarness(): Promise<ProviderTestHarness> {
  const store = await openMemoryStore();
  const provider = HarnessPGliteProvider.fromStore(store);
  const schema = `"${store.schema}"`;
  // Peers share the single PGlite connection; closing one must not discard the store.
  const shared: SqlExecutor = {
    query: (text, params) => store.executor.query(text, params),
    withSession: (work) => store.executor.withSession(work),
    close: async () => undefined,
  };
  let offsetMs = 0;
  return {
    provider,
    openPeer: async () => new ProcedureProvider(shared, store.schema, 'pglite'),
    advanceClock: async (ms) => {
      offsetMs += ms;
      await store.executor.query(`SELECT ${schema}.set_test_clock_offset($1)`, [offsetMs]);
    },
    corruptHistory: async (instanceId) => {
      // Simulated storage damage: test code only, on the engine-chosen schema name.
      await store.executor.query(`UPDATE ${schema}.history SET event_data = 'not json {' WHERE instance_id = $1`, [
        instanceId,
      ]);
    },
    close: () => provider.close(),
  };
}

defineProviderConformanceTests({ name: 'pglite (in-memory)', create: createHarness });
