/**
 * A fetch sees every message committed before its scan, however late in its transaction the scan
 * runs. The fetch's transaction is opened first (as when a backend waits for CPU between
 * receiving a fetch and scanning), then a message is committed from another connection, then the
 * fetch runs in that same transaction: the message was announced before the scan, so the scan
 * must return it. With the transaction clock (`visible_at_ms <= now()`) it returned nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client as PgClient } from 'pg';
import { applyMigrations } from '../../src/store/migrations';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { ProcedureProvider } from '../../src/store/procedure-provider';
import { activity, LOCK_MS, startItem } from '../conformance/fixtures';
import { databaseUrl, uniqueSchemaName } from '../helpers/postgres-harness';

/** Waits until the database clock has moved past `sinceMs` (millisecond resolution). */
async function clockPasses(client: PgClient, sinceMs: number): Promise<void> {
  for (;;) {
    const { rows } = await client.query<{ now: string }>(
      'SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::BIGINT AS now',
    );
    if (Number(rows[0].now) > sinceMs) return;
  }
}

describe('postgres: fetch scans read the clock after their snapshot', () => {
  const schema = uniqueSchemaName('scanclock');
  let executor: PgExecutor;
  let provider: ProcedureProvider;
  let fetching: PgClient;

  before(async () => {
    executor = PgExecutor.fromUrl(databaseUrl(), 2);
    await applyMigrations(executor, schema);
    provider = new ProcedureProvider(executor, schema, 'postgres');
    fetching = new PgClient({ connectionString: databaseUrl() });
    await fetching.connect();
  });

  after(async () => {
    await fetching.end();
    await executor.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await provider.close();
  });

  /** Opens the fetch's transaction and returns its start time in epoch ms. */
  async function openFetchTransaction(): Promise<number> {
    await fetching.query('BEGIN');
    const { rows } = await fetching.query<{ start: string }>(
      'SELECT floor(extract(epoch FROM now()) * 1000)::BIGINT AS start',
    );
    const start = Number(rows[0].start);
    await clockPasses(fetching, start);
    return start;
  }

  it('fetch_orchestration_items returns a start committed after its transaction began', async () => {
    await openFetchTransaction();
    await provider.enqueueOrchestratorWork(startItem('late-start'));
    const { rows } = await fetching.query(`SELECT "${schema}".fetch_orchestration_items($1, NULL, NULL, 5) AS items`, [
      LOCK_MS,
    ]);
    await fetching.query('COMMIT');
    const items = rows[0].items as Array<{ instanceId: string }>;
    assert.deepEqual(
      items.map((item) => item.instanceId),
      ['late-start'],
    );
  });

  it('fetch_work_item returns an activity committed after its transaction began', async () => {
    await openFetchTransaction();
    await provider.enqueueWorkerWork(activity('late-activity', 1));
    const { rows } = await fetching.query(
      `SELECT "${schema}".fetch_work_item($1, 'any', NULL, NULL, NULL, 5, TRUE) AS leases`,
      [LOCK_MS],
    );
    await fetching.query('COMMIT');
    const leases = rows[0].leases as Array<{ workItem: { instance: string } }>;
    assert.deepEqual(
      leases.map((lease) => lease.workItem.instance),
      ['late-activity'],
    );
  });

  it('a fetched item says how long it had been visible, on the database clock', async () => {
    await provider.enqueueOrchestratorWork(startItem('aged-start'));
    await provider.enqueueWorkerWork(activity('aged-activity', 1));
    await executor.query(`SELECT "${schema}".set_test_clock_offset(5000)`);
    try {
      const item = await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS });
      const lease = await provider.fetchWorkItem({ lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'any' } });
      assert.equal(item?.instanceId, 'aged-start');
      assert.ok(
        item.waitedMs !== undefined && item.waitedMs >= 5000 && item.waitedMs < 15_000,
        `orchestration batch waited ${item.waitedMs} ms`,
      );
      assert.equal(lease?.item.instance, 'aged-activity');
      assert.ok(
        lease.waitedMs !== undefined && lease.waitedMs >= 5000 && lease.waitedMs < 15_000,
        `activity waited ${lease.waitedMs} ms`,
      );
    } finally {
      await executor.query(`SELECT "${schema}".set_test_clock_offset(0)`);
    }
  });
});
