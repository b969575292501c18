/**
 * Database restarts: the mixed workload runs on worker processes while PostgreSQL is restarted
 * (fast shutdown, which terminates every connection, then start) three times. The runtime
 * reconnects with backoff, logs each outage once, re-establishes LISTEN and completes everything.
 *
 * The server is a PRIVATE embedded PostgreSQL 18 started for this test (test/helpers/
 * embedded-postgres.ts), not the shared PostgreSQL 15 service: restarting the shared service
 * (`pg_ctlcluster 15 main restart`) would break the test runs of everyone else on this machine.
 * `restart()` does what `pg_ctlcluster ... restart` does: a fast shutdown, then a start on the
 * same data directory and port.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Client as PgClient } from 'pg';
import { durox, eventually, sleep, type Provider } from '../e2e/helpers';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../helpers/embedded-postgres';
import { instanceProblems } from './invariants';
import { expectedOutput, inputOf, messagesFor, registerWorkload, shapeOf } from './workload';

const logFile = join(tmpdir(), `durox-db-restart-${process.pid}-${randomBytes(3).toString('hex')}.log`);
durox.initTracing({ logFile, logLevel: 'warn', logFormat: 'compact' });

const ORCHESTRATIONS = Number(process.env.CHAOS_RESTART_ORCHESTRATIONS ?? 400);
const RESTARTS = 3;
const schema = `chaos_restart_${randomBytes(4).toString('hex')}`;
const applicationName = `durox_chaos_restart_${randomBytes(3).toString('hex')}`;
let server: EmbeddedPostgres;
let direct: Provider;

before(async () => {
  server = await startEmbeddedPostgres();
  direct = await durox.PostgresProvider.connectWithSchema(server.url, schema);
});

after(async () => {
  await direct?.close();
  await server?.stop();
  rmSync(logFile, { force: true });
});

async function listenerCount(): Promise<number> {
  const admin = new PgClient({ connectionString: server.url });
  await admin.connect();
  try {
    const rows = await admin.query(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 ' +
        "AND query LIKE '%listen_for_wakeups%'",
      [applicationName],
    );
    return rows.rows[0].n as number;
  } finally {
    await admin.end();
  }
}

test(
  `${ORCHESTRATIONS} orchestrations complete across ${RESTARTS} PostgreSQL restarts`,
  { timeout: 240_000 },
  async () => {
    const url = new URL(server.url);
    url.searchParams.set('application_name', applicationName);
    const provider = await durox.PostgresProvider.connectWithSchema(url.toString(), schema);
    const runtime = new durox.Runtime(provider, {
      dispatcherPollIntervalMs: 20,
      workerLockTimeoutMs: 2000,
      logLevel: 'warn',
    });
    registerWorkload(runtime);
    await runtime.start();
    const startedAt = Date.now();
    try {
      const client = new durox.Client(direct);
      const ids: string[] = [];
      for (let n = 0; n < ORCHESTRATIONS; n += 1) {
        const id = `restart-${n}`;
        await client.startOrchestration(id, shapeOf(n), inputOf(n));
        for (const message of messagesFor(n)) await client.enqueueEvent(id, 'mail', message);
        ids.push(id);
      }
      const restartTimes: number[] = [];
      for (let i = 0; i < RESTARTS; i += 1) {
        await sleep(1500);
        const t0 = Date.now();
        await server.restart();
        restartTimes.push(Date.now() - t0);
      }
      await eventually(
        async () => {
          const done = new Set(await direct.listInstances({ status: 'Completed' }));
          return ids.every((id) => done.has(id)) ? true : undefined;
        },
        120_000,
        'every orchestration to complete after the restarts',
      );
      const elapsedMs = Date.now() - startedAt;
      for (const [n, id] of ids.entries()) {
        const status = await direct.getInstanceStatus(id);
        assert.equal(JSON.parse(status.output ?? 'null'), expectedOutput(n), id);
      }
      let problems: string[] = [];
      for (const id of await direct.listInstances()) problems = problems.concat(await instanceProblems(direct, id));
      assert.deepEqual(problems, []);
      // A recovery is reported once it has held for RECOVERY_SETTLE_MS (2 s).
      await sleep(2500);
      const log = readFileSync(logFile, 'utf8');
      const outages = log
        .split('\n')
        .filter((line) => /fetch_orchestration_item failed; retrying with backoff/.test(line)).length;
      const recoveries = log.split('\n').filter((line) => /fetch_orchestration_item works again/.test(line)).length;
      console.log(
        `CHAOS db-restart ` +
          `${JSON.stringify({ orchestrations: ORCHESTRATIONS, restartsSurvived: RESTARTS, restartMs: restartTimes, outageLogLines: outages, recoveryLogLines: recoveries, elapsedMs, lost: 0, duplicated: 0 })}`,
      );
      assert.ok(
        outages >= 1 && outages <= RESTARTS,
        `each restart is logged at most once by the dispatcher (${outages} lines):\n${log}`,
      );
      assert.equal(recoveries, outages, 'every logged outage is followed by a recovery line');
      await eventually(
        async () => ((await listenerCount()) > 0 ? true : undefined),
        20_000,
        'LISTEN to be re-established',
      );
      const depths = await direct.getQueueDepths();
      assert.equal(depths.orchestratorQueue + depths.workerQueue, 0);
    } finally {
      await runtime.shutdown(100);
      await provider.close();
    }
  },
);
