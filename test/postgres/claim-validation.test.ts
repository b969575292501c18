/**
 * ack_orchestration_item refuses (DX003) a claim of an activity pinned to a session, and writes
 * nothing, when called directly (the provider refuses it before any SQL, so only a direct caller
 * reaches this check). Without a flow limit the claimed row's generated session_id tells it, after
 * the insert (the error undoes the turn); under a limit the claim is refused before the activity
 * is queued, since a parked one would never show in worker_queue.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { ProcedureProvider } from '../../src/store/procedure-provider';
import { buildAckArguments, workerRow } from '../../src/store/ack-arguments';
import { activity, event, fetchItem, LOCK_MS, seedInstance, turn } from '../conformance/fixtures';
import { databaseUrl, dropTestSchema, migrateTestSchema, uniqueSchemaName } from '../helpers/postgres-harness';

const schema = uniqueSchemaName('claim_check');
let provider: ProcedureProvider;
let sql: PgExecutor;

before(async () => {
  await migrateTestSchema(schema);
  provider = new ProcedureProvider(PgExecutor.fromUrl(databaseUrl(), 2), schema, 'postgres');
  sql = PgExecutor.fromUrl(databaseUrl(), 1);
});

after(async () => {
  await provider.close();
  await sql.close();
  await dropTestSchema(schema);
});

async function count(table: string, instanceId: string): Promise<number> {
  const rows = await sql.query(`SELECT count(*)::INTEGER AS n FROM "${schema}".${table} WHERE instance_id = $1`, [
    instanceId,
  ]);
  return Number(rows[0].n);
}

/** Sends a turn that schedules one activity pinned to a session and claims it, straight to the procedure. */
async function claimPinned(instanceId: string): Promise<void> {
  await seedInstance(provider, instanceId);
  await provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: instanceId, name: 'go', data: '1' });
  const item = await fetchItem(provider, instanceId);
  const pinned = { ...activity(instanceId, 2), sessionId: 'session-1' };
  const ack = buildAckArguments(
    turn(instanceId, {
      historyDelta: [event(instanceId, 1, 2, { kind: 'ActivityScheduled', name: pinned.name, input: pinned.input })],
    }),
  ).ack;
  const claim = JSON.stringify({
    workerItems: [workerRow(pinned, { operation: 'test' })],
    lockTimeoutMs: LOCK_MS,
  });
  await assert.rejects(
    sql.query(`SELECT "${schema}".ack_orchestration_item($1, $2, $3)`, [item.lockToken, ack, claim]),
    /activities pinned to a session cannot be claimed by an ack/,
  );
  assert.equal(await count('history', instanceId), 1, 'the turn was not committed');
  assert.equal(await count('worker_queue', instanceId), 0, 'nothing was queued');
  assert.equal(await count('flow_parked', instanceId), 0, 'nothing was parked');
}

test('a claim of an activity pinned to a session is refused and writes nothing', async () => {
  await claimPinned('pinned-free');
});

test('under a flow limit that would park it, the claim is refused before anything is queued', async () => {
  await sql.query(`SELECT "${schema}".set_flow_limit($1, $2)`, [
    `activity:${activity('x', 2).name}`,
    JSON.stringify({ maxActive: 0 }),
  ]);
  await claimPinned('pinned-limited');
});
