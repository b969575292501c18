/**
 * Benchmark scenarios. Each runs against a {@link Target} (a fresh store)
 * and returns plain numbers. Round trips are counted twice where possible:
 * - `calls`: provider procedure calls, counted in ProcedureProvider (each is one round trip);
 * - `wire`: simple queries + Syncs seen by the latency proxy (includes the LISTEN connection and
 *   pool connection set-up), only on proxied targets.
 */
import { performance } from 'node:perf_hooks';
import { Client, Runtime, type RuntimeOptions } from '../src/index';
import { ProcedureProvider } from '../src/store/procedure-provider';
import type { Provider } from '../src/provider/contract';
import { postgresCpuSeconds, procedureCost, subtractStats, type FunctionStat, type ProcedureCost } from './db-cost';
import type { LatencyProxy } from './latency-proxy';

/** A store to run scenarios on. */
export interface Target {
  name: string;
  /** Opens a fresh, empty, migrated store. */
  open(): Promise<Provider>;
  /** Removes what `open` created (after the provider is closed). */
  dispose(provider: Provider): Promise<void>;
  proxy?: LatencyProxy;
  /** Runtime options used on this target (documented in the results). */
  runtimeOptions: RuntimeOptions;
  /** Whether the PostgreSQL server does the store's work (false: PGlite, inside this process). */
  serverCpu: boolean;
  /**
   * The store's function statistics, read after the provider is closed and before `dispose`
   * (absent where they cannot be read).
   */
  functionStats?: (provider: Provider) => Promise<FunctionStat[]>;
}

// --- counting ---------------------------------------------------------------------------------

let providerCalls = 0;
type CallFn = (operation: string, params: unknown[], instanceId?: string) => Promise<unknown>;
const prototype = ProcedureProvider.prototype as unknown as { call: CallFn };
const originalCall = prototype.call;
prototype.call = function countedCall(this: ProcedureProvider, operation, params, instanceId) {
  providerCalls += 1;
  return originalCall.call(this, operation, params, instanceId);
};

/** Counters at one moment, to subtract later. */
export interface Mark {
  calls: number;
  wire: number;
}

/** Provider procedure calls made so far in this process (all providers). */
export function providerCallCount(): number {
  return providerCalls;
}

function mark(target: Target): Mark {
  return { calls: providerCalls, wire: target.proxy?.roundTrips ?? 0 };
}

function since(target: Target, before: Mark): Mark {
  const now = mark(target);
  return { calls: now.calls - before.calls, wire: now.wire - before.wire };
}

// --- helpers ----------------------------------------------------------------------------------

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((sorted.length * p) / 100) - 1))];
}

const round = (n: number, digits = 1): number => Math.round(n * 10 ** digits) / 10 ** digits;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Bench-only side channel: when the code after a timer ran, per instance (not durable state). */
const timerStamps = new Map<string, { dueAt: number; ranAt?: number }>();

function newRuntime(provider: Provider, options: RuntimeOptions): Runtime {
  const runtime = new Runtime(provider, { logLevel: 'warn', ...options });
  runtime.registerActivity('Noop', (_ctx, input: unknown) => input);
  runtime.registerOrchestration('One', function* (ctx, input: number) {
    return (yield ctx.scheduleActivity('Noop', input)) as number;
  });
  runtime.registerOrchestration('Seq5', function* (ctx, input: number) {
    let value = input;
    for (let i = 0; i < 5; i += 1) value = (yield ctx.scheduleActivity('Noop', value)) as number;
    return value;
  });
  runtime.registerOrchestration('Parallel', function* (ctx, width: number) {
    const tasks = Array.from({ length: width }, (_, i) => ctx.scheduleActivity('Noop', i));
    const results = (yield ctx.all(tasks)) as unknown[];
    return results.length;
  });
  runtime.registerOrchestration('Timer', function* (ctx, delayMs: number) {
    if (!ctx.isReplaying) timerStamps.set(ctx.instanceId, { dueAt: Date.now() + delayMs });
    yield ctx.scheduleTimer(delayMs);
    const stamp = timerStamps.get(ctx.instanceId);
    if (!ctx.isReplaying && stamp !== undefined && stamp.ranAt === undefined) stamp.ranAt = Date.now();
    return delayMs;
  });
  return runtime;
}

/**
 * PostgreSQL server CPU and the store's function statistics over the measured part of a scenario
 * (migrations and warm-up left out).
 */
class CpuWindow {
  private startedAt: number | null = null;
  seconds: number | null = null;
  /** Function statistics when the window opened (null: not read). */
  functionsBefore: FunctionStat[] | null = null;

  constructor(private readonly readFunctions: (() => Promise<FunctionStat[]>) | null) {}

  /** Opens the window; first waits for the store's idle backends to report their function counts. */
  async start(): Promise<void> {
    if (this.readFunctions !== null) this.functionsBefore = await this.readFunctions();
    this.startedAt = postgresCpuSeconds();
  }

  stop(): void {
    if (this.startedAt !== null) this.seconds = postgresCpuSeconds() - this.startedAt;
  }
}

/** What the database spent per orchestration (added to every scenario's result). */
export interface DbCost {
  /**
   * PostgreSQL server CPU (all its processes on this machine) in the measured window, divided by
   * the orchestrations measured; null on PGlite.
   */
  postgresCpuMsPerOrchestration: number | null;
  /** Self time of the store's functions in the measured window / orchestrations measured; null where not measured. */
  procedureMsPerOrchestration: number | null;
  /** The top 5 functions by self time (results JSON; printed in a table of its own). */
  topFunctions: ProcedureCost['topFunctions'] | null;
}

/**
 * Runs `work` with a started runtime and a client on a fresh store, then cleans up. `measured`
 * orchestrations run inside the window that `work` opens (the window closes for function
 * statistics when the store is closed: a runtime's shutdown adds little).
 */
async function withStore<T extends object>(
  target: Target,
  counts: { measured: number },
  work: (client: Client, provider: Provider, cpu: CpuWindow) => Promise<T>,
): Promise<T & DbCost> {
  const provider = await target.open();
  const runtime = newRuntime(provider, target.runtimeOptions);
  const client = new Client(provider);
  const readFunctions = target.functionStats;
  const cpu = new CpuWindow(readFunctions === undefined ? null : () => readFunctions(provider));
  let result: T;
  let procedures: ProcedureCost | null = null;
  try {
    await runtime.start();
    result = await work(client, provider, cpu);
  } finally {
    await runtime.shutdown(500);
    await provider.close();
  }
  try {
    if (readFunctions !== undefined && cpu.functionsBefore !== null && counts.measured > 0) {
      procedures = procedureCost(subtractStats(await readFunctions(provider), cpu.functionsBefore), counts.measured);
    }
  } finally {
    await target.dispose(provider);
  }
  return {
    ...result,
    postgresCpuMsPerOrchestration:
      target.serverCpu && cpu.seconds !== null && counts.measured > 0
        ? round((cpu.seconds * 1000) / counts.measured, 2)
        : null,
    procedureMsPerOrchestration: procedures?.procedureMsPerOrchestration ?? null,
    topFunctions: procedures?.topFunctions ?? null,
  };
}

async function startAndWaitAll(
  client: Client,
  ids: string[],
  name: string,
  input: unknown,
  timeoutMs: number,
): Promise<void> {
  await Promise.all(ids.map((id) => client.startOrchestration(id, name, input)));
  const results = await Promise.all(ids.map((id) => client.waitForOrchestration(id, timeoutMs)));
  const failed = results.find((r) => r.status !== 'Completed');
  if (failed !== undefined) throw new Error(`an orchestration ended ${failed.status}: ${failed.error ?? ''}`);
}

// --- scenarios --------------------------------------------------------------------------------

export interface LatencyResult {
  runs: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  callsPerOrchestration: number;
  wirePerOrchestration: number | null;
}

/**
 * One orchestration with one no-op activity, start to `waitForOrchestration` returning; the first
 * `warmUp` runs (connections, JIT, plan caches) are not measured.
 */
export async function latency(target: Target, runs: number, warmUp = 5): Promise<LatencyResult & DbCost> {
  return withStore(target, { measured: runs }, async (client, _provider, cpu) => {
    const times: number[] = [];
    let counted: Mark = { calls: 0, wire: 0 };
    for (let i = 0; i < runs + warmUp; i += 1) {
      if (i === warmUp) await cpu.start();
      const id = `lat-${i}`;
      const before = mark(target);
      const started = performance.now();
      await client.startOrchestration(id, 'One', i);
      const status = await client.waitForOrchestration(id, 30_000);
      const elapsed = performance.now() - started;
      if (status.status !== 'Completed') throw new Error(`latency run ${i} ended ${status.status}`);
      if (i < warmUp) continue;
      times.push(elapsed);
      const delta = since(target, before);
      counted = { calls: counted.calls + delta.calls, wire: counted.wire + delta.wire };
    }
    cpu.stop();
    return {
      runs,
      p50Ms: round(percentile(times, 50)),
      p95Ms: round(percentile(times, 95)),
      p99Ms: round(percentile(times, 99)),
      callsPerOrchestration: round(counted.calls / runs, 2),
      wirePerOrchestration: target.proxy === undefined ? null : round(counted.wire / runs, 2),
    };
  });
}

export interface IdleResult {
  seconds: number;
  callsPerSecond: number;
  wirePerSecond: number | null;
}

/** A started runtime with nothing to do: round trips it makes per second. */
export async function idle(target: Target, seconds: number): Promise<IdleResult & DbCost> {
  return withStore(target, { measured: 0 }, async () => {
    await sleep(500); // the first drain fetches of each worker
    const before = mark(target);
    await sleep(seconds * 1000);
    const delta = since(target, before);
    return {
      seconds,
      callsPerSecond: round(delta.calls / seconds, 2),
      wirePerSecond: target.proxy === undefined ? null : round(delta.wire / seconds, 2),
    };
  });
}

export interface ThroughputResult {
  orchestrations: number;
  activitiesEach: number;
  seconds: number;
  orchestrationsPerSecond: number;
  activitiesPerSecond: number;
  callsPerOrchestration: number;
  wirePerOrchestration: number | null;
}

/** `count` orchestrations started at once, each running `name` with `input`. */
async function throughput(
  target: Target,
  label: string,
  count: number,
  name: string,
  input: number,
  activitiesEach: number,
): Promise<ThroughputResult & DbCost> {
  return withStore(target, { measured: count }, async (client, _provider, cpu) => {
    await startAndWaitAll(client, ['warm-a', 'warm-b'], name, input, 120_000);
    const before = mark(target);
    await cpu.start();
    const started = performance.now();
    const ids = Array.from({ length: count }, (_, i) => `${label}-${i}`);
    await startAndWaitAll(client, ids, name, input, 600_000);
    const seconds = (performance.now() - started) / 1000;
    cpu.stop();
    const delta = since(target, before);
    return {
      orchestrations: count,
      activitiesEach,
      seconds: round(seconds, 2),
      orchestrationsPerSecond: round(count / seconds),
      activitiesPerSecond: round((count * activitiesEach) / seconds),
      callsPerOrchestration: round(delta.calls / count, 2),
      wirePerOrchestration: target.proxy === undefined ? null : round(delta.wire / count, 2),
    };
  });
}

/** `count` orchestrations of 5 sequential no-op activities, started at once. */
export function sequential5(target: Target, count: number): Promise<ThroughputResult & DbCost> {
  return throughput(target, 'seq5', count, 'Seq5', 0, 5);
}

/** `count` orchestrations fanning out to `width` parallel activities and back in. */
export function fanOutFanIn(target: Target, count: number, width: number): Promise<ThroughputResult & DbCost> {
  return throughput(target, 'fan', count, 'Parallel', width, width);
}

/** One orchestration with `width` parallel activities. */
export function wideFanOut(target: Target, width: number): Promise<ThroughputResult & DbCost> {
  return throughput(target, 'wide', 1, 'Parallel', width, width);
}

export interface TimerResult {
  timers: number;
  delayMs: number;
  latenessP50Ms: number;
  latenessP99Ms: number;
  latenessMaxMs: number;
  callsPerOrchestration: number;
}

/** `count` orchestrations each waiting on a `delayMs` timer: how late the code after it runs. */
export async function timers(target: Target, count: number, delayMs: number): Promise<TimerResult & DbCost> {
  return withStore(target, { measured: count }, async (client, _provider, cpu) => {
    const ids = Array.from({ length: count }, (_, i) => `timer-${i}-${Date.now()}`);
    const before = mark(target);
    await cpu.start();
    await startAndWaitAll(client, ids, 'Timer', delayMs, 120_000);
    cpu.stop();
    const delta = since(target, before);
    const lateness = ids.map((id) => {
      const stamp = timerStamps.get(id);
      if (stamp?.ranAt === undefined) throw new Error(`timer ${id} left no stamp`);
      timerStamps.delete(id);
      return stamp.ranAt - stamp.dueAt;
    });
    return {
      timers: count,
      delayMs,
      latenessP50Ms: round(percentile(lateness, 50)),
      latenessP99Ms: round(percentile(lateness, 99)),
      latenessMaxMs: round(Math.max(...lateness)),
      callsPerOrchestration: round(delta.calls / count, 2),
    };
  });
}
