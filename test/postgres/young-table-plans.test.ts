/**
 * A connection keeps the generic plan of each statement for as long as it lives, planned with the
 * table sizes of its first call (docs/sql.md, "Plans"). A lookup of a list of keys planned on a
 * young, nearly empty worker_queue is a sequential scan, and that connection would then scan the
 * whole queue on every call once a backlog has built up. The claim of an ack's activities, run on
 * every step of a chain, once had such a lookup. Here one connection plans a statement on an empty
 * table, a backlog of 2,000 rows arrives, and the next calls on that connection must not scan the
 * table (its sequential-scan counter, flushed by the backend on demand): the claim on the
 * activity queue, and the hand-over of a flow permit on the activities parked behind a limit.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { applyMigrations } from '../../src/store/migrations';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { ProcedureProvider } from '../../src/store/procedure-provider';
import type { ActivityExecuteItem } from '../../src/core/types';
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

  /** Sequential scans of `table` so far, this backend's pending counts flushed first. */
  async function scans(table: string): Promise<number> {
    await executor.query('SELECT pg_stat_force_next_flush()');
    const rows = await executor.query(
      `SELECT seq_scan FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = $2`,
      [schema, table],
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
    const before = await scans('worker_queue');

    for (let i = 0; i < 3; i += 1) await startAndClaim(`after-backlog-${i}`);

    assert.equal(await scans('worker_queue'), before, 'a claim scanned worker_queue');
  });

  it('an ack that hands a flow permit on does not scan a park that filled after its plan', async () => {
    const limited = (instance: string, id: number): ActivityExecuteItem => ({
      type: 'ActivityExecute',
      instance,
      executionId: 1,
      id,
      name: 'Limited',
      input: '""',
      sessionId: null,
      tag: null,
      flowKey: 'young-key',
    });
    /** Fetches the one activity holding the permit and acks it: the permit goes to the next parked. */
    const handOver = async (): Promise<void> => {
      const lease = await provider.fetchWorkItem({ lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'defaultOnly' } });
      assert.ok(lease, 'the activity holding the permit is queued');
      await provider.ackWorkItem(lease.lockToken, null);
    };
    await provider.setFlowLimit('young-key', { maxActive: 1 });
    for (let id = 1; id <= 3; id += 1) await provider.enqueueWorkerWork(limited('parked-on-empty', id));
    await handOver();
    await executor.query(
      `INSERT INTO "${schema}".flow_parked (id, flow_key, work_item, instance_id, execution_id, activity_id, created_at_ms)
       SELECT nextval('"${schema}".worker_queue_id_seq'), 'young-key', '{"type":"ActivityExecute"}', 'backlog', 1, n, n
       FROM generate_series(1, 2000) AS n`,
    );
    const before = await scans('flow_parked');

    await handOver();
    await handOver();

    assert.equal(await scans('flow_parked'), before, 'a permit hand-over scanned flow_parked');
  });
});
