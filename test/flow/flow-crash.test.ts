/**
 * A runtime process killed with SIGKILL while it holds every permit of a flow limit: its
 * activities are delivered again when their leases expire (the permits stay with them), the
 * survivor never runs more than the limit at once, and after the drain no permit is in use and
 * nothing is parked. The same for an orchestration flow key: the instances the dead process ran
 * keep their permits (they belong to the instances, not to a runtime), the parked starts begin
 * only as those instances end, and the store never shows more running instances than the limit. On the PostgreSQL server (a second process needs a server). Nothing
 * announces a lease running out, so the survivor finds the two expired leases with its safety
 * fetch (counted as expired_lock, not as a lost wake-up), about ten seconds in.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Client } from '../../src/client/client';
import { Runtime } from '../../src/runtime/runtime';
import { databaseUrl } from '../helpers/postgres-harness';
import { eventually, openFlowStore, permitCounts, sleep, type FlowStore } from './flow-stores';

const LIMIT = 2;
const ACTIVITIES = 6;

let store: FlowStore;
before(async () => {
  store = await openFlowStore('postgres');
});
after(async () => {
  await store.close();
});

test('a runtime killed with SIGKILL while holding every permit: the limit holds and the permits come back', async () => {
  const client = new Client(await store.openProvider());
  await client.setFlowLimit('activity:Guarded', { maxActive: LIMIT });
  const script = join(__dirname, 'fixtures', 'flow-crash-worker.js');
  const child = spawn(process.execPath, [script, databaseUrl(), store.schema], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let errors = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  try {
    await eventually('the runtime process to start', async () => (output.includes('ready') ? true : undefined));
    await client.startOrchestration('guarded', 'GuardedFan', ACTIVITIES);
    // The process has six free slots; the limit lets it take two activities, the rest wait parked.
    await eventually('two activities started, four parked', async () => {
      const [limit] = await client.getFlowLimits();
      const started = output.split('\n').filter((line) => line.startsWith('started')).length;
      return started === LIMIT && limit.active === LIMIT && limit.parked === ACTIVITIES - LIMIT ? true : undefined;
    });
  } catch (error) {
    child.kill('SIGKILL');
    throw new Error(`${(error as Error).message}; process stdout: ${output}; stderr: ${errors}`, { cause: error });
  }
  child.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL');

  let running = 0;
  let maxRunning = 0;
  const survivor = new Runtime(await store.openProvider(), { logLevel: 'warn', workerConcurrency: 6 });
  survivor.registerActivity('Guarded', async (_ctx, input: number) => {
    maxRunning = Math.max(maxRunning, ++running);
    await sleep(20);
    running -= 1;
    return input;
  });
  survivor.registerOrchestration('GuardedFan', function* (ctx, count: number) {
    const tasks = Array.from({ length: count }, (_, i) => ctx.scheduleActivity('Guarded', i));
    return ((yield ctx.all(tasks)) as unknown[]).length;
  });
  await survivor.start();
  try {
    const result = await client.waitForOrchestration('guarded', 30_000);
    assert.equal(result.status, 'Completed', JSON.stringify(result));
    assert.equal(result.output, ACTIVITIES);
    console.log(`after SIGKILL: max overlap ${maxRunning} of ${LIMIT}`);
    assert.ok(maxRunning <= LIMIT, `ran ${maxRunning} at once`);
    assert.deepEqual(
      (await permitCounts(store)).map((c) => [c.key, c.active, c.holding, c.parked]),
      [['activity:Guarded', 0, 0, 0]],
    );
  } finally {
    await survivor.shutdown(0);
  }
});

test('a runtime killed with SIGKILL while its instances hold every permit of an orchestration key', async () => {
  const INSTANCES = 5;
  const own = await openFlowStore('postgres');
  const client = new Client(await own.openProvider());
  await client.setFlowLimit('orch:guarded', { maxActive: LIMIT });
  const script = join(__dirname, 'fixtures', 'flow-crash-worker.js');
  const child = spawn(process.execPath, [script, databaseUrl(), own.schema], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  const ids = Array.from({ length: INSTANCES }, (_, i) => `job-${i}`);
  let survivor: Runtime | undefined;
  try {
    await eventually('the runtime process to start', async () => (output.includes('ready') ? true : undefined));
    for (const id of ids) await client.startOrchestration(id, 'GuardedJob', null, { flowKey: 'orch:guarded' });
    await eventually('two instances in their activity, three parked', async () => {
      const [limit] = await client.getFlowLimits();
      const started = output.split('\n').filter((line) => line.startsWith('started')).length;
      return started === LIMIT && limit.activeInstances === LIMIT && limit.parkedInstances === INSTANCES - LIMIT
        ? true
        : undefined;
    });
    child.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL');

    // Running instances as the store shows them, sampled while the survivor drains.
    const seen: number[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const [row] = await own.query(
          `SELECT (SELECT count(*) FROM \${schema}.executions e WHERE e.status = 'Running') AS running,
                  (SELECT count(*) FROM \${schema}.flow_instance_permits) AS held,
                  (SELECT active FROM \${schema}.flow_limits) AS active`,
        );
        seen.push(Number(row.running));
        assert.equal(Number(row.active), Number(row.held), 'flow_limits.active equals the permit rows');
        await sleep(20);
      }
    })();
    survivor = new Runtime(await own.openProvider(), { logLevel: 'warn' });
    survivor.registerActivity('Guarded', async () => 1);
    survivor.registerOrchestration('GuardedJob', function* (ctx) {
      return (yield ctx.scheduleActivity('Guarded', 0)) as number;
    });
    await survivor.start();
    for (const id of ids) assert.equal((await client.waitForOrchestration(id, 30_000)).status, 'Completed');
    sampling = false;
    await sampler;
    console.log(`after SIGKILL: at most ${Math.max(...seen)} running instances of ${LIMIT}`);
    assert.ok(Math.max(...seen) <= LIMIT, `the store showed ${Math.max(...seen)} running instances`);
    const [limit] = await client.getFlowLimits();
    assert.deepEqual([limit.active, limit.parked], [0, 0]);
  } finally {
    child.kill('SIGKILL');
    await survivor?.shutdown(0);
    await own.close();
  }
});
