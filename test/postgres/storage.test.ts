/**
 * Storage facts the provider API does not expose but section 6 of the spec requires: the history
 * `event_type` column holds the real event kind, and lock times keep milliseconds. Read with plain
 * SELECTs from test code only.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { applyMigrations } from '../../src/store/migrations';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { ProcedureProvider } from '../../src/store/procedure-provider';
import { event, LOCK_MS, started, startItem, turn } from '../conformance/fixtures';
import { databaseUrl, uniqueSchemaName } from '../helpers/postgres-harness';

describe('postgres: stored columns', () => {
  const schema = uniqueSchemaName('cols');
  let executor: PgExecutor;
  let provider: ProcedureProvider;

  before(async () => {
    executor = PgExecutor.fromUrl(databaseUrl(), 2);
    await applyMigrations(executor, schema);
    provider = new ProcedureProvider(executor, schema, 'postgres');
  });
  after(async () => {
    await executor.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await provider.close();
  });

  it('history.event_type holds the event kind', async () => {
    await provider.enqueueOrchestratorWork(startItem('kinds'));
    const item = await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS });
    assert.ok(item);
    await provider.ackOrchestrationItem(
      item.lockToken,
      turn('kinds', { historyDelta: [started('kinds'), event('kinds', 1, 2, { kind: 'TimerCreated', fireAtMs: 5 })] }),
    );
    const rows = await executor.query(
      `SELECT event_type FROM "${schema}".history WHERE instance_id = 'kinds' ORDER BY event_id`,
    );
    assert.deepEqual(
      rows.map((r) => r.event_type),
      ['OrchestrationStarted', 'TimerCreated'],
    );
  });

  it('renewal keeps sub-second precision', async () => {
    await provider.enqueueOrchestratorWork(startItem('ms'));
    const item = await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS });
    assert.ok(item);
    await provider.renewOrchestrationItemLock(item.lockToken, 750);
    const [row] = await executor.query(
      `SELECT l.locked_until_ms - (floor(extract(epoch FROM now()) * 1000)::BIGINT + c.offset_ms) AS remaining ` +
        `FROM "${schema}".instance_locks l, "${schema}".test_clock c WHERE l.instance_id = 'ms'`,
    );
    const remaining = Number(row.remaining);
    assert.ok(remaining > 500 && remaining <= 750, `remaining ${remaining} ms`);
  });
});
