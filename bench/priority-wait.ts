/**
 * Priorities under saturation: queue wait per level, and the plans of both fetch scans with a
 * backlog.
 *
 *   node dist/bench/priority-wait.js [orchestrations=800] [slots=2] [workMs=10] [timers=20000]
 *
 * Phase 1: one runtime (1 turn worker, `slots` activity slots, each activity busy `workMs`)
 * while a client starts `orchestrations` one-activity orchestrations in bursts of 20 every 20 ms
 * (1,000 starts/s, several times what the slots serve), levels 0, 3, 6 and 9 in turn. The wait of
 * an orchestration is the time from its start call returning to its activity starting. Prints
 * p50/p99/max wait per level. Phase 2, on the idle store: `timers` future timers at the default
 * level, a tenth as many of level 9 due within the next 9 minutes (their rank is already due, so
 * the scan walks them), and 5,000 visible activities and 5,000 visible starts at mixed levels;
 * then the EXPLAIN (ANALYZE, BUFFERS) of the orchestrator fetch's and the worker fetch's
 * candidate scans, as the procedures run them, and of the orchestrator scan once only the timers
 * are left (its worst case: it walks the level-9 timers whose rank is due, inside the index).
 *
 * Runs on a fresh schema of the server at DATABASE_URL (default postgres://root@127.0.0.1:5432/test),
 * dropped at the end.
 */
import { performance } from 'node:perf_hooks';
import { Client, PostgresProvider, Runtime } from '../src/index';
import { PgExecutor } from '../src/postgres/pg-executor';
import { quoteSchemaName } from '../src/store/schema-name';

const url = process.env.DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/test';
const LEVELS = [0, 3, 6, 9];
const BURST = 20;
const BURST_EVERY_MS = 20;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The candidate scan of fetch_orchestration_items (start rule and lock filter included). */
function orchestratorScan(q: string): string {
  return `EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF)
    WITH clock AS MATERIALIZED (SELECT ${q}.internal_wall_clock_ms() AS now_ms)
    SELECT o.instance_id FROM ${q}.orchestrator_queue o
    WHERE o.rank_ms <= (SELECT c.now_ms FROM clock c)
      AND o.visible_at_ms <= (SELECT c.now_ms FROM clock c)
      AND NOT EXISTS (SELECT 1 FROM ${q}.instance_locks l
                      WHERE l.instance_id = o.instance_id AND l.locked_until_ms > (SELECT ${q}.internal_wall_clock_ms()))
      AND (EXISTS (SELECT 1 FROM ${q}.instances i WHERE i.instance_id = o.instance_id OFFSET 0)
           OR EXISTS (SELECT 1 FROM ${q}.orchestrator_queue s
                      WHERE s.instance_id = o.instance_id AND s.visible_at_ms <= (SELECT ${q}.internal_wall_clock_ms())
                        AND s.kind IN ('StartOrchestration', 'ContinueAsNew') OFFSET 0))
    ORDER BY o.rank_ms, o.visible_at_ms, o.id LIMIT 1`;
}

/** The candidate scan of fetch_work_item for the default pool. */
function workerScan(q: string): string {
  return `EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF)
    WITH clock AS MATERIALIZED (SELECT ${q}.internal_wall_clock_ms() AS now_ms)
    SELECT w.id, w.session_id FROM ${q}.worker_queue w
    LEFT JOIN ${q}.sessions s ON s.session_id = w.session_id AND s.locked_until_ms > ${q}.internal_wall_clock_ms()
    WHERE w.rank_ms <= (SELECT c.now_ms FROM clock c)
      AND w.visible_at_ms <= (SELECT c.now_ms FROM clock c)
      AND (w.lock_token IS NULL OR w.locked_until_ms <= ${q}.internal_wall_clock_ms())
      AND w.tag IS NULL AND w.session_id IS NULL
    ORDER BY w.rank_ms, w.visible_at_ms, w.id LIMIT 1 FOR UPDATE OF w SKIP LOCKED`;
}

async function saturate(provider: PostgresProvider, count: number, slots: number, workMs: number): Promise<void> {
  const client = new Client(provider);
  const startedAt = new Map<string, number>();
  const waits = new Map<number, number[]>(LEVELS.map((level) => [level, []]));
  const runtime = new Runtime(provider, { orchestrationConcurrency: 1, workerConcurrency: slots, logLevel: 'error' });
  runtime.registerActivity('Work', async (_ctx, input: { id: string; level: number }) => {
    waits.get(input.level)!.push(performance.now() - startedAt.get(input.id)!);
    await sleep(workMs);
    return null;
  });
  runtime.registerOrchestration('Job', function* (ctx, input: { id: string; level: number }) {
    yield ctx.scheduleActivity('Work', input);
    return null;
  });
  await runtime.start();
  const ids: string[] = [];
  try {
    const began = performance.now();
    for (let n = 0; n < count; n += BURST) {
      await Promise.all(
        Array.from({ length: Math.min(BURST, count - n) }, async (_, k) => {
          const id = `job-${n + k}`;
          const level = LEVELS[(n + k) % LEVELS.length];
          ids.push(id);
          await client.startOrchestration(id, 'Job', { id, level }, { priority: level });
          startedAt.set(id, performance.now());
        }),
      );
      const next = began + ((n + BURST) / BURST) * BURST_EVERY_MS;
      await sleep(Math.max(0, next - performance.now()));
    }
    for (const id of ids) await client.waitForOrchestration(id, 120_000);
    const seconds = (performance.now() - began) / 1000;
    console.log(
      `saturation: ${count} one-activity orchestrations started at ${(1000 * BURST) / BURST_EVERY_MS}/s, ` +
        `${slots} activity slots of ${workMs} ms, 1 turn worker; drained in ${seconds.toFixed(1)} s`,
    );
    console.log('level  orchestrations  waitP50Ms  waitP99Ms  waitMaxMs');
    for (const level of [...LEVELS].reverse()) {
      const sorted = [...waits.get(level)!].sort((a, b) => a - b);
      console.log(
        `${String(level).padEnd(5)}  ${String(sorted.length).padEnd(14)}  ${percentile(sorted, 50).toFixed(0).padEnd(9)}  ` +
          `${percentile(sorted, 99).toFixed(0).padEnd(9)}  ${sorted[sorted.length - 1].toFixed(0)}`,
      );
    }
  } finally {
    await runtime.shutdown(1000);
  }
}

async function explainWithBacklog(admin: PgExecutor, q: string, timers: number): Promise<void> {
  await admin.query(`DELETE FROM ${q}.orchestrator_queue`);
  await admin.query(`DELETE FROM ${q}.worker_queue`);
  const now = `${q}.internal_current_time_ms()`;
  // Future timers at the default level (rank = fire time, never walked) and at level 9 due within
  // 9 minutes (rank already due: walked, skipped inside the index by visible_at_ms).
  await admin.query(
    `INSERT INTO ${q}.orchestrator_queue (instance_id, kind, work_item, visible_at_ms, created_at_ms, priority)
     SELECT 'timer-' || g, 'TimerFired', '{}', ${now} + 60000 + g, ${now}, 0 FROM generate_series(1, $1::int) g`,
    [timers],
  );
  await admin.query(
    `INSERT INTO ${q}.orchestrator_queue (instance_id, kind, work_item, visible_at_ms, created_at_ms, priority)
     SELECT 'soon-' || g, 'TimerFired', '{}', ${now} + 30000 + (g * 200) % 500000, ${now}, 9
     FROM generate_series(1, $1::int) g`,
    [Math.floor(timers / 10)],
  );
  await admin.query(
    `INSERT INTO ${q}.orchestrator_queue (instance_id, kind, work_item, visible_at_ms, created_at_ms, priority)
     SELECT 'start-' || g, 'StartOrchestration', '{}', ${now} - g, ${now}, (g % 4) * 3 FROM generate_series(1, 5000) g`,
  );
  await admin.query(
    `INSERT INTO ${q}.worker_queue (work_item, instance_id, execution_id, activity_id, visible_at_ms, created_at_ms, priority)
     SELECT '{}', 'w-' || g, 1, 1, ${now} - g, ${now}, (g % 4) * 3 FROM generate_series(1, 5000) g`,
  );
  await admin.query(`ANALYZE ${q}.orchestrator_queue`);
  await admin.query(`ANALYZE ${q}.worker_queue`);
  const plan = async (sql: string): Promise<string> =>
    (await admin.query(sql)).map((row) => `    ${String(row['QUERY PLAN'])}`).join('\n');
  console.log(
    `\nbacklog: ${timers} future timers at level 0, ${Math.floor(timers / 10)} of level 9 due within 9 min, ` +
      '5,000 visible starts and 5,000 visible activities at levels 0/3/6/9',
  );
  console.log(`  EXPLAIN of the orchestrator fetch's candidate scan:\n${await plan(orchestratorScan(q))}`);
  console.log(`  EXPLAIN of the worker fetch's candidate scan:\n${await plan(workerScan(q))}`);
  // The worst case: nothing visible, so the scan walks every level-9 timer whose rank is due.
  await admin.query(`DELETE FROM ${q}.orchestrator_queue WHERE kind = 'StartOrchestration'`);
  console.log(`  EXPLAIN of the orchestrator fetch's candidate scan, timers only:\n${await plan(orchestratorScan(q))}`);
}

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 800);
  const slots = Number(process.argv[3] ?? 2);
  const workMs = Number(process.argv[4] ?? 10);
  const timers = Number(process.argv[5] ?? 20_000);
  const schema = `prio_bench_${process.pid}`;
  const quoted = quoteSchemaName(schema, 'bench');
  // One connection, whose search_path lets the internal helpers (which inherit their caller's
  // path) find the schema's tables in the EXPLAINed statements.
  const admin = PgExecutor.fromUrl(url, 1);
  const provider = await PostgresProvider.connectWithSchema(url, schema);
  try {
    await saturate(provider, count, slots, workMs);
    await admin.query(`SET search_path TO ${quoted}, pg_catalog`);
    await explainWithBacklog(admin, quoted, timers);
  } finally {
    await provider.close();
    await admin.query(`DROP SCHEMA IF EXISTS ${quoted} CASCADE`);
    await admin.close();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
