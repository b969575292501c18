/**
 * Primary failover: a pg_auto_failover formation (monitor + two data nodes, synchronous
 * replication, started by this test; test/helpers/auto-failover.ts) serves Durox through its
 * multi-host URI `postgres://h:p1,h:p2/durox?target_session_attrs=read-write`. A workload starts
 * one orchestration every 50 ms (5 sequential activities each) across a planned failover
 * (`pg_autoctl perform failover`) and then across SIGKILL of the primary (its pg_autoctl and its
 * postmaster, so nothing restarts it: the monitor's default timeouts promote the standby after
 * about 50 s; they are not tuned). Every orchestration started before, during and after must
 * complete exactly once with the right result, with sound histories, and the runtime must log the
 * failover and count it.
 *
 * A write probe (its own multi-host pool, one `txid_current()` every 20 ms) measures the write
 * pause of each failover. Skipped with a message where pg_auto_failover is not installed.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { durox, sleep, type Provider } from '../e2e/helpers';
import { AutoFailoverFormation, autoFailoverMissing, type FormationNode } from '../helpers/auto-failover';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { availabilityTotals } from '../../src/provider/availability';
import { instanceProblems } from './invariants';

const logFile = join(tmpdir(), `durox-failover-${process.pid}-${randomBytes(3).toString('hex')}.log`);
durox.initTracing({ logFile, logLevel: 'warn', logFormat: 'compact' });

const START_EVERY_MS = 50;
const STEPS = 5;
const missing = autoFailoverMissing();
let formation: AutoFailoverFormation | null = null;

before(async () => {
  if (missing !== null) return;
  formation = await AutoFailoverFormation.start((line) => console.log(line));
});

after(async () => {
  await formation?.destroy();
  if (process.env.CHAOS_KEEP_LOG === undefined) rmSync(logFile, { force: true });
  else console.log(`log kept: ${logFile}`);
});

/** Longest gap between successful writes through the multi-host URL, per window. */
class WriteProbe {
  private stopped = false;
  private lastOk = Date.now();
  private gaps: Array<{ from: number; to: number }> = [];
  private done: Promise<void>;
  private readonly executor: PgExecutor;

  constructor(url: string) {
    this.executor = PgExecutor.fromUrl(url, 1, { connectTimeoutMs: 1000 });
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.executor.query('SELECT txid_current()');
        const now = Date.now();
        if (now - this.lastOk > 200) this.gaps.push({ from: this.lastOk, to: now });
        this.lastOk = now;
      } catch {
        // counted as part of the gap
      }
      await sleep(20);
    }
  }

  /** The longest gap that overlaps [from, to), in ms. */
  longestGap(from: number, to: number): number {
    return Math.max(0, ...this.gaps.filter((g) => g.to >= from && g.from < to).map((g) => g.to - g.from));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
    await this.executor.close();
  }
}

interface Started {
  id: string;
  n: number;
  phase: string;
  requestedAt: number;
  completedAt?: number;
  error?: string;
}

test(
  'orchestrations complete exactly once across a planned failover and SIGKILL of the primary',
  { timeout: 420_000, skip: missing ?? false },
  async () => {
    const f = formation!;
    const probe = new WriteProbe(f.url);
    const provider: Provider = await durox.PostgresProvider.connectWithSchema(f.url, 'durox_failover');
    const runtime = new durox.Runtime(provider, { logLevel: 'warn' });
    const executions = new Map<string, number>();
    runtime.registerActivity('Step', async (ctx, input: { x: number; step: number }) => {
      const key = `${ctx.instanceId}#${input.step}`;
      executions.set(key, (executions.get(key) ?? 0) + 1);
      return input.x * 2 + input.step;
    });
    runtime.registerOrchestration('Steps', function* (ctx, n: number) {
      let x = n;
      for (let step = 1; step <= STEPS; step += 1) x = yield ctx.scheduleActivity('Step', { x, step });
      return x;
    });
    const expected = (n: number): number => {
      let x = n;
      for (let step = 1; step <= STEPS; step += 1) x = x * 2 + step;
      return x;
    };
    await runtime.start();
    const client = new durox.Client(provider);
    const started: Started[] = [];
    const waits: Array<Promise<void>> = [];
    let phase = 'before';
    let stopStarting = false;
    const starter = (async () => {
      for (let n = 0; !stopStarting; n += 1) {
        const entry: Started = { id: `fo-${n}`, n, phase, requestedAt: Date.now() };
        started.push(entry);
        waits.push(
          (async () => {
            try {
              await client.startOrchestration(entry.id, 'Steps', n);
              const status = await client.waitForOrchestration(entry.id, 300_000);
              entry.completedAt = Date.now();
              if (status.status !== 'Completed' || Number(status.output) !== expected(n))
                entry.error = `${status.status} ${JSON.stringify(status.output)}`;
            } catch (error) {
              entry.error = error instanceof Error ? error.message : String(error);
            }
          })(),
        );
        await sleep(START_EVERY_MS);
      }
    })();
    const timings: Record<string, number> = {};
    let promotedAt: number;
    let plannedAt: number;
    try {
      await sleep(5000);
      const firstPrimary = (await f.primary())!;
      phase = 'planned';
      plannedAt = Date.now();
      await f.performFailover();
      const plannedDone = Date.now();
      const secondPrimary = await waitForPrimaryOtherThan(f, firstPrimary, 120_000);
      timings.plannedCommandMs = plannedDone - plannedAt;
      phase = 'after-planned';
      await sleep(8000);
      timings.plannedWritePauseMs = probe.longestGap(plannedAt, Date.now());
      // Let everything started so far finish before the next failover, so each delay belongs to one failover.
      phase = 'settling';
      const startedBeforeKill = started.length;
      await waitUntil(
        () => started.slice(0, startedBeforeKill).every((s) => s.completedAt !== undefined || s.error !== undefined),
        180_000,
      );
      await checkReadOnlyViews(f, started[0].id);

      phase = 'unplanned';
      const killedAt = Date.now();
      f.killNode(secondPrimary);
      const thirdPrimary = await waitForPrimaryOtherThan(f, secondPrimary, 180_000);
      timings.unplannedPromotionMs = Date.now() - killedAt;
      promotedAt = Date.now();
      assert.equal(thirdPrimary.port, firstPrimary.port);
      phase = 'after-unplanned';
      await sleep(8000);
      timings.unplannedWritePauseMs = probe.longestGap(killedAt, Date.now());
    } finally {
      stopStarting = true;
      await starter;
      await Promise.all(waits);
      await probe.stop();
    }
    try {
      const failed = started.filter((s) => s.error !== undefined);
      assert.deepEqual(
        failed.map((s) => `${s.id}: ${s.error}`),
        [],
        'every orchestration completed with its result',
      );
      for (const s of started) assert.deepEqual(await instanceProblems(provider, s.id), [], s.id);
      // Exactly once: one completion per instance, every step answered once in history.
      for (const s of started) {
        const history = await provider.readHistory(s.id, 1);
        assert.equal(history.filter((e) => e.kind === 'OrchestrationCompleted').length, 1, s.id);
        assert.equal(history.filter((e) => e.kind === 'ActivityCompleted').length, STEPS, s.id);
        assert.equal(history.filter((e) => e.kind === 'ActivityScheduled').length, STEPS, s.id);
      }
      const byPhase: Record<string, number> = {};
      for (const s of started) byPhase[s.phase] = (byPhase[s.phase] ?? 0) + 1;
      const delays = started.map((s) => (s.completedAt ?? 0) - s.requestedAt);
      const slowest = started[delays.indexOf(Math.max(...delays))];
      const longestByPhase: Record<string, number> = {};
      for (const s of started)
        longestByPhase[s.phase] = Math.max(longestByPhase[s.phase] ?? 0, (s.completedAt ?? 0) - s.requestedAt);
      const drainedAfterPromotionMs = Math.max(...started.map((s) => s.completedAt ?? 0)) - promotedAt;
      const historyOf = async (s: Started): Promise<string[]> =>
        (await provider.readHistory(s.id, 1)).map((e) => `${e.kind}@${e.timestampMs - s.requestedAt}`);
      const slowestHistory = await historyOf(slowest);
      const plannedOnes = started.filter((s) => ['before', 'planned', 'after-planned'].includes(s.phase));
      const plannedDelays = plannedOnes.map((s) => (s.completedAt ?? 0) - s.requestedAt);
      const slowestPlanned = plannedOnes[plannedDelays.indexOf(Math.max(...plannedDelays))];
      const slowestPlannedHistory = [
        `${slowestPlanned.id} started at +${slowestPlanned.requestedAt - plannedAt} ms from the planned failover`,
        ...(await historyOf(slowestPlanned)),
      ];
      const reruns = [...executions.values()].filter((count) => count > 1).length;
      const availability = availabilityTotals();
      const log = readFileSync(logFile, 'utf8');
      console.log(
        `CHAOS failover ${JSON.stringify({
          orchestrations: started.length,
          byPhase,
          ...timings,
          longestDelayMs: Math.max(...delays),
          longestDelayInstance: `${slowest.id} (${slowest.phase})`,
          longestByPhase,
          slowestHistory,
          slowestPlannedHistory,
          drainedAfterPromotionMs,
          activityReruns: reruns,
          failoversCounted: availability.failovers,
          outages: availability.outages,
          outageSeconds: Math.round(availability.outageMs / 100) / 10,
        })}`,
      );
      assert.ok(availability.failovers >= 2, `two failovers counted, got ${availability.failovers}`);
      assert.match(log, /failover: connections moved from 127\.0\.0\.1:\d+ to 127\.0\.0\.1:\d+, which is writable/);
      assert.match(log, /works again after/);
      for (const phaseName of ['before', 'planned', 'after-planned', 'settling', 'unplanned', 'after-unplanned'])
        assert.ok((byPhase[phaseName] ?? 0) > 0, `starts during ${phaseName}`);
    } finally {
      await runtime.shutdown(1000);
      await provider.close();
    }
  },
);

/**
 * Operator views may read from the standby (prefer-standby); a read-only target never migrates:
 * connecting it to a schema that does not exist yet fails instead of writing to the standby.
 */
async function checkReadOnlyViews(f: AutoFailoverFormation, instanceId: string): Promise<void> {
  const standbyUrl = f.url.replace('target_session_attrs=read-write', 'target_session_attrs=prefer-standby');
  const reader = PgExecutor.fromUrl(standbyUrl, 1);
  try {
    assert.equal(
      (await reader.query('SELECT pg_is_in_recovery() AS standby'))[0].standby,
      true,
      'prefer-standby lands on the standby',
    );
  } finally {
    await reader.close();
  }
  const view = await durox.PostgresProvider.connectWithSchema(standbyUrl, 'durox_failover');
  try {
    assert.equal(
      (await new durox.Client(view).getStatus(instanceId)).status,
      'Completed',
      'the standby serves status reads',
    );
  } finally {
    await view.close();
  }
  await assert.rejects(
    durox.PostgresProvider.connectWithSchema(
      f.url.replace('target_session_attrs=read-write', 'target_session_attrs=standby'),
      'durox_never_created',
    ),
    /Failed to connect to PostgreSQL: .*read-only transaction/,
  );
}

async function waitUntil(done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`not done within ${timeoutMs} ms`);
    await sleep(100);
  }
}

async function waitForPrimaryOtherThan(
  f: AutoFailoverFormation,
  old: FormationNode,
  timeoutMs: number,
): Promise<FormationNode> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const primary = await f.primary().catch(() => null);
    if (primary !== null && primary.port !== old.port) return primary;
    await sleep(250);
  }
  throw new Error(`no new primary within ${timeoutMs} ms`);
}
