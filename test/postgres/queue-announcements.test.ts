/**
 * Queue announcements per procedure call: a call that makes queue rows fetchable sends one
 * notification per queue it filled, and a call that only tags, renews or claims rows sends none
 * (there are no queue triggers; the procedures announce their own rows, see notifications.sql).
 * Notifications are counted exactly: after each call a marker notification is sent in a later
 * transaction, and PostgreSQL delivers a channel's notifications in commit order, so once the
 * marker arrives every notification of the call has arrived too.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client as PgClient, type Notification } from 'pg';
import { applyMigrations } from '../../src/store/migrations';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { ProcedureProvider } from '../../src/postgres/procedure-provider';
import type { ActivityCompletionItem } from '../../src/core/types';
import { activity, LOCK_MS, seedInstance, started, startItem, turn } from '../conformance/fixtures';
import { databaseUrl, uniqueSchemaName } from '../helpers/postgres-harness';

describe('postgres: queue announcements per procedure call', () => {
  const schema = uniqueSchemaName('announce');
  const channel = `durox_${schema}`;
  let executor: PgExecutor;
  let provider: ProcedureProvider;
  let listener: PgClient;
  const payloads: string[] = [];
  let markers = 0;
  let markerArrived: (() => void) | null = null;

  before(async () => {
    executor = PgExecutor.fromUrl(databaseUrl(), 4);
    await applyMigrations(executor, schema);
    provider = new ProcedureProvider(executor, schema, 'postgres');
    listener = new PgClient({ connectionString: databaseUrl() });
    await listener.connect();
    listener.on('notification', (message: Notification) => {
      const payload = message.payload ?? '';
      if (payload.startsWith('marker:')) markerArrived?.();
      else payloads.push(payload);
    });
    await listener.query(`LISTEN "${channel}"`);
  });

  after(async () => {
    await listener.end();
    await executor.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await provider.close();
  });

  /** The queue notifications ('o:' and 'w:') that `call` sent, counted exactly (see the top). */
  async function announcementsOf(call: () => Promise<unknown>): Promise<string[]> {
    payloads.length = 0;
    await call();
    markers += 1;
    const arrived = new Promise<void>((resolve) => (markerArrived = resolve));
    await executor.query('SELECT pg_notify($1, $2)', [channel, `marker:${markers}`]);
    await arrived;
    return payloads.filter((p) => p.startsWith('o:') || p.startsWith('w:'));
  }

  const completion = (instance: string, id: number): ActivityCompletionItem => ({
    type: 'ActivityCompleted',
    instance,
    executionId: 1,
    id,
    result: '"done"',
  });

  it('an enqueue announces its message once; a delayed one with its due time', async () => {
    assert.deepEqual(await announcementsOf(() => provider.enqueueOrchestratorWork(startItem('a1'))), ['o:1::1']);
    const delayed = await announcementsOf(() => provider.enqueueOrchestratorWork(startItem('a2'), { delayMs: 60_000 }));
    assert.equal(delayed.length, 1);
    assert.match(delayed[0], /^o:0:60000:1$/);
  });

  it('fetching and renewing a turn announce nothing', async () => {
    let lockToken = '';
    assert.deepEqual(
      await announcementsOf(async () => {
        const item = await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS });
        assert.equal(item?.instanceId, 'a1');
        lockToken = item.lockToken;
      }),
      [],
    );
    assert.deepEqual(await announcementsOf(() => provider.renewOrchestrationItemLock(lockToken, LOCK_MS)), []);
    await provider.ackOrchestrationItem(lockToken, turn('a1', { historyDelta: [started('a1')] }));
  });

  it('a turn that schedules three activities announces them in one notification; claimed ones are not announced', async () => {
    await seedInstance(provider, 't1');
    await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 't1', name: 'e', data: '1' });
    const first = await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS });
    assert.equal(first?.instanceId, 't1');
    const workerItems = [activity('t1', 2), activity('t1', 3), activity('t1', 4)];
    assert.deepEqual(await announcementsOf(() => provider.ackOrchestrationItem(first.lockToken, turn('t1', { workerItems }))), ['w:3::1']);

    await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 't1', name: 'e', data: '2' });
    const second = await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS });
    assert.equal(second?.instanceId, 't1');
    const claimed = await announcementsOf(async () => {
      const leases = await provider.ackOrchestrationItem(second.lockToken, turn('t1', { workerItems: [activity('t1', 5)] }), {
        workerItemIndexes: [0],
        lockTimeoutMs: LOCK_MS,
      });
      assert.equal(leases.length, 1);
    });
    assert.deepEqual(claimed, [], 'an activity claimed by the ack is not announced');
  });

  it('fetching and renewing a work item announce nothing; its ack announces the completion once', async () => {
    let lockToken = '';
    assert.deepEqual(
      await announcementsOf(async () => {
        const lease = await provider.fetchWorkItem({ lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'defaultOnly' } });
        assert.ok(lease);
        lockToken = lease.lockToken;
      }),
      [],
    );
    assert.deepEqual(await announcementsOf(() => provider.renewWorkItemLock(lockToken, LOCK_MS)), []);
    assert.deepEqual(await announcementsOf(() => provider.ackWorkItem(lockToken, completion('t1', 2))), ['o:1::1']);
  });

  it('an ack that claims the turn its completion makes ready announces nothing', async () => {
    const turnOfT1 = await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS });
    assert.equal(turnOfT1?.instanceId, 't1');
    await provider.ackOrchestrationItem(turnOfT1.lockToken, turn('t1'));
    const lease = await provider.fetchWorkItem({ lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'defaultOnly' } });
    assert.ok(lease);
    const announced = await announcementsOf(async () => {
      const claimedTurn = await provider.ackWorkItem(lease.lockToken, completion('t1', 3), { lockTimeoutMs: LOCK_MS });
      assert.equal(claimedTurn?.instanceId, 't1');
      await provider.ackOrchestrationItem(claimedTurn.lockToken, turn('t1'));
    });
    assert.deepEqual(announced, []);
  });

  it('an abandoned work item is announced once, with its delay', async () => {
    const lease = await provider.fetchWorkItem({ lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'defaultOnly' } });
    assert.ok(lease);
    assert.deepEqual(await announcementsOf(() => provider.abandonWorkItem(lease.lockToken, { delayMs: 45_000 })), ['w:0:45000:1']);
  });
});
