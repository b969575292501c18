/**
 * A connection keeps the generic plan of each statement for as long as it lives, planned with the
 * table sizes of its first call (docs/sql.md, "Plans"). A lookup of a list of keys planned on a
 * young, nearly empty worker_queue is a sequential scan, and that connection would then scan the
 * whole queue on every call once a backlog has built up. The claim of an ack's activities, run on
 * every step of a chain, once had such a lookup. Here one connection plans the claim on an empty
 * queue, a backlog of 2,000 activities arrives, and the next claims on that connection must not
 * scan worker_queue (its sequential-scan counter, flushed by the backend on demand).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { applyMigrations } from '../../src/store/migrations';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { ProcedureProvider } from '../../src/store/procedure-provider';
import { activity, fetchItem, LOCK_MS, started, startItem, turn } from '../conformance/fixtures';
import { databaseUrl, dropTestSchema, uniqueSchemaName } from '../helpers/postgres-harness';

describe('postgres: plans made on a young queue', () => {
  const schema = uniqueSchemaName('young');
  // One connection: every call below runs on the backend whose plans are under test.
  const executor = PgExecutor.fromUrl(databaseUrl(), 1);
  let provider: ProcedureProvider;

  before(async () => {
    await applyMigrations(executor, schema);
    provider = new ProcedureProvider(executor, schema, 'postgres');
  });

  after(async () => {
    await provider.close();
    await dropTestSchema(schema);
  });

  /** Sequential scans of worker_queue so far, this backend's pending counts flushed first. */
  async function workerQueueScans(): Promise<number> {
    await executor.query('SELECT pg_stat_force_next_flush()');
    const rows = await executor.query(
      `SELECT seq_scan FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'worker_queue'`,
      [schema],
    );
    return Number(rows[0].seq_scan);
  }

  /** Starts `instanceId` with a turn that schedules one activity and claims it: one lease. */
  async function startAndClaim(instanceId: string): Promise<void> {
    await provider.enqueueOrchestratorWork(startItem(instanceId));
    const item = await fetchItem(provider, instanceId);
    const leases = await provider.ackOrchestrationItem(
      item.lockToken,
      turn(instanceId, { historyDelta: [started(instanceId)], workerItems: [activity(instanceId, 2)] }),
      { workerItemIndexes: [0], lockTimeoutMs: LOCK_MS },
    );
    assert.equal(leases.length, 1);
  }

  it('an ack that claims activities does not scan a backlog that arrived after its plan', async () => {
    await startAndClaim('planned-on-empty');
    await executor.query(
      `INSERT INTO "${schema}".worker_queue (work_item, instance_id, execution_id, activity_id, visible_at_ms,
                                            attempt_count, created_at_ms)
       SELECT '{"type":"ActivityExecute"}', 'backlog', 1, n, 0, 0, 0 FROM generate_series(1, 2000) AS n`,
    );
    const before = await workerQueueScans();

    for (let i = 0; i < 3; i += 1) await startAndClaim(`after-backlog-${i}`);

    assert.equal(await workerQueueScans(), before, 'a claim scanned worker_queue');
  });
});
