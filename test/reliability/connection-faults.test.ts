/**
 * Lost connections: connections cut through a TCP proxy, a full outage (the proxy refuses new
 * connections for a while) and backends killed with pg_terminate_backend (only this test's own,
 * found by application_name). The runtime reconnects with backoff, logs an outage once rather than
 * once per failed poll, re-establishes its LISTEN connection and completes every orchestration.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Client as PgClient } from 'pg';
import { DATABASE_URL, durox, eventually, sleep, type Provider } from '../e2e/helpers';
import { instanceProblems } from '../chaos/invariants';
import { expectedOutput, inputOf, messagesFor, registerWorkload, shapeOf } from '../chaos/workload';
import { adminConnection, freshSchema, urlWithApplicationName } from './support';
import { TcpProxy } from './tcp-proxy';
import { dropTestSchema } from '../helpers/postgres-harness';

const logFile = join(tmpdir(), `durox-connection-faults-${process.pid}-${randomBytes(3).toString('hex')}.log`);
durox.initTracing({ logFile, logLevel: 'warn', logFormat: 'compact' });

const schema = freshSchema('rel_conn');
const ORCHESTRATIONS = 120;
let direct: Provider;
let admin: PgClient;

before(async () => {
  direct = await durox.PostgresProvider.connectWithSchema(DATABASE_URL, schema);
  admin = await adminConnection();
});

after(async () => {
  await direct.close();
  await admin.end();
  await dropTestSchema(schema);
  rmSync(logFile, { force: true });
});

function logText(): string {
  return readFileSync(logFile, 'utf8');
}

/** Starts the workload's orchestrations `from`..`from+count-1` through the direct provider. */
async function startWorkload(run: string, count: number): Promise<string[]> {
  const client = new durox.Client(direct);
  const ids: string[] = [];
  for (let n = 0; n < count; n += 1) {
    const id = `${run}-${n}`;
    await client.startOrchestration(id, shapeOf(n), inputOf(n));
    for (const message of messagesFor(n)) await client.enqueueEvent(id, 'mail', message);
    ids.push(id);
  }
  return ids;
}

async function expectAllCompleted(ids: string[], timeoutMs: number): Promise<void> {
  await eventually(
    async () => {
      const done = new Set(await direct.listInstances({ status: 'Completed' }));
      return ids.every((id) => done.has(id)) ? true : undefined;
    },
    timeoutMs,
    'every orchestration to complete',
  );
  for (const [n, id] of ids.entries()) {
    const status = await direct.getInstanceStatus(id);
    assert.equal(JSON.parse(status.output ?? 'null'), expectedOutput(n), id);
    assert.deepEqual(await instanceProblems(direct, id), []);
  }
}

/** Backend pids of `applicationName` whose last statement was the LISTEN set-up. */
async function listenerPids(applicationName: string): Promise<number[]> {
  const rows = await admin.query(
    "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query LIKE '%listen_for_wakeups%'",
    [applicationName],
  );
  return rows.rows.map((row: { pid: number }) => row.pid);
}

test(
  'connections cut through a TCP proxy and a full outage: reconnect, one log line per outage, everything completes',
  { timeout: 120_000 },
  async () => {
    const proxy = await TcpProxy.start(DATABASE_URL);
    const applicationName = `durox_rel_proxy_${randomBytes(3).toString('hex')}`;
    const provider = await durox.PostgresProvider.connectWithSchema(
      urlWithApplicationName(proxy.urlFor(DATABASE_URL), applicationName),
      schema,
    );
    const runtime = new durox.Runtime(provider, {
      dispatcherPollIntervalMs: 20,
      workerLockTimeoutMs: 2000,
      logLevel: 'warn',
    });
    registerWorkload(runtime);
    await runtime.start();
    try {
      const ids = await startWorkload('proxy', ORCHESTRATIONS);
      let cut = 0;
      for (let i = 0; i < 3; i += 1) {
        await sleep(400);
        cut += proxy.cutAll();
      }
      assert.ok(cut > 0, 'connections were open and got cut');
      // Let the blips of the cuts settle (RECOVERY_SETTLE_MS) so the outage below is a new one.
      await sleep(3000);

      const before = logText().length;
      await proxy.refuse();
      // Work arrives (through the direct connection) while the runtime's database is unreachable.
      const during = await startWorkload('outage', 60);
      await sleep(3000);
      await proxy.accept();
      await expectAllCompleted(ids, 60_000);
      await expectAllCompleted(during, 60_000);
      await eventually(
        async () =>
          /fetch_orchestration_item works again after \d+ failed attempt\(s\)/.test(logText().slice(before))
            ? true
            : undefined,
        10_000,
        'the recovery to be logged',
      );
      const outage = logText().slice(before);
      const failedLines = outage
        .split('\n')
        .filter((line) => /fetch_orchestration_item failed; retrying with backoff/.test(line));
      assert.equal(failedLines.length, 1, `the outage is logged once for the orchestration dispatcher:\n${outage}`);
      assert.match(outage, /fetch_orchestration_item works again after \d+ failed attempt\(s\)/);
      assert.ok(
        outage.split('\n').filter((line) => /fetch_work_item failed; retrying with backoff/.test(line)).length <= 1,
        'the outage is logged once for the activity workers',
      );
      await eventually(
        async () => ((await listenerPids(applicationName)).length > 0 ? true : undefined),
        15_000,
        'LISTEN to be re-established',
      );
    } finally {
      await runtime.shutdown(100);
      await provider.close();
      await proxy.close();
    }
  },
);

test(
  'backends killed with pg_terminate_backend mid-run: the runtime reconnects, re-LISTENs and completes everything',
  { timeout: 120_000 },
  async () => {
    const applicationName = `durox_rel_kill_${randomBytes(3).toString('hex')}`;
    const provider = await durox.PostgresProvider.connectWithSchema(
      urlWithApplicationName(DATABASE_URL, applicationName),
      schema,
    );
    const runtime = new durox.Runtime(provider, {
      dispatcherPollIntervalMs: 20,
      workerLockTimeoutMs: 2000,
      logLevel: 'warn',
    });
    registerWorkload(runtime);
    await runtime.start();
    try {
      const ids = await startWorkload('terminate', ORCHESTRATIONS);
      let terminated = 0;
      const killedListeners = new Set<number>();
      for (let i = 0; i < 4; i += 1) {
        await sleep(500);
        for (const pid of await listenerPids(applicationName)) killedListeners.add(pid);
        // Only this test's own backends: the shared server runs other people's tests too.
        const rows = await admin.query(
          'SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity WHERE ' +
            'application_name = $1 AND pid <> pg_backend_pid()',
          [applicationName],
        );
        terminated += rows.rows.filter((row: { done: boolean }) => row.done).length;
      }
      assert.ok(terminated >= 4, `backends were terminated (${terminated})`);
      assert.ok(killedListeners.size > 0, 'the LISTEN connection was among them');
      await expectAllCompleted(ids, 60_000);
      const relistened = await eventually(
        async () => {
          const pids = (await listenerPids(applicationName)).filter((pid) => !killedListeners.has(pid));
          return pids.length > 0 ? pids : undefined;
        },
        15_000,
        'a new LISTEN connection',
      );
      assert.ok(relistened.length >= 1);
    } finally {
      await runtime.shutdown(100);
      await provider.close();
    }
  },
);
