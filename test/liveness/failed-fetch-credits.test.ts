/**
 * A failed fetch answers no announcement. A turn worker woken for announced work reserves extra
 * inbox places for a batch fetch and pays them with wake-up credits; when that fetch fails (in a
 * failover the listener is often back before the pool's connections are), the credits must come
 * back, or the items they announced wait for the ten-second safety fetch. Real PostgreSQL; the
 * failure is injected into the runtime's provider (its first batch fetch throws).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Client as PgClient } from 'pg';
import { Client, Runtime } from '../../src/index';
import type { Provider } from '../../src/provider/contract';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { safetyFetchHits } from '../../src/runtime/liveness';
import { orchestratorRow } from '../../src/store/ack-arguments';
import { ProcedureProvider } from '../../src/store/procedure-provider';
import { startItem } from '../conformance/fixtures';
import { untilIdle } from '../helpers/idle-runtime';
import { databaseUrl, dropTestSchema, migrateTestSchema, uniqueSchemaName } from '../helpers/postgres-harness';

const schema = uniqueSchemaName('failed_fetch');
const providers: ProcedureProvider[] = [];

before(() => migrateTestSchema(schema));
after(async () => {
  for (const provider of providers) await provider.close();
  await dropTestSchema(schema);
});

/** `provider` whose next batch fetch of turns fails once {@link arm} was called; every other call goes through. */
function failingBatchFetch(provider: ProcedureProvider): {
  provider: Provider;
  arm: () => void;
  failures: () => number;
} {
  let armed = false;
  let failures = 0;
  const wrapped = new Proxy(provider, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (property === 'fetchOrchestrationItems' && armed)
        return () => {
          armed = false;
          failures += 1;
          return Promise.reject(new Error('injected: the store is unreachable'));
        };
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { provider: wrapped, arm: () => (armed = true), failures: () => failures };
}

test('credits taken by a batch fetch that failed are given back: every announced start runs at once', async () => {
  const open = (): ProcedureProvider => {
    const provider = new ProcedureProvider(PgExecutor.fromUrl(databaseUrl(), 4), schema, 'postgres');
    providers.push(provider);
    return provider;
  };
  const injected = failingBatchFetch(open());
  // One turn worker: four announcements arrive together, the worker wakes for the first and
  // pays an extra inbox place with a second credit; that batch fetch fails.
  const runtime = new Runtime(injected.provider, {
    logLevel: 'error',
    orchestrationConcurrency: 1,
    workerConcurrency: 1,
  });
  runtime.registerOrchestration('Quick', function* (_ctx, input: number) {
    yield* [];
    return input + 1;
  });
  await runtime.start();
  try {
    await untilIdle(injected.provider, 2);
    injected.arm();
    const before = safetyFetchHits().orchestrator.unannounced;
    // Four starts in one transaction: their notifications are delivered together.
    const ids = ['s1', 's2', 's3', 's4'].map((s) => `${s}-${process.pid}`);
    const session = new PgClient({ connectionString: databaseUrl() });
    await session.connect();
    try {
      await session.query('BEGIN');
      for (const [i, id] of ids.entries()) {
        const item = startItem(id, { orchestration: 'Quick', input: String(i) });
        const row = orchestratorRow(item, { operation: 'test', instanceId: id });
        await session.query(`SELECT "${schema}".enqueue_orchestrator_work($1, $2, $3, NULL, NULL)`, [
          row.targetInstance,
          row.kind,
          row.workItem,
        ]);
      }
      await session.query('COMMIT');
    } finally {
      await session.end();
    }
    const client = new Client(open());
    const started = Date.now();
    const results = await Promise.all(ids.map((id) => client.waitForOrchestration(id, 20_000)));
    const tookMs = Date.now() - started;
    assert.equal(injected.failures(), 1, 'the first batch fetch failed');
    assert.deepEqual(
      results.map((r) => r.status),
      ids.map(() => 'Completed'),
    );
    // The safety fetch comes after 10 s; every start was announced, so none may wait for it.
    assert.ok(tookMs < 5_000, `the four starts took ${tookMs} ms`);
    assert.equal(safetyFetchHits().orchestrator.unannounced, before, 'no start waited for the safety fetch');
  } finally {
    await runtime.shutdown(500);
  }
});
