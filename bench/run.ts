/**
 * `npm run bench [-- --quick]`: the Durox benchmark suite.
 *
 * Targets: the PostgreSQL server at DATABASE_URL (default postgres://root@127.0.0.1:5432/test),
 * embedded PGlite (in memory), and the server through a latency proxy started here that delays
 * every chunk by 0, 5 or 35 ms each way (RTT + 0, 10, 70 ms). The 0 ms proxy exists to count round
 * trips at the wire. Prints one table per scenario and writes bench/results/<timestamp>[-quick].json.
 * `--quick` runs small sizes in under a minute.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { cpus, loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { Client, PGliteProvider, PostgresProvider, safetyFetchHits, type RuntimeOptions } from '../src/index';
import { PgExecutor } from '../src/postgres/pg-executor';
import { quoteSchemaName } from '../src/store/schema-name';
import { asyncReplay } from './async-replay';
import {
  functionTrackingAllowed,
  postgresCpuSeconds,
  procedureCost,
  readFunctionStats,
  subtractStats,
  withFunctionTracking,
  type ProcedureCost,
} from './db-cost';
import { LatencyProxy } from './latency-proxy';
import { runPeer } from './peer';
import * as scenarios from './scenarios';
import type { Target } from './scenarios';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/test';
const QUICK = process.argv.includes('--quick');
/** `--only=latency,backlog` runs a subset (scenario keys as in the results JSON). */
const ONLY =
  process.argv
    .find((a) => a.startsWith('--only='))
    ?.slice('--only='.length)
    .split(',') ?? null;
/** `--peer dbos` (or `--peer=dbos`) adds the side-by-side peer scenario (key `peer`). */
const PEER = ((): string | null => {
  const index = process.argv.indexOf('--peer');
  if (index >= 0) return process.argv[index + 1] ?? 'dbos';
  return process.argv.find((a) => a.startsWith('--peer='))?.slice('--peer='.length) ?? null;
})();
/** The peer scenario runs only when asked for (`--peer`, or `--only=peer`, which runs it alone). */
const selected = (key: string): boolean =>
  key === 'peer' ? PEER !== null || (ONLY?.includes('peer') ?? false) : ONLY === null || ONLY.includes(key);
/** `--no-function-stats` leaves `track_functions` off (no procedure columns). */
const FUNCTION_STATS = !process.argv.includes('--no-function-stats');
/**
 * The URL the bench's Durox stores connect with: `track_functions = all` for its own sessions
 * when the server allows it (decided in main), so `pg_stat_user_functions` counts the procedures.
 */
let storeUrl = DATABASE_URL;

/** Runtime options of every target: the documented defaults. */
const DEFAULT_OPTIONS: RuntimeOptions = {};

let schemaCounter = 0;
function newSchema(): string {
  schemaCounter += 1;
  return `bench_${process.pid}_${schemaCounter}`;
}

/** Drops a bench schema (bench-only cleanup of data it created, on a validated name). */
async function dropSchema(schema: string): Promise<void> {
  const admin = PgExecutor.fromUrl(DATABASE_URL, 1);
  try {
    await admin.query(`DROP SCHEMA IF EXISTS ${quoteSchemaName(schema, 'bench')} CASCADE`);
  } finally {
    await admin.close();
  }
}

/** Function statistics of a bench schema (null when track_functions could not be switched on). */
function schemaFunctionStats(): Target['functionStats'] {
  return storeUrl === DATABASE_URL
    ? undefined
    : (provider) => readFunctionStats(DATABASE_URL, (provider as PostgresProvider).schema);
}

function serverTarget(): Target {
  return {
    name: 'server',
    runtimeOptions: DEFAULT_OPTIONS,
    serverCpu: true,
    functionStats: schemaFunctionStats(),
    open: async () => {
      const schema = newSchema();
      // Migrate on connections that then close (a closing backend reports its function counts at
      // once), so the migrations stay out of the procedure time; connecting again only reads the
      // schema version.
      await (await PostgresProvider.connectWithSchema(storeUrl, schema)).close();
      return PostgresProvider.connectWithSchema(storeUrl, schema);
    },
    dispose: (provider) => dropSchema((provider as PostgresProvider).schema),
  };
}

function pgliteTarget(): Target {
  return {
    name: 'pglite',
    runtimeOptions: DEFAULT_OPTIONS,
    serverCpu: false,
    open: () => PGliteProvider.inMemory(),
    dispose: async () => undefined,
  };
}

/**
 * Options of the "wide" proxied target: enough turn workers, activity slots and connections to
 * fill a 70 ms link (each turn worker waits one round trip for its ack; activity slots do not).
 */
const WIDE_OPTIONS: RuntimeOptions = { orchestrationConcurrency: 64, workerConcurrency: 32 };
const WIDE_POOL = 64;

async function proxyTarget(delayMs: number, wide = false): Promise<Target> {
  const server = new URL(DATABASE_URL);
  const proxy = await LatencyProxy.start(server.hostname, Number(server.port || 5432), delayMs);
  const viaProxy = new URL(storeUrl);
  viaProxy.hostname = '127.0.0.1';
  viaProxy.port = String(proxy.port);
  return {
    name: `server+proxy ${delayMs} ms each way${wide ? ` (64 turn workers, 32 slots, pool ${WIDE_POOL})` : ''}`,
    proxy,
    runtimeOptions: wide ? WIDE_OPTIONS : DEFAULT_OPTIONS,
    serverCpu: true,
    functionStats: schemaFunctionStats(),
    open: async () => {
      const schema = newSchema();
      // Migrate directly; only the workload goes through the proxy.
      await (await PostgresProvider.connectWithSchema(storeUrl, schema)).close();
      return new PostgresProvider(
        PgExecutor.fromUrl(viaProxy.toString(), wide ? WIDE_POOL : undefined),
        schema,
        'postgres',
      );
    },
    dispose: (provider) => dropSchema((provider as PostgresProvider).schema),
  };
}

/**
 * Runs one measurement and adds what the whole machine was doing meanwhile: CPU busy % over both
 * cores (this bench, PostgreSQL and anything else running) and the 1-minute load average. A busy
 * % near 100 says the CPU, not round trips, bounded the result.
 */
async function withMachine<T extends object>(
  work: () => Promise<T>,
): Promise<
  T & {
    machineCpuBusyPct: number;
    postgresCpuPct: number;
    benchProcessCpuPct: number;
    load1: number;
    lostWakeups: number;
    attempts: number;
  }
> {
  try {
    return { ...(await measureMachine(work)), attempts: 1 };
  } catch (error) {
    // The database is shared with other work on this machine; one retry rides out a dropped
    // connection (reported in `attempts`).
    process.stderr.write(`scenario failed, retrying once: ${error instanceof Error ? error.message : String(error)}\n`);
    return { ...(await measureMachine(work)), attempts: 2 };
  }
}

async function measureMachine<T extends object>(
  work: () => Promise<T>,
): Promise<
  T & {
    machineCpuBusyPct: number;
    postgresCpuPct: number;
    benchProcessCpuPct: number;
    load1: number;
    lostWakeups: number;
  }
> {
  const total = (): { busy: number; all: number } =>
    cpus().reduce(
      (sum, cpu) => {
        const t = cpu.times;
        const all = t.user + t.nice + t.sys + t.idle + t.irq;
        return { busy: sum.busy + all - t.idle, all: sum.all + all };
      },
      { busy: 0, all: 0 },
    );
  const before = total();
  const postgresBefore = postgresCpuSeconds();
  const processBefore = process.cpuUsage();
  const lostBefore = lostWakeups();
  const started = performance.now();
  const result = await work();
  const seconds = (performance.now() - started) / 1000;
  const after = total();
  const busy = (after.busy - before.busy) / Math.max(1, after.all - before.all);
  const own = process.cpuUsage(processBefore);
  return {
    ...result,
    machineCpuBusyPct: Math.round(busy * 100),
    // Percent of one core; the database server and this process (runtime, client, proxy).
    postgresCpuPct: Math.round(((postgresCpuSeconds() - postgresBefore) / seconds) * 100),
    benchProcessCpuPct: Math.round(((own.user + own.system) / 1e6 / seconds) * 100),
    load1: Math.round(loadavg()[0] * 10) / 10,
    // Work that only the safety fetch found in this process (see src/runtime/liveness.ts); the
    // backlog's worker processes add their own to their result. Expected 0.
    lostWakeups:
      lostWakeups() -
      lostBefore +
      ('lostWakeups' in result && typeof result.lostWakeups === 'number' ? result.lostWakeups : 0),
  };
}

/** Items this process found only through the safety fetch although never locked before. */
function lostWakeups(): number {
  const hits = safetyFetchHits();
  return hits.orchestrator.unannounced + hits.worker.unannounced;
}

// --- backlog: several runtime processes drain one queue ------------------------------------------

interface BacklogResult {
  processes: number;
  orchestrations: number;
  seconds: number;
  orchestrationsPerSecond: number;
  speedupVs1: number | null;
  peakRssMbPerProcess: number[];
  callsPerOrchestration: number;
  lostWakeups: number;
  postgresCpuMsPerOrchestration: number;
  procedureMsPerOrchestration: number | null;
  topFunctions: ProcedureCost['topFunctions'] | null;
}

async function backlog(orchestrations: number, processes: number): Promise<Omit<BacklogResult, 'speedupVs1'>> {
  const schema = newSchema();
  // Migrated on connections that close first, as in serverTarget.
  await (await PostgresProvider.connectWithSchema(storeUrl, schema)).close();
  const provider = await PostgresProvider.connectWithSchema(storeUrl, schema);
  const client = new Client(provider);
  let closed = false;
  // Left out of the procedure time: the migrations.
  const functionsBefore = storeUrl === DATABASE_URL ? null : await readFunctionStats(DATABASE_URL, schema);
  try {
    for (let i = 0; i < orchestrations; i += 50) {
      const batch = Array.from({ length: Math.min(50, orchestrations - i) }, (_, j) =>
        client.startOrchestration(`b-${i + j}`, 'One', i + j),
      );
      await Promise.all(batch);
    }
    const children = Array.from({ length: processes }, () =>
      spawn(process.execPath, [join(__dirname, 'backlog-worker.js'), storeUrl, schema], {
        stdio: ['pipe', 'pipe', 'inherit'],
      }),
    );
    const lines = children.map((child) => createInterface({ input: child.stdout })[Symbol.asyncIterator]());
    for (const line of lines) {
      const first = await line.next();
      if (first.value !== 'READY') throw new Error(`backlog worker said ${String(first.value)}`);
    }
    const cpuBefore = postgresCpuSeconds();
    const started = performance.now();
    for (const child of children) child.stdin.write('GO\n');
    for (;;) {
      const metrics = await provider.getSystemMetrics();
      if (metrics.completedInstances >= orchestrations) break;
      if (performance.now() - started > 600_000) throw new Error('backlog did not drain in 10 minutes');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const seconds = (performance.now() - started) / 1000;
    const cpuSeconds = postgresCpuSeconds() - cpuBefore;
    for (const child of children) child.stdin.write('STOP\n');
    const reports = await Promise.all(
      lines.map(
        async (line) =>
          JSON.parse(String((await line.next()).value)) as {
            peakRssMb: number;
            providerCalls: number;
            lostWakeups: number;
          },
      ),
    );
    const calls = reports.reduce((sum, r) => sum + r.providerCalls, 0);
    closed = true;
    await provider.close();
    // The start calls are counted too (made before the drain, one per orchestration).
    const procedures =
      functionsBefore === null
        ? null
        : procedureCost(subtractStats(await readFunctionStats(DATABASE_URL, schema), functionsBefore), orchestrations);
    return {
      processes,
      orchestrations,
      seconds: Math.round(seconds * 100) / 100,
      orchestrationsPerSecond: Math.round((orchestrations / seconds) * 10) / 10,
      peakRssMbPerProcess: reports.map((r) => r.peakRssMb),
      // Start calls are made by this process before the clock starts: one per orchestration.
      callsPerOrchestration: Math.round(((calls + orchestrations) / orchestrations) * 100) / 100,
      lostWakeups: reports.reduce((sum, r) => sum + r.lostWakeups, 0),
      postgresCpuMsPerOrchestration: Math.round(((cpuSeconds * 1000) / orchestrations) * 100) / 100,
      procedureMsPerOrchestration: procedures?.procedureMsPerOrchestration ?? null,
      topFunctions: procedures?.topFunctions ?? null,
    };
  } finally {
    if (!closed) await provider.close();
    await dropSchema(schema);
  }
}

// --- output --------------------------------------------------------------------------------------

type Row = Record<string, unknown>;

/** Columns kept out of the printed tables (in the results JSON only; topFunctions has its own table). */
const UNPRINTED = new Set(['topFunctions']);

/** Top functions by self time of every scenario row printed so far, printed as one table at the end. */
const procedureRows: Row[] = [];

function printTable(title: string, rows: Row[]): void {
  if (rows.length === 0) return;
  for (const row of rows) {
    const top = row.topFunctions as ProcedureCost['topFunctions'] | null | undefined;
    for (const f of top ?? []) {
      procedureRows.push({
        scenario: title.slice(0, title.indexOf(':')),
        target: row.target ?? `${String(row.processes)} processes`,
        ...f,
      });
    }
  }
  const columns = Object.keys(rows[0]).filter((c) => !UNPRINTED.has(c));
  const cell = (value: unknown): string => {
    if (value === null || value === undefined) return '-';
    if (Array.isArray(value)) return value.join('/');
    return typeof value === 'object' ? JSON.stringify(value) : `${value as string | number | boolean}`;
  };
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (values: string[]): string => values.map((v, i) => v.padEnd(widths[i])).join('  ');
  process.stdout.write(`\n${title}\n${line(columns)}\n${line(widths.map((w) => '-'.repeat(w)))}\n`);
  for (const row of rows) process.stdout.write(`${line(columns.map((c) => cell(row[c])))}\n`);
}

/**
 * Minimum round trips per orchestration of each scenario (each provider operation is one). The
 * floor counts a fetch and an ack per turn and per activity; with eager dispatch an
 * ack also hands over the next step (an activity, or the turn a completion makes ready), so the
 * fetch of that step disappears: `eager` is the floor when every hand-over succeeds. With eager
 * start and fused completion (an activity's ack also commits the turn it unblocks) a client in the
 * runtime's process gets below it: `fused`.
 */
const FLOORS = {
  latency: {
    floor: 7,
    eager: 5,
    fused: 3,
    breakdown:
      'start 1 + turn 2 (fetch, ack) + activity 2 (fetch, ack) + turn 2; eager: start 1 + fetch 1 + 3 acks; fused: start claiming the first turn 1 + its ack 1 + the activity ack with the final turn 1; +1 status read for the waiting client',
  },
  sequential5: {
    floor: 23,
    eager: 13,
    fused: 7,
    breakdown:
      'start 1 + 6 turns x 2 + 5 activities x 2; eager: start 1 + fetch 1 + 11 acks; fused: start 1 + first turn ack 1 + 5 activity acks each with its turn; +1 status read',
  },
  fanOutFanIn5: {
    floor: 13,
    eager: 9,
    breakdown:
      'start 1 + 2 turns x 2 (all 5 completions in one batch) + 5 activities x 2; ' +
      'eager: the 5 activity fetches disappear when 5 slots are idle; +1 status read',
  },
  wideFanOut: {
    floor: 2005,
    eager: null,
    breakdown:
      'start 1 + 2 turns x 2 + N activities x 2 (N = 1000); group commit acks many ' +
      'activities per call, so the counted calls fall below the floor',
  },
  timers: { floor: 5, eager: 5, breakdown: 'start 1 + 2 turns x 2; +1 status read' },
  backlog: {
    floor: 7,
    eager: 5,
    breakdown: 'as latency, without a waiting client; batch fetch takes up to 16 turns per call',
  },
};

async function main(): Promise<void> {
  const sizes = QUICK
    ? {
        latencyRuns: 20,
        proxyRuns: 6,
        warmUpRuns: 2,
        idleSeconds: 1,
        seq5: 50,
        fan: 60,
        wide: 200,
        timers: 50,
        backlog: 300,
      }
    : {
        latencyRuns: 200,
        proxyRuns: 200,
        warmUpRuns: 5,
        idleSeconds: 5,
        seq5: 200,
        fan: 1000,
        wide: 1000,
        timers: 500,
        backlog: 10_000,
      };
  const results: Record<string, unknown> = {
    startedAt: new Date().toISOString(),
    quick: QUICK,
    databaseUrl: DATABASE_URL.replace(/\/\/[^@]*@/, '//'),
    runtimeOptions:
      'defaults (orchestrationConcurrency 4, workerConcurrency 8, pool 10 connections + 1 LISTEN connection)',
    sizes,
    floors: FLOORS,
  };
  if (FUNCTION_STATS) {
    const tracking = await functionTrackingAllowed(DATABASE_URL);
    if (tracking.allowed) storeUrl = withFunctionTracking(DATABASE_URL);
    results.functionStats = tracking.note;
  } else {
    results.functionStats = 'off (--no-function-stats)';
  }
  process.stdout.write(`procedure time: ${String(results.functionStats)}\n`);
  const dir = join(__dirname, '..', '..', 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${String(results.startedAt).replace(/[:.]/g, '-')}${QUICK ? '-quick' : ''}.json`);
  const save = (): void => writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  const server = serverTarget();
  const pglite = pgliteTarget();
  const wire = await proxyTarget(0);
  const proxy5 = await proxyTarget(5);
  const proxy35 = await proxyTarget(35);
  const proxy35wide = await proxyTarget(35, true);
  const all = [server, pglite, wire, proxy5, proxy35];
  try {
    const latency: Row[] = [];
    for (const target of selected('latency') ? all : []) {
      const runs = target.proxy !== undefined && target !== wire ? sizes.proxyRuns : sizes.latencyRuns;
      latency.push({
        target: target.name,
        ...(await withMachine(() => scenarios.latency(target, runs, sizes.warmUpRuns))),
      });
    }
    printTable(
      `latency: 1-activity orchestration, start to completion (floor ${FLOORS.latency.floor}, with eager dispatch ${FLOORS.latency.eager}, fused ${FLOORS.latency.fused}, + 1 status read)`,
      latency,
    );
    results.latency = latency;
    save();

    const idle: Row[] = [];
    for (const target of selected('idle') ? [server, pglite, wire] : [])
      idle.push({ target: target.name, ...(await withMachine(() => scenarios.idle(target, sizes.idleSeconds))) });
    printTable('idle runtime: round trips per second', idle);
    results.idle = idle;
    save();

    const seq5: Row[] = [];
    for (const target of !selected('sequential5')
      ? []
      : QUICK
        ? [server, pglite, proxy35wide]
        : [...all, proxy35wide]) {
      seq5.push({ target: target.name, ...(await withMachine(() => scenarios.sequential5(target, sizes.seq5))) });
    }
    printTable(
      `throughput: ${sizes.seq5} orchestrations x 5 sequential activities (floor ${FLOORS.sequential5.floor}, eager ${FLOORS.sequential5.eager}, fused ${FLOORS.sequential5.fused}, + 1 status read)`,
      seq5,
    );
    results.sequential5 = seq5;
    save();

    const fan: Row[] = [];
    for (const target of selected('fanOutFanIn') ? [server, pglite] : [])
      fan.push({ target: target.name, ...(await withMachine(() => scenarios.fanOutFanIn(target, sizes.fan, 5))) });
    printTable(
      `fan-out/fan-in: ${sizes.fan} orchestrations x 5 parallel activities (floor ` +
        `${FLOORS.fanOutFanIn5.floor}, eager ${FLOORS.fanOutFanIn5.eager}, + 1 status ` +
        `read)`,
      fan,
    );
    results.fanOutFanIn = fan;
    save();

    const wide: Row[] = [];
    for (const target of selected('wideFanOut') ? [server, pglite] : [])
      wide.push({ target: target.name, ...(await withMachine(() => scenarios.wideFanOut(target, sizes.wide))) });
    printTable(`fan-out: 1 orchestration x ${sizes.wide} parallel activities`, wide);
    results.wideFanOut = wide;
    save();

    const timer: Row[] = [];
    for (const target of selected('timers') ? [server, pglite] : [])
      timer.push({ target: target.name, ...(await withMachine(() => scenarios.timers(target, sizes.timers, 1000))) });
    printTable(`timers: ${sizes.timers} orchestrations x 1 s timer, lateness of the code after it`, timer);
    results.timers = timer;
    save();

    if (selected('asyncReplay')) {
      const replay = await asyncReplay(QUICK);
      printTable(
        'async orchestrations: replay time per applied event, generator vs async (no ' +
          'database; median of repeated one-turn replays)',
        replay.replay,
      );
      printTable('async orchestrations: short-turn latency in microseconds (no database)', replay.latency);
      results.asyncReplay = replay;
      save();
    }

    const drained: BacklogResult[] = [];
    for (const processes of selected('backlog') ? [1, 2, 4] : []) {
      const result = await withMachine(() => backlog(sizes.backlog, processes));
      drained.push({
        ...result,
        speedupVs1:
          drained.length === 0
            ? 1
            : Math.round((result.orchestrationsPerSecond / drained[0].orchestrationsPerSecond) * 100) / 100,
      });
    }
    printTable(
      `backlog: ${sizes.backlog} queued 1-activity orchestrations drained by runtimes in separate processes (server)`,
      drained as unknown as Row[],
    );
    results.backlog = drained;
    save();

    printTable(
      'procedures: top 5 functions by self time per orchestration in the measured window (pg_stat_user_functions)',
      procedureRows,
    );

    if (selected('peer')) {
      if ((PEER ?? 'dbos') !== 'dbos') throw new Error(`unknown peer ${String(PEER)}: only dbos is supported`);
      const peer = await runPeer({ databaseUrl: DATABASE_URL, quick: QUICK });
      printTable(peer.title, peer.rows);
      results.peer = peer;
      save();
    }
  } finally {
    for (const target of [wire, proxy5, proxy35, proxy35wide]) await target.proxy?.close();
  }

  results.finishedAt = new Date().toISOString();
  results.safetyFetchHits = safetyFetchHits();
  save();
  process.stdout.write(
    `\nwork that only the safety fetch found, this process (each scenario's ` +
      `lostWakeups adds its worker processes): ` +
      `${JSON.stringify(results.safetyFetchHits)}\n`,
  );
  process.stdout.write(`\nresults written to ${file}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
