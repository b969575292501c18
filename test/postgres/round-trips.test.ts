/**
 * Every provider operation is exactly one round trip: one `SELECT "<schema>".<procedure>(...)`.
 * Counted on the driver by a wrapper, never estimated.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { applyMigrations } from '../../src/store/migrations';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { ProcedureProvider } from '../../src/store/procedure-provider';
import { activity, event, LOCK_MS, started, startItem, turn } from '../conformance/fixtures';
import { CountingExecutor } from '../helpers/counting-executor';
import { databaseUrl, uniqueSchemaName } from '../helpers/postgres-harness';

describe('postgres: one round trip per provider operation', () => {
  const schema = uniqueSchemaName('trips');
  let counter: CountingExecutor;
  let provider: ProcedureProvider;

  before(async () => {
    counter = new CountingExecutor(PgExecutor.fromUrl(databaseUrl(), 2));
    await applyMigrations(counter, schema);
    provider = new ProcedureProvider(counter, schema, 'postgres');
    counter.take();
  });

  after(async () => {
    await counter.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await provider.close();
  });

  async function once<T>(operation: string, work: () => Promise<T>): Promise<T> {
    counter.take();
    const result = await work();
    const texts = counter.take();
    assert.equal(texts.length, 1, `${operation} sent ${texts.length} statements`);
    assert.match(texts[0], new RegExp(`^SELECT "${schema}"\\.${operation}\\((\\$\\d+(, )?)*\\) AS result$`));
    return result;
  }

  it('counts one statement for each of the 26 operations', async () => {
    await once('enqueue_orchestrator_work', () => provider.enqueueOrchestratorWork(startItem('rt')));
    const item = await once('fetch_orchestration_item', () =>
      provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS }),
    );
    assert.ok(item);
    await once('renew_orchestration_item_lock', () => provider.renewOrchestrationItemLock(item.lockToken, LOCK_MS));
    await once('abandon_orchestration_item', () => provider.abandonOrchestrationItem(item.lockToken));
    const again = await once('fetch_orchestration_item', () =>
      provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS }),
    );
    assert.ok(again);
    await once('ack_orchestration_item', () =>
      provider.ackOrchestrationItem(
        again.lockToken,
        turn('rt', {
          historyDelta: [
            started('rt'),
            event('rt', 1, 2, { kind: 'ActivityScheduled', name: 'Act', input: '1' }),
            event('rt', 1, 3, { kind: 'KeyValueSet', key: 'k', value: 'v', lastUpdatedAtMs: 1 }),
            event('rt', 1, 4, { kind: 'CustomStatusUpdated', status: 's' }),
          ],
          workerItems: [activity('rt', 2)],
        }),
      ),
    );
    await once('enqueue_worker_work', () => provider.enqueueWorkerWork(activity('rt', 5)));
    const lease = await once('fetch_work_item', () =>
      provider.fetchWorkItem({ lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'any' } }),
    );
    assert.ok(lease);
    await once('renew_work_item_lock', () => provider.renewWorkItemLock(lease.lockToken, LOCK_MS));
    await once('abandon_work_item', () => provider.abandonWorkItem(lease.lockToken));
    const lease2 = await once('fetch_work_item', () =>
      provider.fetchWorkItem({ lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'any' } }),
    );
    assert.ok(lease2);
    await once('ack_work_item', () =>
      provider.ackWorkItem(lease2.lockToken, {
        type: 'ActivityCompleted',
        instance: 'rt',
        executionId: 1,
        id: 2,
        result: '1',
      }),
    );
    assert.equal((await once('read_history', () => provider.readHistory('rt'))).length, 4);
    assert.equal((await once('get_instance_status', () => provider.getInstanceStatus('rt'))).customStatus, 's');
    assert.equal(await once('get_kv_value', () => provider.getKvValue('rt', 'k')), 'v');
    assert.deepEqual(await once('get_kv_all_values', () => provider.getKvAllValues('rt')), { k: 'v' });
    assert.deepEqual(await once('list_instances', () => provider.listInstances()), ['rt']);
    assert.deepEqual(await once('list_executions', () => provider.listExecutions('rt')), [1]);
    assert.equal((await once('get_instance_info', () => provider.getInstanceInfo('rt')))?.instanceId, 'rt');
    assert.equal((await once('get_execution_info', () => provider.getExecutionInfo('rt', 1)))?.eventCount, 4);
    assert.equal((await once('get_system_metrics', () => provider.getSystemMetrics())).totalInstances, 1);
    assert.equal((await once('get_queue_depths', () => provider.getQueueDepths())).orchestratorQueue, 1);
  });

  it('batch fetch, group commit and acks that claim work are one statement each too', async () => {
    await provider.enqueueOrchestratorWork(startItem('rb1'));
    await provider.enqueueOrchestratorWork(startItem('rb2'));
    const items = await once('fetch_orchestration_items', () =>
      provider.fetchOrchestrationItems({ lockTimeoutMs: LOCK_MS, maxItems: 3 }),
    );
    const token = (id: string): string =>
      items.find((item) => item.instanceId === id)?.lockToken ?? assert.fail(`${id} not fetched`);
    assert.equal(items.length, 3, 'rb1, rb2 and the completion left for rt by the first test');
    await provider.abandonOrchestrationItem(token('rt'));
    const claimed = await once('ack_orchestration_item', () =>
      provider.ackOrchestrationItem(
        token('rb1'),
        turn('rb1', { historyDelta: [started('rb1')], workerItems: [activity('rb1', 2), activity('rb1', 3)] }),
        {
          workerItemIndexes: [0, 1],
          lockTimeoutMs: LOCK_MS,
        },
      ),
    );
    assert.equal(claimed.length, 2);
    await provider.ackOrchestrationItem(token('rb2'), turn('rb2', { historyDelta: [started('rb2')] }));
    const claimedTurn = await once('ack_work_item', () =>
      provider.ackWorkItem(
        claimed[0].lockToken,
        { type: 'ActivityCompleted', instance: 'rb1', executionId: 1, id: 2, result: '1' },
        { lockTimeoutMs: LOCK_MS },
      ),
    );
    assert.equal(claimedTurn?.instanceId, 'rb1');
    const outcomes = await once('ack_work_items', () =>
      provider.ackWorkItems([
        {
          lockToken: claimed[1].lockToken,
          completion: { type: 'ActivityCompleted', instance: 'rb1', executionId: 1, id: 3, result: '1' },
        },
      ]),
    );
    assert.deepEqual(outcomes, [{ ok: true, claimedTurn: null }]);
    const eager = await once('start_orchestration_claimed', () =>
      provider.startOrchestrationClaimed(startItem('rb3'), { lockTimeoutMs: LOCK_MS }),
    );
    assert.equal(eager?.instanceId, 'rb3');
    const group = await once('fetch_work_item_group', () =>
      provider.fetchWorkItemGroup([
        { lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'defaultOnly' } },
        { lockTimeoutMs: LOCK_MS, tagFilter: { mode: 'defaultOnly' } },
      ]),
    );
    assert.equal(group.length, 2);
    // A fused start's turn, dated by the store's clock as the claimed turn above reported it.
    const firstTurn = (id: string) => ({
      ack: turn(id, { historyDelta: [started(id)] }),
      nowMs: eager.nowMs,
      claim: null,
    });
    const fused = await once('start_orchestration_with_turn', () =>
      provider.startOrchestrationWithTurn(startItem('rb5'), firstTurn('rb5')),
    );
    assert.equal(fused.fused, true);
    const fusedGroup = await once('start_orchestrations_with_turns', () =>
      provider.startOrchestrationsWithTurns([
        { item: startItem('rb6'), turn: firstTurn('rb6') },
        { item: startItem('rb7'), turn: firstTurn('rb7') },
      ]),
    );
    assert.deepEqual(
      fusedGroup.map((element) => element.ok && element.outcome.fused),
      [true, true],
    );
  });

  it('sends nothing at all for arguments refused before SQL', async () => {
    counter.take();
    await assert.rejects(provider.readHistory(''));
    await assert.rejects(provider.getKvValue('a\u0000b', 'k'));
    await assert.rejects(provider.fetchWorkItem({ lockTimeoutMs: 0, tagFilter: { mode: 'any' } }));
    await assert.rejects(provider.fetchOrchestrationItems({ lockTimeoutMs: LOCK_MS, maxItems: 101 }));
    await assert.rejects(provider.startOrchestrationClaimed(startItem('rb4'), { lockTimeoutMs: -1 }));
    await assert.rejects(
      provider.startOrchestrationWithTurn(startItem('rb8', { flowKey: 'tenant' }), {
        ack: turn('rb8'),
        nowMs: 0,
        claim: null,
      }),
    );
    const [refused] = await provider.ackWorkItems([{ lockToken: '', completion: null }]);
    assert.ok(!refused.ok && refused.error.code === 'invalid_argument', 'a group commit refuses a bad ack on its own');
    await assert.rejects(
      provider.ackOrchestrationItem('token', turn('rt', { workerItems: [activity('rt', 9)] }), {
        workerItemIndexes: [3],
        lockTimeoutMs: LOCK_MS,
      }),
    );
    assert.equal(counter.take().length, 0);
  });
});
