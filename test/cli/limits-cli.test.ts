/**
 * `durox limits ...`: the real bin in a child process against a real PostgreSQL schema, checking
 * exit codes, --json and the table, that `set` keeps the settings it is not given, and that a
 * parked activity and a pending instance show in the counts.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Client } from '../../src/client/client';
import { PostgresProvider } from '../../src/postgres';
import type { FlowLimitInfo } from '../../src/provider/contract';
import { dropTestSchema } from '../helpers/postgres-harness';
import { durox } from './run-cli';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/test';

describe('durox limits', () => {
  const schema = `cli_limits_${randomBytes(4).toString('hex')}`;
  let provider: PostgresProvider;
  let client: Client;
  let s: string[];
  before(async () => {
    provider = await PostgresProvider.connectWithSchema(DATABASE_URL, schema);
    client = new Client(provider);
    s = ['--schema', schema];
  });
  after(async () => {
    await provider.close();
    await dropTestSchema(schema);
  });

  const listed = async (): Promise<FlowLimitInfo[]> => {
    const run = await durox([...s, '--json', 'limits', 'list']);
    assert.equal(run.code, 0, run.stderr);
    return JSON.parse(run.stdout) as FlowLimitInfo[];
  };

  it('sets, changes, lists and deletes a limit', async () => {
    const created = await durox([...s, 'limits', 'set', 'activity:Charge', '--max-active', '3']);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /created limit activity:Charge: max active 3, rate —/);

    // A setting not given keeps its value.
    const changed = await durox([
      ...s,
      '--json',
      'limits',
      'set',
      'activity:Charge',
      '--per-second',
      '20',
      '--burst',
      '5',
    ]);
    assert.equal(changed.code, 0, changed.stderr);
    const limit = JSON.parse(changed.stdout) as FlowLimitInfo;
    assert.deepEqual([limit.maxActive, limit.perSecond, limit.burst], [3, 20, 5]);

    // A parked activity shows in the counts.
    await client.setFlowLimit('tenant-7', { maxActive: 0 });
    await provider.enqueueWorkerWork({
      type: 'ActivityExecute',
      instance: 'parked-1',
      executionId: 1,
      id: 1,
      name: 'Any',
      input: '""',
      sessionId: null,
      tag: null,
      flowKey: 'tenant-7',
    });
    // So does a start waiting for a permit of the key (a pending instance).
    await client.startOrchestration('pending-1', 'Any', null, { flowKey: 'tenant-7' });
    assert.deepEqual(
      (await listed()).map((l) => [l.flowKey, l.maxActive, l.active, l.parked, l.activeInstances, l.parkedInstances]),
      [
        ['activity:Charge', 3, 0, 0, 0, 0],
        ['tenant-7', 0, 0, 2, 0, 1],
      ],
    );
    const table = await durox([...s, '--no-color', 'limits', 'list']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /KEY\s+MAX ACTIVE\s+ACTIVE\s+PARKED\s+RATE\s+INSTANCES RUNNING\/PENDING/);
    assert.match(table.stdout, /tenant-7\s+paused \(0\)\s+0\s+2\s+—\s+0\/1/);
    assert.match(table.stdout, /activity:Charge\s+3\s+0\s+0\s+20\/s, burst 5/);

    // --max-active none lifts the cap (the rate stays); delete starts the parked activity.
    const lifted = await durox([...s, '--json', 'limits', 'set', 'activity:Charge', '--max-active', 'none']);
    assert.deepEqual((JSON.parse(lifted.stdout) as FlowLimitInfo).maxActive, null);
    const deleted = await durox([...s, 'limits', 'delete', 'tenant-7']);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.match(deleted.stdout, /deleted limit tenant-7/);
    const lease = await provider.fetchWorkItem({ lockTimeoutMs: 30_000, tagFilter: { mode: 'defaultOnly' } });
    assert.equal(lease?.item.instance, 'parked-1');
    await provider.ackWorkItem(lease.lockToken, null);
    const again = await durox([...s, '--json', 'limits', 'delete', 'tenant-7']);
    assert.deepEqual(JSON.parse(again.stdout), { flowKey: 'tenant-7', deleted: false });
  });

  it('refuses bad numbers with the usage exit code', async () => {
    const bad = await durox([...s, 'limits', 'set', 'activity:Charge', '--max-active', '2.5']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--max-active must be a non-negative integer or none, got 2.5/);
    const zeroRate = await durox([...s, 'limits', 'set', 'activity:Charge', '--per-second', '0']);
    assert.equal(zeroRate.code, 2);
    assert.match(zeroRate.stderr, /perSecond must be a positive number/);
  });
});
