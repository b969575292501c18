/**
 * Process crashes: CHAOS_ORCHESTRATIONS (default 2000) orchestrations of the mixed workload run on
 * CHAOS_WORKERS (default 4) worker processes sharing one schema, while the driver SIGKILLs a random
 * worker every 500-1500 ms (CHAOS_KILL_EVERY_MS) and starts a replacement. The workers print what
 * they have in flight, so the driver counts kills that landed mid-activity and mid-turn (between a
 * turn's fetch and its ack). After the last kill the survivors must finish everything: every
 * orchestration Completed with exactly its expected output, every stored history sound (see
 * invariants.ts), and both queues empty.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { DATABASE_URL, durox, sleep, type Client, type Provider } from '../e2e/helpers';
import { instanceProblems } from './invariants';
import { WorkerPool } from './worker-pool';
import { expectedOutput, inputOf, instanceIdOf, messagesFor, shapeOf } from './workload';
import { dropTestSchema } from '../helpers/postgres-harness';

const ORCHESTRATIONS = Number(process.env.CHAOS_ORCHESTRATIONS ?? 2000);
const WORKERS = Number(process.env.CHAOS_WORKERS ?? 4);
/** Kills stop once this share of orchestrations completed, so the run ends with a quiet drain. */
const KILL_UNTIL_SHARE = 0.97;
const RUN_BUDGET_MS = 6 * 60_000;
/** Mean pause between two kills. */
const KILL_EVERY_MS = Number(process.env.CHAOS_KILL_EVERY_MS ?? 1000);

let provider: Provider;
let client: Client;
let pool: WorkerPool;
const schema = `chaos_crash_${randomBytes(4).toString('hex')}`;
const run = `c${randomBytes(3).toString('hex')}`;

before(async () => {
  provider = await durox.PostgresProvider.connectWithSchema(DATABASE_URL, schema);
  client = new durox.Client(provider);
  pool = new WorkerPool(DATABASE_URL, schema);
  await pool.start(WORKERS);
});

after(async () => {
  await pool?.stop();
  await provider?.close();
  await dropTestSchema(schema);
});

async function startAll(): Promise<void> {
  const numbers = Array.from({ length: ORCHESTRATIONS }, (_, n) => n);
  const lanes = Array.from({ length: 16 }, async (_, lane) => {
    for (let n = lane; n < numbers.length; n += 16) {
      const id = instanceIdOf(run, n);
      await client.startOrchestration(id, shapeOf(n), inputOf(n));
      for (const message of messagesFor(n)) await client.enqueueEvent(id, 'mail', message);
    }
  });
  await Promise.all(lanes);
}

/** The driver's own instances (sub-orchestrations get ids of their own, not counted here). */
const topLevel = new Set(Array.from({ length: ORCHESTRATIONS }, (_, n) => instanceIdOf(run, n)));

async function completedCount(): Promise<number> {
  const ids = await provider.listInstances({ status: 'Completed' });
  return ids.filter((id) => topLevel.has(id)).length;
}

test(
  `${ORCHESTRATIONS} orchestrations survive SIGKILLed worker processes with exact outputs and sound histories`,
  { timeout: RUN_BUDGET_MS + 120_000 },
  async () => {
    const startedAt = Date.now();
    const starting = startAll();
    let kills = 0;
    let lastKillAt = startedAt;
    const deadline = startedAt + RUN_BUDGET_MS;
    while (Date.now() < deadline) {
      await sleep(KILL_EVERY_MS / 2 + Math.floor(Math.random() * KILL_EVERY_MS));
      const done = await completedCount();
      if (done >= ORCHESTRATIONS) break;
      if (done < ORCHESTRATIONS * KILL_UNTIL_SHARE) {
        await pool.killRandom();
        kills += 1;
        lastKillAt = Date.now();
      }
    }
    await starting;
    const elapsedMs = Date.now() - startedAt;
    // Liveness after faults: from the last kill until the last orchestration completed (the loop
    // looks about once a second). Locks of killed workers expire after at most 5 s (turns) or 2 s
    // (activities, workerLockTimeoutMs above); the safety fetch finds them within 10 s more.
    const lastFaultToLastCompletionMs = Date.now() - lastKillAt;
    assert.deepEqual(pool.unexpectedExits, [], 'no worker died on its own');

    let wrong = 0;
    let lost = 0;
    const problems: string[] = [];
    for (let n = 0; n < ORCHESTRATIONS; n += 1) {
      const id = instanceIdOf(run, n);
      const status = await provider.getInstanceStatus(id);
      if (status.status !== 'Completed') {
        lost += 1;
        problems.push(`${id}: ${status.status} ${status.error ?? ''}`);
        continue;
      }
      if (JSON.parse(status.output ?? 'null') !== expectedOutput(n)) {
        wrong += 1;
        problems.push(`${id}: output ${status.output}, expected ${expectedOutput(n)}`);
      }
    }
    const everyInstance = (await provider.listInstances()).filter((id) => !id.startsWith('chaos-'));
    let duplicated = 0;
    for (const id of everyInstance) {
      const found = await instanceProblems(provider, id, true);
      duplicated += found.filter((p) => p.includes('answered twice')).length;
      problems.push(...found);
    }
    const depths = await provider.getQueueDepths();
    const withActivity = pool.kills.filter((k) => k.activitiesInFlight > 0).length;
    const midTurn = pool.kills.filter((k) => k.turnsInFlight > 0).length;
    const figures = {
      orchestrations: ORCHESTRATIONS,
      instancesChecked: everyInstance.length,
      workers: WORKERS,
      processesKilled: kills,
      killsWithActivityInFlight: withActivity,
      killsMidTurn: midTurn,
      lost,
      wrongOutput: wrong,
      duplicated,
      invariantViolations: problems.length,
      elapsedMs,
      lastFaultToLastCompletionMs,
      queues: depths,
    };
    console.log(`CHAOS process-crash ${JSON.stringify(figures)}`);
    assert.deepEqual(problems.slice(0, 20), [], 'every orchestration completes exactly once with a sound history');
    assert.equal(lost, 0);
    assert.equal(duplicated, 0);
    assert.ok(
      lastFaultToLastCompletionMs < 30_000,
      `everything completed within a few lock timeouts of the last kill (${lastFaultToLastCompletionMs} ms)`,
    );
    assert.ok(kills >= 10, `the run was long enough to kill workers repeatedly (killed ${kills})`);
    assert.ok(withActivity > 0, 'some kills landed while an activity was running');
    assert.ok(midTurn > 0, 'some kills landed between the fetch and the ack of a turn');
    assert.equal(depths.orchestratorQueue, 0);
    assert.equal(depths.workerQueue, 0);
  },
);
