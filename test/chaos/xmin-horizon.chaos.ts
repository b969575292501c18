/**
 * A long idle-in-transaction session elsewhere holds back the xmin horizon for a minute while a
 * steady load runs: measures how fetch latency, end-to-end latency and queue-table bloat degrade
 * while it is held and recover once it ends. Results are printed (`CHAOS xmin-horizon ...`) and
 * summarised in test/chaos/README.md.
 *
 * Runs on a PRIVATE embedded PostgreSQL 18 so that holding the horizon does not bloat the shared
 * service other people's tests use, and so the figures are not disturbed by their load. Autovacuum
 * naptime is lowered to 5 s there (ALTER SYSTEM) so recovery is visible within the test.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { Client as PgClient } from 'pg';
import type { Provider as ProviderContract } from '../../src/provider/contract';
import { durox, sleep, type Provider } from '../e2e/helpers';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../helpers/embedded-postgres';

const BASELINE_MS = 20_000;
const HOLD_MS = Number(process.env.CHAOS_XMIN_HOLD_MS ?? 60_000);
const RECOVERY_MS = 40_000;
const SAMPLE_MS = 5_000;
const QUEUE_TABLES = ['orchestrator_queue', 'worker_queue', 'instance_locks'];

const schema = `chaos_xmin_${randomBytes(4).toString('hex')}`;
let server: EmbeddedPostgres;
let admin: PgClient;
let provider: Provider;

type Phase = 'baseline' | 'held' | 'recovery';
interface Sample {
  phase: Phase;
  atS: number;
  fetchP50Ms: number;
  fetchP95Ms: number;
  endToEndP50Ms: number;
  completed: number;
  deadTuples: number;
  queueTablesKiB: number;
  horizonAgeXids: number | null;
}

before(async () => {
  server = await startEmbeddedPostgres();
  admin = new PgClient({ connectionString: server.url });
  await admin.connect();
  await admin.query("ALTER SYSTEM SET autovacuum_naptime = '5s'");
  await admin.query('SELECT pg_reload_conf()');
  provider = await durox.PostgresProvider.connectWithSchema(server.url, schema);
});

after(async () => {
  await provider?.close();
  await admin?.end();
  await server?.stop();
});

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] * 10) / 10;
}

/** The provider with its two fetch operations timed (the runtime sees no difference). */
function timed(target: Provider, sink: number[]): ProviderContract {
  const timedCall =
    (name: 'fetchOrchestrationItem' | 'fetchWorkItem') =>
    async (...args: unknown[]): Promise<unknown> => {
      const started = process.hrtime.bigint();
      try {
        return await (target[name] as (...a: unknown[]) => Promise<unknown>).apply(target, args);
      } finally {
        sink.push(Number(process.hrtime.bigint() - started) / 1e6);
      }
    };
  const fetchOrchestrationItem = timedCall('fetchOrchestrationItem');
  const fetchWorkItem = timedCall('fetchWorkItem');
  return new Proxy(target, {
    get(object, key) {
      if (key === 'fetchOrchestrationItem') return fetchOrchestrationItem;
      if (key === 'fetchWorkItem') return fetchWorkItem;
      const value = Reflect.get(object, key, object) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(object) : value;
    },
  });
}

async function bloat(): Promise<{ deadTuples: number; kib: number }> {
  const rows = await admin.query(
    `SELECT COALESCE(sum(n_dead_tup), 0)::bigint AS dead,
            COALESCE(sum(pg_total_relation_size(relid)), 0)::bigint AS bytes
     FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = ANY($2)`,
    [schema, QUEUE_TABLES],
  );
  return { deadTuples: Number(rows.rows[0].dead), kib: Math.round(Number(rows.rows[0].bytes) / 1024) };
}

async function horizonAge(): Promise<number | null> {
  const rows = await admin.query(
    "SELECT max(age(backend_xmin))::int AS age FROM pg_stat_activity WHERE state = 'idle in transaction'",
  );
  return rows.rows[0].age === null ? null : Number(rows.rows[0].age);
}

test(
  'an idle-in-transaction session holding the xmin horizon: degradation and recovery are measured',
  { timeout: 300_000 },
  async () => {
    const fetchTimes: number[] = [];
    const endToEnd: number[] = [];
    const runtime = new durox.Runtime(timed(provider, fetchTimes), { dispatcherPollIntervalMs: 50, logLevel: 'error' });
    runtime.registerActivity('Add', async (_ctx, input: { x: number; by: number }) => input.x + input.by);
    runtime.registerOrchestration('Chain', function* (ctx, n: number) {
      let x = n;
      for (let by = 1; by <= 3; by += 1) x = yield ctx.scheduleActivity('Add', { x, by });
      return x;
    });
    await runtime.start();
    const client = new durox.Client(provider);
    let stopLoad = false;
    let started = 0;
    let completed = 0;
    const pending: Array<Promise<void>> = [];
    const load = (async () => {
      while (!stopLoad) {
        for (let i = 0; i < 2; i += 1) {
          const id = `xmin-${(started += 1)}`;
          const t0 = Date.now();
          await client.startOrchestration(id, 'Chain', started);
          pending.push(
            client.waitForOrchestration(id, 120_000).then((status) => {
              assert.equal(status.status, 'Completed');
              endToEnd.push(Date.now() - t0);
              completed += 1;
            }),
          );
        }
        await sleep(100);
      }
    })();

    const samples: Sample[] = [];
    const t0 = Date.now();
    const sampleFor = async (phase: Phase, durationMs: number): Promise<void> => {
      const end = Date.now() + durationMs;
      while (Date.now() < end) {
        fetchTimes.length = 0;
        endToEnd.length = 0;
        await sleep(SAMPLE_MS);
        const { deadTuples, kib } = await bloat();
        samples.push({
          phase,
          atS: Math.round((Date.now() - t0) / 1000),
          fetchP50Ms: percentile(fetchTimes, 50),
          fetchP95Ms: percentile(fetchTimes, 95),
          endToEndP50Ms: percentile(endToEnd, 50),
          completed,
          deadTuples,
          queueTablesKiB: kib,
          horizonAgeXids: await horizonAge(),
        });
      }
    };

    const holder = new PgClient({ connectionString: server.url, application_name: 'durox_xmin_holder' });
    await holder.connect();
    try {
      await sampleFor('baseline', BASELINE_MS);
      await holder.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await holder.query(`SELECT count(*) FROM "${schema}".instances`);
      await sampleFor('held', HOLD_MS);
      await holder.query('COMMIT');
      await sampleFor('recovery', RECOVERY_MS);
    } finally {
      await holder.end().catch(() => undefined);
      stopLoad = true;
      await load;
      await Promise.all(pending);
      await runtime.shutdown(1000);
    }

    const summary = (phase: Phase) => {
      const of = samples.filter((s) => s.phase === phase);
      return {
        fetchP50Ms: percentile(
          of.map((s) => s.fetchP50Ms),
          50,
        ),
        fetchP95Ms: Math.max(...of.map((s) => s.fetchP95Ms)),
        endToEndP50Ms: percentile(
          of.map((s) => s.endToEndP50Ms),
          50,
        ),
        maxDeadTuples: Math.max(...of.map((s) => s.deadTuples)),
        lastDeadTuples: of[of.length - 1].deadTuples,
        maxQueueTablesKiB: Math.max(...of.map((s) => s.queueTablesKiB)),
        lastQueueTablesKiB: of[of.length - 1].queueTablesKiB,
        maxHorizonAgeXids: Math.max(0, ...of.map((s) => s.horizonAgeXids ?? 0)),
      };
    };
    const figures = {
      holdMs: HOLD_MS,
      orchestrations: started,
      completed,
      baseline: summary('baseline'),
      held: summary('held'),
      recovery: summary('recovery'),
    };
    console.log(`CHAOS xmin-horizon ${JSON.stringify(figures)}`);
    for (const sample of samples) console.log(`CHAOS xmin-sample ${JSON.stringify(sample)}`);

    assert.equal(completed, started, 'every orchestration completed, horizon held or not');
    assert.ok(
      figures.held.maxHorizonAgeXids > 100,
      'the session really held the horizon back while transactions went on',
    );
    assert.ok(
      figures.held.maxDeadTuples > figures.baseline.maxDeadTuples * 2,
      'dead queue rows pile up while the horizon is held',
    );
    assert.ok(
      figures.recovery.lastDeadTuples < figures.held.maxDeadTuples / 2,
      'vacuum removes them once the session ends',
    );
  },
);
