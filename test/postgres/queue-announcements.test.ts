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
import type { ActivityCompletionItem, ActivityExecuteItem } from '../../src/core/types';
import type { OrchestrationItem, WorkItemLease } from '../../src/provider/contract';
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

  /** Runs `work` while another session holds `instance`'s advisory lock in a transaction of its own. */
  async function holdingAdvisoryLock(
    instance: string,
    mode: 'shared' | 'exclusive',
    work: () => Promise<void>,
  ): Promise<void> {
    const holder = new PgClient({ connectionString: databaseUrl() });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      const lock = mode === 'shared' ? 'pg_advisory_xact_lock_shared' : 'pg_advisory_xact_lock';
      await holder.query(`SELECT ${lock}(hashtext($1)::BIGINT)`, [`${schema}:${instance}`]);
      await work();
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
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

  /** Seeds `instance` with a turn that scheduled activities `ids`, and fetches their leases. */
  async function activitiesOf(instance: string, ids: number[]): Promise<WorkItemLease[]> {
    await seedInstance(provider, instance);
    await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance, name: 'e', data: '1' });
    const scheduling = await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS });
    assert.equal(scheduling?.instanceId, instance);
    const workerItems = ids.map((id) => activity(instance, id));
    await provider.ackOrchestrationItem(scheduling.lockToken, turn(instance, { workerItems }));
    // Earlier tests leave activities of other instances queued: keep these, put the others back.
    const leases: WorkItemLease[] = [];
    const others: WorkItemLease[] = [];
    while (leases.length < ids.length) {
      const lease = await provider.fetchWorkItem({ lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'defaultOnly' } });
      assert.ok(lease, `the activities of ${instance} are queued`);
      (lease.item.instance === instance ? leases : others).push(lease);
    }
    for (const other of others) await provider.abandonWorkItem(other.lockToken, { ignoreAttempt: true });
    return leases;
  }

  it('a completion is not announced while a turn holds its instance: the release announces it', async () => {
    const [lease] = await activitiesOf('f1', [2]);
    await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'f1', name: 'e', data: '2' });
    const held = await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS });
    assert.equal(held?.instanceId, 'f1');
    assert.deepEqual(await announcementsOf(() => provider.ackWorkItem(lease.lockToken, completion('f1', 2))), []);
    assert.deepEqual(await announcementsOf(() => provider.ackOrchestrationItem(held.lockToken, turn('f1'))), [
      'o:1::1',
    ]);
    const next = await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS });
    assert.deepEqual(
      next?.messages.map((m) => (m.type === 'ActivityCompleted' ? m.id : m.type)),
      [2],
    );
    await provider.ackOrchestrationItem(next.lockToken, turn('f1'));
  });

  it('a completion is not announced while another message waits; a fetch that finds writers holding the instance announces it again', async () => {
    // The first completion is announced; the second is not (the fetch answering the first takes
    // both). A fetch that answers the first announcement while the second completion's ack holds
    // the instance's advisory lock (here another session holds it shared for as long as the
    // test needs) comes back empty: it announces the instance again, or that wake-up is spent.
    const [first, second] = await activitiesOf('f2', [2, 3]);
    assert.deepEqual(await announcementsOf(() => provider.ackWorkItem(first.lockToken, completion('f2', 2))), [
      'o:1::1',
    ]);
    await holdingAdvisoryLock('f2', 'shared', async () => {
      assert.deepEqual(
        await announcementsOf(async () =>
          assert.equal(
            await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS }),
            null,
            'the fetch skipped f2, whose advisory lock is held',
          ),
        ),
        ['o:1::1'],
      );
      assert.deepEqual(await announcementsOf(() => provider.ackWorkItem(second.lockToken, completion('f2', 3))), []);
    });
    const both = await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS });
    assert.deepEqual(
      both?.messages.map((m) => (m.type === 'ActivityCompleted' ? m.id : m.type)),
      [2, 3],
    );
    await provider.ackOrchestrationItem(both.lockToken, turn('f2'));
  });

  it('a fetch that finds the instance being taken (its advisory lock held exclusively) announces nothing', async () => {
    const [lease] = await activitiesOf('f3', [2]);
    await provider.ackWorkItem(lease.lockToken, completion('f3', 2));
    await holdingAdvisoryLock('f3', 'exclusive', async () =>
      assert.deepEqual(
        await announcementsOf(async () =>
          assert.equal(await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS }), null),
        ),
        [],
      ),
    );
    const item = await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS });
    assert.equal(item?.instanceId, 'f3');
    await provider.ackOrchestrationItem(item.lockToken, turn('f3'));
  });

  it('a completion is announced when the turn holding its instance let its lock run out', async () => {
    const [lease] = await activitiesOf('f4', [2]);
    await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'f4', name: 'e', data: '1' });
    const held = await provider.fetchOrchestrationItem({ lockTimeoutMs: 50 });
    assert.equal(held?.instanceId, 'f4');
    await executor.query(
      `UPDATE "${schema}".instance_locks SET locked_until_ms = locked_until_ms - 60000 WHERE instance_id = 'f4'`,
    );
    assert.deepEqual(await announcementsOf(() => provider.ackWorkItem(lease.lockToken, completion('f4', 2))), [
      'o:1::1',
    ]);
    const taken = await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS });
    assert.equal(taken?.instanceId, 'f4');
    await provider.ackOrchestrationItem(taken.lockToken, turn('f4'));
  });

  it('taking over a lease or an instance lock that ran out announces one more item of its queue', async () => {
    // The fetch may have been woken for another item, which its caller then no longer looks for
    // (one announcement wakes one fetch): without this, that item waited for the safety fetch.
    const [lease] = await activitiesOf('f5', [2]);
    await executor.query(`UPDATE "${schema}".worker_queue SET locked_until_ms = 0 WHERE lock_token = $1`, [
      lease.lockToken,
    ]);
    const others: WorkItemLease[] = [];
    for (;;) {
      let fetched: WorkItemLease | null = null;
      const announced = await announcementsOf(async () => {
        fetched = await provider.fetchWorkItem({ lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'defaultOnly' } });
      });
      const taken = fetched as WorkItemLease | null;
      assert.ok(taken, 'the expired lease is fetchable');
      if (taken.item.instance !== 'f5') {
        assert.deepEqual(announced, [], 'a queued item taken for the first time announces nothing');
        others.push(taken);
        continue;
      }
      assert.equal(taken.attemptCount, 2);
      assert.deepEqual(announced, ['w:1::1']);
      await provider.ackWorkItem(taken.lockToken, completion('f5', 2));
      break;
    }
    for (const other of others) await provider.abandonWorkItem(other.lockToken, { ignoreAttempt: true });

    const held = await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS });
    assert.equal(held?.instanceId, 'f5');
    await executor.query(`UPDATE "${schema}".instance_locks SET locked_until_ms = 0 WHERE instance_id = 'f5'`);
    let takenOver: OrchestrationItem | null = null;
    assert.deepEqual(
      await announcementsOf(async () => {
        takenOver = await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS });
      }),
      ['o:1::1'],
    );
    const turnOfF5 = takenOver as OrchestrationItem | null;
    assert.equal(turnOfF5?.instanceId, 'f5');
    await provider.ackOrchestrationItem(turnOfF5.lockToken, turn('f5'));
  });

  it('a batch lock that finds the pinned version outside its range announces the instance again', async () => {
    // A fetch's peek filters by version, but an instance can be pinned between the peek and the
    // lock (its first turn commits meanwhile). The lock then holds the instance's advisory lock
    // until the fetch's transaction ends, and a runtime of the right version answering the same
    // announcement meanwhile skips the instance as busy: the skipping call must announce it
    // again (NOTIFY is delivered at commit, after the advisory lock is released). Driven here by
    // calling the batch lock directly, as the owner, with a range that excludes the instance.
    await seedInstance(provider, 'v1');
    await executor.query(
      `UPDATE "${schema}".executions SET pinned_major = 9, pinned_minor = 0, pinned_patch = 0 WHERE instance_id = 'v1'`,
    );
    await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'v1', name: 'e', data: '1' });
    const owner = new PgClient({ connectionString: databaseUrl() });
    await owner.connect();
    try {
      await owner.query(`SET search_path TO "${schema}"`);
      const announced = await announcementsOf(async () => {
        const locked = await owner.query(
          `SELECT internal_lock_orchestration_batch('v1', internal_instance_advisory_key('v1'), 1000,
                  ARRAY[0, 0, 0], ARRAY[1, 0, 0], internal_current_time_ms()) AS batch`,
        );
        assert.equal(locked.rows[0].batch, null, 'version 9.0.0 is outside [0.0.0, 1.0.0]');
      });
      assert.deepEqual(announced, ['o:1::1']);
    } finally {
      await owner.end();
    }
    const item = await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS });
    assert.equal(item?.instanceId, 'v1', 'a fetch without a range takes it');
    await provider.ackOrchestrationItem(item.lockToken, turn('v1'));
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
  it('flow limits: a parked activity is not announced; the ack that hands it the permit announces it', async () => {
    const item = (instance: string, name: string): ActivityExecuteItem => ({
      type: 'ActivityExecute',
      instance,
      executionId: 1,
      id: 1,
      name,
      input: '""',
      sessionId: null,
      tag: null,
    });
    await provider.setFlowLimit('activity:Announced', { maxActive: 1 });
    try {
      assert.deepEqual(await announcementsOf(() => provider.enqueueWorkerWork(item('fa', 'Announced'))), ['w:1::1']);
      assert.deepEqual(await announcementsOf(() => provider.enqueueWorkerWork(item('fb', 'Announced'))), []);
      const first = await provider.fetchWorkItem({ lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'defaultOnly' } });
      assert.equal(first?.item.instance, 'fa');
      assert.deepEqual(await announcementsOf(() => provider.ackWorkItem(first.lockToken, null)), ['w:1::1']);
      const second = await provider.fetchWorkItem({ lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'defaultOnly' } });
      assert.equal(second?.item.instance, 'fb');
      assert.deepEqual(await announcementsOf(() => provider.ackWorkItem(second.lockToken, null)), []);
    } finally {
      await provider.deleteFlowLimit('activity:Announced');
    }
  });

  it('rate limits: a fetch that finds no token announces the deferred activity with its due time', async () => {
    await provider.setFlowLimit('activity:Paced', { perSecond: 1 });
    try {
      const paced = (instance: string): ActivityExecuteItem => ({
        type: 'ActivityExecute',
        instance,
        executionId: 1,
        id: 1,
        name: 'Paced',
        input: '""',
        sessionId: null,
        tag: null,
      });
      await provider.enqueueWorkerWork(paced('pa'));
      await provider.enqueueWorkerWork(paced('pb'));
      let leases: Awaited<ReturnType<ProcedureProvider['fetchWorkItems']>> = [];
      const notifications = await announcementsOf(async () => {
        leases = await provider.fetchWorkItems({
          lockTimeoutMs: LOCK_MS,
          tagFilter: { mode: 'defaultOnly' },
          maxItems: 2,
        });
      });
      assert.deepEqual(
        leases.map((l) => l.item.instance),
        ['pa'],
      );
      assert.equal(notifications.length, 1, JSON.stringify(notifications));
      assert.match(notifications[0], /^w:0:(9\d\d|1000):1$/);
      await provider.ackWorkItem(leases[0].lockToken, null);
    } finally {
      await provider.deleteFlowLimit('activity:Paced');
    }
    // Lifting the limit makes the deferred activity fetchable at once.
    const rest = await provider.fetchWorkItem({ lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'defaultOnly' } });
    assert.equal(rest?.item.instance, 'pb');
    await provider.ackWorkItem(rest.lockToken, null);
  });
  it('orchestration flow keys: a parked start is not announced; the end of the holder announces the start it admits', async () => {
    const flowKey = 'orch:announced';
    await provider.setFlowLimit(flowKey, { maxActive: 1 });
    try {
      assert.deepEqual(await announcementsOf(() => provider.enqueueOrchestratorWork(startItem('oa', { flowKey }))), [
        'o:1::1',
      ]);
      assert.deepEqual(await announcementsOf(() => provider.enqueueOrchestratorWork(startItem('ob', { flowKey }))), []);
      assert.deepEqual(await announcementsOf(() => provider.enqueueOrchestratorWork(startItem('oc', { flowKey }))), []);
      const holder = await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS });
      assert.equal(holder?.instanceId, 'oa');
      const ended = await announcementsOf(() =>
        provider.ackOrchestrationItem(
          holder.lockToken,
          turn('oa', {
            historyDelta: [started('oa')],
            metadata: { orchestrationName: 'Orch', orchestrationVersion: '1.0.0', status: 'Completed', output: '1' },
          }),
        ),
      );
      assert.deepEqual(ended, ['o:1::1'], 'the start of ob, admitted by the end of oa');
      // A cancelled parked start is queued (announced) ahead of its cancellation (announced too).
      assert.deepEqual(
        await announcementsOf(() =>
          provider.enqueueOrchestratorWork({ type: 'CancelInstance', instance: 'oc', reason: 'stop' }),
        ),
        ['o:1::1', 'o:1::2'],
      );
    } finally {
      await provider.deleteFlowLimit(flowKey);
    }
  });
});
