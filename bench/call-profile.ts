/**
 * Where one workload's database time goes, with counters that do not depend on machine load:
 * provider calls per orchestration by operation, the procedures' calls and self time per
 * orchestration (`pg_stat_user_functions`, track_functions for this run's sessions only), and the
 * PostgreSQL server's CPU per orchestration.
 *
 * `node dist/bench/call-profile.js [count=40] [activities=5] [rounds=3] [shape=chain]`: `count`
 * orchestrations of `activities` activities started at once on a Runtime and Client with their
 * defaults, `rounds` times on fresh schemas; then one orchestration alone (the calls of one
 * uncontended orchestration). `shape` is `chain` (the activities one after another: the peer
 * bench's 40x5 workload) or `fanout` (all scheduled at once and gathered with `ctx.all`: with
 * `1 100` the peer bench's fan-out). Prints one JSON document.
 */
import { performance } from 'node:perf_hooks';
import { Client, PostgresProvider, Runtime } from '../src/index';
import { PgExecutor } from '../src/postgres/pg-executor';
import { ProcedureProvider } from '../src/store/procedure-provider';
import { quoteSchemaName } from '../src/store/schema-name';
import {
  postgresCpuSeconds,
  readFunctionStats,
  subtractStats,
  withFunctionTracking,
  type FunctionStat,
} from './db-cost';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/test';
const [count, activities, rounds] = [2, 3, 4].map((i, n) => Number(process.argv[i] ?? [40, 5, 3][n]));
const shape = process.argv[5] ?? 'chain';
if (shape !== 'chain' && shape !== 'fanout') throw new Error(`shape must be chain or fanout, not ${shape}`);

const callsByOperation = new Map<string, number>();
type CallFn = (operation: string, params: unknown[], instanceId?: string) => Promise<unknown>;
const prototype = ProcedureProvider.prototype as unknown as { call: CallFn };
const originalCall = prototype.call;
prototype.call = function countedCall(this: ProcedureProvider, operation, params, instanceId) {
  callsByOperation.set(operation, (callsByOperation.get(operation) ?? 0) + 1);
  return originalCall.call(this, operation, params, instanceId);
};

const round = (n: number, digits = 2): number => Math.round(n * 10 ** digits) / 10 ** digits;

interface RoundResult {
  seconds: number;
  calls: Map<string, number>;
  functions: FunctionStat[];
  cpuSeconds: number;
}

async function runRound(schema: string, orchestrations: number): Promise<RoundResult> {
  const url = withFunctionTracking(DATABASE_URL);
  // Migrate on connections that close first, so the migrations stay out of the function stats.
  await (await PostgresProvider.connectWithSchema(url, schema)).close();
  const provider = await PostgresProvider.connectWithSchema(url, schema);
  const runtime = new Runtime(provider, { logLevel: 'warn' });
  runtime.registerActivity('Noop', (_ctx, input: unknown) => input);
  runtime.registerOrchestration('Chain', function* (ctx, input: number) {
    if (shape === 'fanout') {
      const tasks = Array.from({ length: activities }, (_, i) => ctx.scheduleActivity('Noop', input + i));
      return ((yield ctx.all(tasks)) as unknown[]).length;
    }
    let value = input;
    for (let i = 0; i < activities; i += 1) value = (yield ctx.scheduleActivity('Noop', value)) as number;
    return value;
  });
  const client = new Client(provider);
  let before: FunctionStat[];
  let cpuBefore: number;
  let started: number;
  let seconds: number;
  let callsBefore: Map<string, number>;
  try {
    await runtime.start();
    before = await readFunctionStats(DATABASE_URL, schema);
    callsBefore = new Map(callsByOperation);
    cpuBefore = postgresCpuSeconds();
    started = performance.now();
    const ids = Array.from({ length: orchestrations }, (_, i) => `chain-${i}`);
    await Promise.all(ids.map((id, i) => client.startOrchestration(id, 'Chain', i)));
    const results = await Promise.all(ids.map((id) => client.waitForOrchestration(id, 600_000)));
    seconds = (performance.now() - started) / 1000;
    const failed = results.find((r) => r.status !== 'Completed');
    if (failed !== undefined) throw new Error(`an orchestration ended ${failed.status}`);
  } finally {
    await runtime.shutdown(500);
    await provider.close();
  }
  const cpuSeconds = postgresCpuSeconds() - cpuBefore;
  const calls = new Map<string, number>();
  for (const [operation, n] of callsByOperation) {
    const diff = n - (callsBefore.get(operation) ?? 0);
    if (diff > 0) calls.set(operation, diff);
  }
  const functions = subtractStats(await readFunctionStats(DATABASE_URL, schema), before);
  const admin = PgExecutor.fromUrl(DATABASE_URL, 1);
  try {
    await admin.query(`DROP SCHEMA IF EXISTS ${quoteSchemaName(schema, 'bench')} CASCADE`);
  } finally {
    await admin.close();
  }
  return { seconds, calls, functions, cpuSeconds };
}

function summarise(results: RoundResult[], orchestrations: number): Record<string, unknown> {
  const total = orchestrations * results.length;
  const calls = new Map<string, number>();
  const functions = new Map<string, { calls: number; selfMs: number }>();
  for (const r of results) {
    for (const [op, n] of r.calls) calls.set(op, (calls.get(op) ?? 0) + n);
    for (const f of r.functions) {
      const s = functions.get(f.function) ?? { calls: 0, selfMs: 0 };
      functions.set(f.function, { calls: s.calls + f.calls, selfMs: s.selfMs + f.selfMs });
    }
  }
  return {
    orchestrations: total,
    secondsPerRound: results.map((r) => round(r.seconds)),
    orchestrationsPerSecond: results.map((r) => round(orchestrations / r.seconds, 1)),
    callsPerOrchestration: round([...calls.values()].reduce((a, b) => a + b, 0) / total),
    callsByOperation: Object.fromEntries(
      [...calls].sort((a, b) => b[1] - a[1]).map(([op, n]) => [op, round(n / total)]),
    ),
    postgresCpuMsPerOrchestration: round((results.reduce((a, r) => a + r.cpuSeconds, 0) * 1000) / total),
    procedureMsPerOrchestration: round([...functions.values()].reduce((a, f) => a + f.selfMs, 0) / total, 3),
    functions: Object.fromEntries(
      [...functions]
        .sort((a, b) => b[1].selfMs - a[1].selfMs)
        .map(([name, f]) => [name, { calls: round(f.calls / total), selfMs: round(f.selfMs / total, 3) }]),
    ),
  };
}

async function main(): Promise<void> {
  const batch: RoundResult[] = [];
  for (let r = 0; r < rounds; r += 1) batch.push(await runRound(`profile_${process.pid}_${r}`, count));
  const alone: RoundResult[] = [];
  for (let r = 0; r < rounds; r += 1) alone.push(await runRound(`profile_${process.pid}_alone_${r}`, 1));
  process.stdout.write(
    `${JSON.stringify({ workload: `${count} x ${activities} ${shape === 'chain' ? 'sequential' : 'parallel'} activities, started at once`, batch: summarise(batch, count), alone: summarise(alone, 1) }, null, 2)}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
