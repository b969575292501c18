/**
 * Queue announcements per procedure call: a call that makes queue rows fetchable sends one
 * notification per queue it filled, and a call that only tags, renews or claims rows sends none
 * (there are no queue triggers; the procedures announce their own rows, see notifications.sql).
 * Notifications are counted exactly: before and after each call a marker notification is sent in
 * a transaction of its own, and PostgreSQL delivers a channel's notifications in commit order, so
 * once the second marker arrives every notification of the call (and none of an earlier one)
 * has been collected.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client as PgClient, type Notification } from 'pg';
import { applyMigrations } from '../../src/store/migrations';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { ProcedureProvider } from '../../src/store/procedure-provider';
import type { ActivityCompletionItem } from '../../src/core/types';
import type { WorkItemLease } from '../../src/provider/contract';
import { activity, event, LOCK_MS, seedInstance, started, startItem, turn } from '../conformance/fixtures';
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
    return (await notificationsOf(call)).filter((p) => p.startsWith('o:') || p.startsWith('w:'));
  }

  /** Every notification that `call` sent, counted exactly (see the top). */
  async function notificationsOf(call: () => Promise<unknown>): Promise<string[]> {
    await everythingDelivered(); // notifications of earlier calls may still be on their way
    payloads.length = 0;
    await call();
    await everythingDelivered();
    return [...payloads];
  }

  /** Resolves once every notification committed before this call has been received. */
  async function everythingDelivered(): Promise<void> {
    markers += 1;
    const arrived = new Promise<void>((resolve) => (markerArrived = resolve));
    await executor.query('SELECT pg_notify($1, $2)', [channel, `marker:${markers}`]);
    await arrived;
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
    assert.deepEqual(
      await announcementsOf(() => provider.ackOrchestrationItem(first.lockToken, turn('t1', { workerItems }))),
      ['w:3::1'],
    );

    await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 't1', name: 'e', data: '2' });
    const second = await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS });
    assert.equal(second?.instanceId, 't1');
    const claimed = await announcementsOf(async () => {
      const leases = await provider.ackOrchestrationItem(
        second.lockToken,
        turn('t1', { workerItems: [activity('t1', 5)] }),
        {
          workerItemIndexes: [0],
          lockTimeoutMs: LOCK_MS,
        },
      );
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

  it('a completion is announced only when it makes its instance ready', async () => {
    // Three activities of f1; their completions arrive while a turn holds f1, then while f1 is
    // free with a completion already waiting.
    await seedInstance(provider, 'f1');
    await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'f1', name: 'e', data: '1' });
    const scheduling = await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS });
    assert.equal(scheduling?.instanceId, 'f1');
    const workerItems = [activity('f1', 2), activity('f1', 3), activity('f1', 4)];
    await provider.ackOrchestrationItem(scheduling.lockToken, turn('f1', { workerItems }));
    // Earlier tests leave activities of other instances queued: keep f1's, put the others back.
    const leases: WorkItemLease[] = [];
    const others: WorkItemLease[] = [];
    while (leases.length < 3) {
      const lease = await provider.fetchWorkItem({ lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'defaultOnly' } });
      assert.ok(lease, 'the three activities of f1 are queued');
      (lease.item.instance === 'f1' ? leases : others).push(lease);
    }
    for (const other of others) await provider.abandonWorkItem(other.lockToken, { ignoreAttempt: true });
    await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'f1', name: 'e', data: '2' });
    const held = await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS });
    assert.equal(held?.instanceId, 'f1');
    assert.deepEqual(
      await announcementsOf(() => provider.ackWorkItem(leases[0].lockToken, completion('f1', 2))),
      [],
      'a turn holds f1: its release announces the completion',
    );
    assert.deepEqual(await announcementsOf(() => provider.ackOrchestrationItem(held.lockToken, turn('f1'))), [
      'o:1::1',
    ]);
    assert.deepEqual(
      await announcementsOf(() => provider.ackWorkItem(leases[1].lockToken, completion('f1', 3))),
      [],
      'a completion already waits for f1: its announcement wakes the fetch that takes both',
    );
    const both = await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS });
    assert.deepEqual(
      both?.messages.map((m) => (m.type === 'ActivityCompleted' ? m.id : m.type)),
      [2, 3],
    );
    await provider.ackOrchestrationItem(both.lockToken, turn('f1'));
    assert.deepEqual(
      await announcementsOf(() => provider.ackWorkItem(leases[2].lockToken, completion('f1', 4))),
      ['o:1::1'],
      'f1 free and nothing waiting: the completion makes it ready',
    );
    const last = await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS });
    assert.equal(last?.instanceId, 'f1');
    await provider.ackOrchestrationItem(last.lockToken, turn('f1'));
  });

  it('an abandoned work item is announced once, with its delay', async () => {
    const lease = await provider.fetchWorkItem({ lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'defaultOnly' } });
    assert.ok(lease);
    assert.deepEqual(await announcementsOf(() => provider.abandonWorkItem(lease.lockToken, { delayMs: 45_000 })), [
      'w:0:45000:1',
    ]);
  });

  it('releasing an instance announces the message that arrived during its turn, once', async () => {
    await seedInstance(provider, 'r1');
    await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'r1', name: 'e', data: '1' });
    const held = await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS });
    assert.equal(held?.instanceId, 'r1');
    await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'r1', name: 'e', data: '2' });
    assert.deepEqual(await notificationsOf(() => provider.ackOrchestrationItem(held.lockToken, turn('r1'))), [
      'o:1::1',
    ]);
    const next = await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS });
    assert.equal(next?.instanceId, 'r1');
    assert.deepEqual(
      await notificationsOf(() => provider.abandonOrchestrationItem(next.lockToken, { delayMs: 30_000 })),
      ['o:0:30000:1'],
    );
  });

  it('a turn that completes the instance and changes its custom status sends one status notification', async () => {
    await provider.enqueueOrchestratorWork(startItem('s1'));
    const item = await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS });
    assert.equal(item?.instanceId, 's1');
    const notifications = await notificationsOf(() =>
      provider.ackOrchestrationItem(
        item.lockToken,
        turn('s1', {
          historyDelta: [
            started('s1'),
            event('s1', 1, 2, { kind: 'CustomStatusUpdated', status: 'done' }),
            event('s1', 1, 3, { kind: 'OrchestrationCompleted', output: '"ok"' }),
          ],
          metadata: { orchestrationName: 'Orch', orchestrationVersion: '1.0.0', status: 'Completed', output: '"ok"' },
        }),
      ),
    );
    assert.deepEqual(notifications, ['s:s1']);
    assert.equal((await provider.getInstanceStatus('s1'))?.status, 'Completed');
  });
});
