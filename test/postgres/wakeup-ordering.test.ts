/**
 * Wake-up ordering (migration 0010): a message enqueued for an instance while its turn's ack is
 * committing is never left unannounced. The enqueue waits for the releasing ack (both hold the
 * instance's advisory lock), so its own notification finds the instance free. Also: several
 * notifications of one transaction are never merged into one.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client as PgClient, type Notification } from 'pg';
import { applyMigrations } from '../../src/store/migrations';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { ProcedureProvider } from '../../src/store/procedure-provider';
import { buildAckArguments } from '../../src/store/ack-arguments';
import { LOCK_MS, started, startItem, turn } from '../conformance/fixtures';
import { databaseUrl, uniqueSchemaName } from '../helpers/postgres-harness';
import { sleep } from '../helpers/sleep';

/**
 * Resolves once some backend waits for a lock that `holder`'s open transaction holds: proof that a
 * statement is blocked, not merely slow to run.
 */
async function blockedBy(holder: PgClient, timeoutMs = 10_000): Promise<void> {
  const { rows } = await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  const holderPid = rows[0].pid;
  const observer = new PgClient({ connectionString: databaseUrl() });
  await observer.connect();
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const waiting = await observer.query(
        `SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND $1 = ANY(pg_blocking_pids(pid))`,
        [holderPid],
      );
      if (waiting.rowCount !== null && waiting.rowCount > 0) return;
      if (Date.now() > deadline) throw new Error(`no backend was seen waiting for a lock of backend ${holderPid}`);
      await sleep(10);
    }
  } finally {
    await observer.end();
  }
}

describe('postgres: wake-up ordering', () => {
  const schema = uniqueSchemaName('wake');
  let executor: PgExecutor;
  let provider: ProcedureProvider;
  let acking: PgClient;
  let listener: PgClient;
  const payloads: string[] = [];

  before(async () => {
    executor = PgExecutor.fromUrl(databaseUrl(), 4);
    await applyMigrations(executor, schema);
    provider = new ProcedureProvider(executor, schema, 'postgres');
    acking = new PgClient({ connectionString: databaseUrl() });
    listener = new PgClient({ connectionString: databaseUrl() });
    await acking.connect();
    await listener.connect();
    listener.on('notification', (message: Notification) => payloads.push(message.payload ?? ''));
    await listener.query(`LISTEN "durox_${schema}"`);
  });

  after(async () => {
    await acking.end();
    await listener.end();
    await executor.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await provider.close();
  });

  it(
    'an enqueue waits for a committing ack of its instance, then its notification ' + 'finds the instance free',
    async () => {
      await provider.enqueueOrchestratorWork(startItem('w1'));
      const item = await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS });
      assert.ok(item);
      const { ack } = buildAckArguments(turn('w1', { historyDelta: [started('w1')] }));
      await acking.query('BEGIN');
      await acking.query(`SELECT "${schema}".ack_orchestration_item($1, $2)`, [item.lockToken, ack]);

      let enqueued = false;
      const enqueue = provider
        .enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'w1', name: 'e', data: '1' })
        .then(() => (enqueued = true));
      await blockedBy(acking);
      assert.equal(enqueued, false, 'the enqueue waits while the ack that releases the instance is uncommitted');

      payloads.length = 0;
      await acking.query('COMMIT');
      await enqueue;
      await sleep(100);
      assert.ok(
        payloads.some((p) => p.startsWith('o:1:')),
        `the enqueue announced its message: ${JSON.stringify(payloads)}`,
      );
      const next = await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS });
      assert.equal(next?.instanceId, 'w1', 'the announced message is fetchable: the instance is free');
      await provider.abandonOrchestrationItem(next.lockToken);
    },
  );

  it('notifications sent by one transaction are all delivered, even with equal counts', async () => {
    await provider.enqueueOrchestratorWork(startItem('w2'));
    await provider.enqueueOrchestratorWork(startItem('w3'));
    const items = await provider.fetchOrchestrationItems({ lockTimeoutMs: LOCK_MS, maxItems: 3 });
    const parent = items.find((i) => i.instanceId === 'w2');
    assert.ok(parent);
    // While w2's turn runs, a message arrives for it; its ack then starts a child: two 'o:1:'
    // announcements (the child's start, w2's own waiting message) in one transaction.
    await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'w2', name: 'e', data: '1' });
    await sleep(100);
    payloads.length = 0;
    await provider.ackOrchestrationItem(
      parent.lockToken,
      turn('w2', { historyDelta: [started('w2')], orchestratorItems: [startItem('w2-child')] }),
    );
    await sleep(100);
    const queueWakeups = payloads.filter((p) => p.startsWith('o:'));
    assert.equal(queueWakeups.length, 2, `two wake-ups for two ready instances: ${JSON.stringify(payloads)}`);
    assert.deepEqual(
      queueWakeups.map((p) => p.split(':').pop()),
      ['1', '2'],
      'numbered within the transaction',
    );
  });
});
