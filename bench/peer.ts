/**
 * The peer scenario (`npm run bench -- --peer dbos`): the same three workloads on Durox
 * (PostgresProvider, Runtime and Client with their defaults) and on DBOS Transact, side by side in
 * one run, each system on a database of its own on the same PostgreSQL server (created and dropped
 * here), each (workload, round) on a fresh schema. Timed rounds connect directly. Then each system
 * runs each workload once more through a 0 ms latency proxy of its own, which counts round trips
 * at the wire, untimed: the proxy runs in this process, and the CPU it spends on every round trip
 * would slow the chattier system's own work. Only one system runs at a time, and the systems take
 * turns per round.
 */
import { performance } from 'node:perf_hooks';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, PostgresProvider, Runtime } from '../src/index';
import { PgExecutor } from '../src/postgres/pg-executor';
import { databaseBackendCpuSeconds, postgresCpuSeconds } from './db-cost';
import { LatencyProxy } from './latency-proxy';
import { dbosSystem, DBOS_RANGE, loadDbos } from './peers/dbos-workload';
import { percentile, providerCallCount } from './scenarios';

/** One system under test; `open` starts it on a fresh store, `close` stops it. */
export interface PeerSystem {
  name: string;
  /** Starts the system on a fresh store in the database at `url`. */
  open(url: string): Promise<void>;
  close(): Promise<void>;
  /** Starts one 1-activity orchestration and waits for its result. */
  oneActivity(i: number): Promise<void>;
  /** Starts `count` orchestrations of 5 sequential activities at once and waits for all. */
  sequential5(count: number): Promise<void>;
  /** One orchestration fanning out `width` activities and gathering them. */
  fanOut(width: number): Promise<void>;
  /** Store calls made so far (Durox: provider procedure calls), null where not countable. */
  calls(): number | null;
}

const round = (n: number, digits = 1): number => Math.round(n * 10 ** digits) / 10 ** digits;

function durox(): PeerSystem {
  let opened = 0;
  let state: { provider: PostgresProvider; runtime: Runtime; client: Client } | null = null;
  const live = (): NonNullable<typeof state> => {
    if (state === null) throw new Error('Durox peer system is not open');
    return state;
  };
  const run = async (ids: string[], name: string, input: (i: number) => number): Promise<void> => {
    const { client } = live();
    await Promise.all(ids.map((id, i) => client.startOrchestration(id, name, input(i))));
    const results = await Promise.all(ids.map((id) => client.waitForOrchestration(id, 600_000)));
    const failed = results.find((r) => r.status !== 'Completed');
    if (failed !== undefined) throw new Error(`a Durox orchestration ended ${failed.status}: ${failed.error ?? ''}`);
  };
  let seq = 0;
  return {
    name: 'Durox',
    async open(url) {
      opened += 1;
      const provider = await PostgresProvider.connectWithSchema(url, `durox_${process.pid}_${opened}`);
      const runtime = new Runtime(provider, { logLevel: 'warn' });
      runtime.registerActivity('Noop', (_ctx, input: unknown) => input);
      runtime.registerOrchestration('One', function* (ctx, input: number) {
        return (yield ctx.scheduleActivity('Noop', input)) as number;
      });
      runtime.registerOrchestration('Seq5', function* (ctx, input: number) {
        let value = input;
        for (let i = 0; i < 5; i += 1) value = (yield ctx.scheduleActivity('Noop', value)) as number;
        return value;
      });
      runtime.registerOrchestration('Fan', function* (ctx, width: number) {
        const results = (yield ctx.all(
          Array.from({ length: width }, (_, i) => ctx.scheduleActivity('Noop', i)),
        )) as unknown[];
        return results.length;
      });
      await runtime.start();
      state = { provider, runtime, client: new Client(provider) };
    },
    async close() {
      const { provider, runtime } = live();
      state = null;
      await runtime.shutdown(500);
      await provider.close();
    },
    oneActivity: (i) => run([`one-${(seq += 1)}`], 'One', () => i),
    sequential5: (count) =>
      run(
        Array.from({ length: count }, () => `seq5-${(seq += 1)}`),
        'Seq5',
        (i) => i,
      ),
    fanOut: (width) => run([`fan-${(seq += 1)}`], 'Fan', () => width),
    calls: () => providerCallCount(),
  };
}

interface Sample {
  orchestrations: number;
  /** Latency workload: one value per orchestration; others: one value per round (seconds). */
  times: number[];
  postgresCpuSeconds: number;
  backendCpuSeconds: number;
  wire: number;
  calls: number | null;
}

interface Contender {
  system: PeerSystem;
  /** The timed rounds' database URL: a direct connection. */
  directUrl: string;
  /** The counting round's: through `proxy`. */
  countedUrl: string;
  proxy: LatencyProxy;
  database: string;
}

/** The bench's administrative connection, and whether it may run CHECKPOINT. */
interface Admin {
  executor: PgExecutor;
  checkpoints: boolean;
}

/**
 * Whether this role may run CHECKPOINT (a superuser, or pg_checkpoint on PostgreSQL 15+): tried
 * once; refused for want of privilege, the bench goes on without.
 */
async function mayCheckpoint(executor: PgExecutor): Promise<boolean> {
  try {
    await executor.query('CHECKPOINT');
    return true;
  } catch (error) {
    if ((error as { code?: string }).code === '42501') return false;
    throw error;
  }
}

/**
 * Runs `measure` on the system freshly opened on `url` after `warmUp`, with its costs over the
 * measured part (round trips: those `c.proxy` saw, so 0 on the direct URL). When allowed, a
 * CHECKPOINT just before the measured part writes out the pages dirtied so far (by this system's
 * warm-up, or by the other system's last round), outside the window; one just after it, inside,
 * writes out the pages the measured part dirtied: the server's CPU of the window pays for
 * flushing its own pages and no one else's.
 */
async function measured(
  admin: Admin,
  c: Contender,
  url: string,
  warmUp: () => Promise<void>,
  measure: () => Promise<{ orchestrations: number; times: number[] }>,
): Promise<Sample> {
  await c.system.open(url);
  try {
    await warmUp();
    if (admin.checkpoints) await admin.executor.query('CHECKPOINT');
    const before = {
      pg: postgresCpuSeconds(),
      backend: await databaseBackendCpuSeconds(admin.executor, c.database),
      wire: c.proxy.roundTrips,
      calls: c.system.calls(),
    };
    const { orchestrations, times } = await measure();
    if (admin.checkpoints) await admin.executor.query('CHECKPOINT');
    // Read the backends' CPU while their connections are still open.
    const backend = (await databaseBackendCpuSeconds(admin.executor, c.database)) - before.backend;
    const calls = c.system.calls();
    return {
      orchestrations,
      times,
      postgresCpuSeconds: postgresCpuSeconds() - before.pg,
      backendCpuSeconds: backend,
      wire: c.proxy.roundTrips - before.wire,
      calls: calls === null || before.calls === null ? null : calls - before.calls,
    };
  } finally {
    await c.system.close();
  }
}

function add(a: Sample | undefined, b: Sample): Sample {
  if (a === undefined) return b;
  return {
    orchestrations: a.orchestrations + b.orchestrations,
    times: [...a.times, ...b.times],
    postgresCpuSeconds: a.postgresCpuSeconds + b.postgresCpuSeconds,
    backendCpuSeconds: a.backendCpuSeconds + b.backendCpuSeconds,
    wire: a.wire + b.wire,
    calls: a.calls === null || b.calls === null ? null : a.calls + b.calls,
  };
}

export interface PeerResult {
  title: string;
  versions: Record<string, string>;
  sizes: Record<string, number>;
  notes: string[];
  rows: Array<Record<string, string | number | null>>;
  raw: Record<string, Record<string, Omit<Sample, 'times'> & { timesMs: number[]; countedOrchestrations: number }>>;
}

async function createDatabase(admin: PgExecutor, name: string): Promise<void> {
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
}

function databaseUrl(base: string, database: string, port?: number): string {
  const url = new URL(base);
  url.pathname = `/${database}`;
  if (port !== undefined) {
    url.hostname = '127.0.0.1';
    url.port = String(port);
  }
  return url.toString();
}

export async function runPeer(options: { databaseUrl: string; quick: boolean }): Promise<PeerResult> {
  const sizes = options.quick
    ? {
        latencyRuns: 20,
        latencyRounds: 1,
        latencyWarmUp: 3,
        seq5: 40,
        seq5Rounds: 1,
        seq5WarmUp: 4,
        fanWidth: 100,
        fanRounds: 1,
        fanWarmUp: 1,
      }
    : {
        latencyRuns: 100,
        latencyRounds: 4,
        latencyWarmUp: 5,
        seq5: 40,
        seq5Rounds: 7,
        seq5WarmUp: 8,
        fanWidth: 100,
        fanRounds: 3,
        fanWarmUp: 2,
      };
  const dbos = loadDbos();
  const duroxVersion = (
    JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }
  ).version;
  const versions = {
    durox: duroxVersion,
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the version of the pg this process loaded
    duroxPg: (require('pg/package.json') as { version: string }).version,
    dbos: dbos.version,
    dbosPg: dbos.pgVersion,
    dbosRange: DBOS_RANGE,
    dbosInstalledAt: dbos.dir,
    dbosInstalledNow: String(dbos.installedNow),
    node: process.version,
  };
  process.stdout.write(
    `\npeer: Durox ${versions.durox} vs DBOS Transact ${versions.dbos} (from ` +
      `${dbos.dir}${dbos.installedNow ? ', installed now' : ''})\n`,
  );

  const adminExecutor = PgExecutor.fromUrl(options.databaseUrl, 1);
  const admin: Admin = { executor: adminExecutor, checkpoints: await mayCheckpoint(adminExecutor) };
  const server = new URL(options.databaseUrl);
  const databases = { durox: `durox_bench_${process.pid}`, dbos: `dbos_bench_${process.pid}` };
  const contenders: Contender[] = [];
  const raw: PeerResult['raw'] = {};
  const totals: Record<string, Record<string, Sample>> = { latency: {}, sequential5: {}, fanOut: {} };
  const counts: Record<string, Record<string, Sample>> = { latency: {}, sequential5: {}, fanOut: {} };
  try {
    for (const [key, database] of Object.entries(databases)) {
      await createDatabase(admin.executor, database);
      const proxy = await LatencyProxy.start(server.hostname, Number(server.port || 5432), 0);
      contenders.push({
        system: key === 'durox' ? durox() : dbosSystem(dbos),
        directUrl: databaseUrl(options.databaseUrl, database),
        countedUrl: databaseUrl(options.databaseUrl, database, proxy.port),
        proxy,
        database,
      });
    }
    /**
     * Each round runs every system once, timed, on a direct connection; the order flips every
     * round. Then one round per system through its proxy, for the round trips.
     */
    const rounds = async (
      workload: string,
      count: number,
      one: (c: Contender, url: string) => Promise<Sample>,
    ): Promise<void> => {
      for (let r = 0; r < count; r += 1) {
        for (const c of r % 2 === 0 ? contenders : [...contenders].reverse()) {
          process.stdout.write(`peer ${workload}: ${c.system.name}, round ${r + 1}/${count}\n`);
          totals[workload][c.system.name] = add(totals[workload][c.system.name], await one(c, c.directUrl));
        }
      }
      for (const c of contenders) {
        process.stdout.write(`peer ${workload}: ${c.system.name}, counting round trips\n`);
        counts[workload][c.system.name] = await one(c, c.countedUrl);
      }
    };
    await rounds('latency', sizes.latencyRounds, (c, url) =>
      measured(
        admin,
        c,
        url,
        async () => {
          for (let i = 0; i < sizes.latencyWarmUp; i += 1) await c.system.oneActivity(i);
        },
        async () => {
          const times: number[] = [];
          for (let i = 0; i < sizes.latencyRuns; i += 1) {
            const started = performance.now();
            await c.system.oneActivity(i);
            times.push(performance.now() - started);
          }
          return { orchestrations: sizes.latencyRuns, times };
        },
      ),
    );
    await rounds('sequential5', sizes.seq5Rounds, (c, url) =>
      measured(
        admin,
        c,
        url,
        () => c.system.sequential5(sizes.seq5WarmUp),
        async () => {
          const started = performance.now();
          await c.system.sequential5(sizes.seq5);
          return { orchestrations: sizes.seq5, times: [(performance.now() - started) / 1000] };
        },
      ),
    );
    await rounds('fanOut', sizes.fanRounds, (c, url) =>
      measured(
        admin,
        c,
        url,
        async () => {
          for (let i = 0; i < sizes.fanWarmUp; i += 1) await c.system.fanOut(sizes.fanWidth);
        },
        async () => {
          const started = performance.now();
          await c.system.fanOut(sizes.fanWidth);
          return { orchestrations: 1, times: [(performance.now() - started) / 1000] };
        },
      ),
    );
  } finally {
    for (const c of contenders) await c.proxy.close();
    for (const database of Object.values(databases))
      await admin.executor.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => undefined);
    await admin.executor.close();
  }

  const rows: PeerResult['rows'] = [];
  const line = (
    workload: string,
    metric: string,
    value: (s: Sample) => number | null,
    digits = 1,
    from: typeof totals = totals,
  ): void => {
    const d = from[workload].Durox;
    const b = from[workload].DBOS;
    const dv = d === undefined ? null : value(d);
    const bv = b === undefined ? null : value(b);
    rows.push({
      workload,
      metric,
      Durox: dv === null ? null : round(dv, digits),
      DBOS: bv === null ? null : round(bv, digits),
      'Durox/DBOS': dv === null || bv === null || bv === 0 ? null : round(dv / bv, 2),
    });
  };
  const perOrchestration =
    (n: (s: Sample) => number | null, digits = 2): ((s: Sample) => number | null) =>
    (s) => {
      const v = n(s);
      return v === null ? null : round(v / s.orchestrations, digits);
    };
  const costLines = (workload: string): void => {
    line(
      workload,
      'PostgreSQL CPU ms / orchestration (all server processes)',
      perOrchestration((s) => s.postgresCpuSeconds * 1000),
      2,
    );
    line(
      workload,
      "  of which this system's backends",
      perOrchestration((s) => s.backendCpuSeconds * 1000),
      2,
    );
    line(
      workload,
      'round trips / orchestration (wire, 0 ms proxy, counting round)',
      perOrchestration((s) => s.wire),
      2,
      counts,
    );
    line(
      workload,
      'store calls / orchestration (Durox provider calls, counting round)',
      perOrchestration((s) => s.calls),
      2,
      counts,
    );
  };
  const oneLabel = `1 activity x ${sizes.latencyRuns * sizes.latencyRounds}`;
  const seqLabel = `${sizes.seq5} x 5 sequential`;
  const fanLabel = `fan-out ${sizes.fanWidth}`;
  const relabel = (from: number, label: string): void => {
    for (const row of rows.slice(from)) row.workload = label;
  };
  let mark = rows.length;
  line('latency', 'p50 ms, start to result', (s) => percentile(s.times, 50));
  line('latency', 'p95 ms, start to result', (s) => percentile(s.times, 95));
  costLines('latency');
  relabel(mark, oneLabel);
  mark = rows.length;
  line('sequential5', 'orchestrations/s (higher is better)', (s) => sizes.seq5 / percentile(s.times, 50));
  costLines('sequential5');
  relabel(mark, seqLabel);
  mark = rows.length;
  line('fanOut', 'ms, start to result', (s) => percentile(s.times, 50) * 1000);
  costLines('fanOut');
  relabel(mark, fanLabel);

  for (const [workload, bySystem] of Object.entries(totals)) {
    raw[workload] = {};
    for (const [system, s] of Object.entries(bySystem)) {
      const { times, ...rest } = s;
      const counted = counts[workload][system];
      raw[workload][system] = {
        ...rest,
        wire: counted?.wire ?? 0,
        calls: counted?.calls ?? null,
        countedOrchestrations: counted?.orchestrations ?? 0,
        timesMs: times.map((t) => round(workload === 'latency' ? t : t * 1000, 1)),
      };
    }
  }
  return {
    title:
      `peer: Durox ${versions.durox} vs DBOS Transact ${versions.dbos}, same ` +
      `PostgreSQL, defaults, direct connections; round trips counted on one more round ` +
      `through a 0 ms proxy (ratio Durox/DBOS: below 1 is better for Durox except orchestrations/s)`,
    versions,
    sizes,
    notes: [
      'Each system has a database of its own on the same server (created and dropped ' +
        'by the bench) and a fresh schema per round; only one system runs at a time, ' +
        'and the order flips every round. Timed rounds connect directly.',
      'Warm-up runs on the same store before each measurement are not measured.',
      admin.checkpoints
        ? 'A CHECKPOINT runs just before each measured window (after the warm-up, not measured) and ' +
          "one at its end (measured, after the timed part): a window's PostgreSQL CPU pays for " +
          "writing out the pages it dirtied, and for none dirtied before it (the other system's included)."
        : 'No CHECKPOINT before the measured windows (this role may not run one): a window may ' +
          "pay for writing out pages dirtied before it, the other system's included.",
      'PostgreSQL CPU: all postgres processes on the machine over the measured ' +
        'window (includes WAL writer etc. and anything else using the server); "of ' +
        "which this system's backends\": the backends connected to that system's " +
        'database.',
      'Round trips at the wire: simple queries + extended-protocol Syncs a 0 ms proxy ' +
        "saw on one more, untimed round per workload and system (its own proxy), both systems' " +
        'pools and LISTEN connections included. The proxy runs in the bench process: timed ' +
        "through it, the chattier system would also pay the proxy's CPU for each of its round trips.",
      'sequential5 and fan-out: the median over rounds; latency: percentiles over all runs of all rounds.',
      'DBOS runs a workflow started with DBOS.startWorkflow in the starting process ' +
        '(no queue); Durox starts through the Client and its Runtime fetches the work ' +
        'from the store.',
    ],
    rows,
    raw,
  };
}
