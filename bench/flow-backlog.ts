/**
 * Backlog independence of flow control: the latency of fetch_work_item for free work, with and
 * without a large backlog of activities parked behind a saturated flow limit, and the cost of a
 * permit handed over (an ack of a limited activity with the backlog behind it). Prints p50/p99
 * per phase and the EXPLAIN (ANALYZE, BUFFERS) of the fetch's candidate scan in both states.
 *
 *   node dist/bench/flow-backlog.js [parked=100000] [samples=1000]
 *
 * Runs on a fresh schema of the server at DATABASE_URL (default postgres://root@127.0.0.1:5432/test),
 * dropped at the end. The backlog is enqueued through internal_flow_enqueue, the helper the turn
 * commit uses, in batches of 10,000.
 */
import { performance } from 'node:perf_hooks';
import type { ActivityExecuteItem } from '../src/core/types';
import { PgExecutor } from '../src/postgres/pg-executor';
import { applyMigrations } from '../src/store/migrations';
import { ProcedureProvider } from '../src/store/procedure-provider';
import { quoteSchemaName } from '../src/store/schema-name';

const url = process.env.DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/test';
const FETCH = { lockTimeoutMs: 600_000, tagFilter: { mode: 'defaultOnly' as const } };
const SATURATED_LIMIT = 10;

function item(instance: string, id: number, name: string): ActivityExecuteItem {
  return { type: 'ActivityExecute', instance, executionId: 1, id, name, input: '""', sessionId: null, tag: null };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function summary(label: string, samples: number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  return `${label.padEnd(44)} p50 ${percentile(sorted, 50).toFixed(3)} ms  p99 ${percentile(sorted, 99).toFixed(3)} ms  (n=${samples.length})`;
}

/** The candidate scan of fetch_work_item for the default pool, as the procedure runs it. */
function fetchScan(quoted: string): string {
  return `EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF)
    SELECT w.id, w.session_id FROM ${quoted}.worker_queue w
    LEFT JOIN ${quoted}.sessions s ON s.session_id = w.session_id AND s.locked_until_ms > ${quoted}.internal_wall_clock_ms()
    WHERE w.visible_at_ms <= (SELECT ${quoted}.internal_wall_clock_ms())
      AND (w.lock_token IS NULL OR w.locked_until_ms <= ${quoted}.internal_wall_clock_ms())
      AND w.tag IS NULL AND w.session_id IS NULL
    ORDER BY w.id LIMIT 1 FOR UPDATE OF w SKIP LOCKED`;
}

async function main(): Promise<void> {
  const parked = Number(process.argv[2] ?? 100_000);
  const samples = Number(process.argv[3] ?? 1000);
  const schema = `flow_bench_${process.pid}`;
  const quoted = quoteSchemaName(schema, 'bench');
  // The internal helpers resolve names in their caller's search_path: this bench calls some
  // directly, on connections whose path is the bench's schema.
  const inSchema = new URL(url);
  inSchema.searchParams.set('options', `-c search_path=${schema}`);
  const admin = PgExecutor.fromUrl(inSchema.toString(), 2);
  await applyMigrations(admin, schema);
  const provider = new ProcedureProvider(PgExecutor.fromUrl(url, 2), schema, 'postgres');
  try {
    const enqueueFree = async (count: number, prefix: string): Promise<void> => {
      for (let i = 0; i < count; i += 1) await provider.enqueueWorkerWork(item(`${prefix}-${i}`, 1, 'Free'));
    };
    const timedFetches = async (count: number): Promise<number[]> => {
      const times: number[] = [];
      for (let i = 0; i < count; i += 1) {
        const started = performance.now();
        const lease = await provider.fetchWorkItem(FETCH);
        times.push(performance.now() - started);
        if (lease === null) throw new Error('the fetch found no free work');
        await provider.ackWorkItem(lease.lockToken, null);
      }
      return times;
    };
    const explain = async (): Promise<string> =>
      (await admin.query(fetchScan(quoted))).map((row) => `    ${String(row['QUERY PLAN'])}`).join('\n');

    // Baseline: free work only, no limit anywhere.
    await enqueueFree(samples + 50, 'warm');
    await timedFetches(50);
    const baselinePlan = await explain();
    const baseline = await timedFetches(samples);

    // Backlog: one key saturated (its admitted activities held by a worker that never acks), the
    // rest parked; free work enqueued after it.
    await provider.setFlowLimit('activity:Saturated', { maxActive: SATURATED_LIMIT });
    const loadStarted = performance.now();
    for (let offset = 0; offset < parked + SATURATED_LIMIT; offset += 10_000) {
      const count = Math.min(10_000, parked + SATURATED_LIMIT - offset);
      const rows = Array.from({ length: count }, (_, i) => {
        const it = item(`sat-${offset + i}`, 1, 'Saturated');
        return { instanceId: it.instance, executionId: 1, activityId: 1, tag: null, workItem: JSON.stringify(it) };
      });
      await admin.query(`SELECT ${quoted}.internal_flow_enqueue($1::json, ${quoted}.internal_current_time_ms())`, [
        JSON.stringify(rows),
      ]);
    }
    const loadMs = performance.now() - loadStarted;
    const held = await provider.fetchWorkItems({ ...FETCH, maxItems: SATURATED_LIMIT });
    if (held.length !== SATURATED_LIMIT || held.some((l) => l.item.name !== 'Saturated')) {
      throw new Error(`expected the ${SATURATED_LIMIT} admitted Saturated items first, got ${held.length}`);
    }
    const [limit] = await provider.getFlowLimits();
    await admin.query(`ANALYZE ${quoted}.worker_queue`);
    await admin.query(`ANALYZE ${quoted}.flow_parked`);
    await enqueueFree(samples + 50, 'free');
    await timedFetches(50);
    const backlogPlan = await explain();
    const backlog = await timedFetches(samples);

    // Hand-overs: each ack of a held Saturated item gives its permit to the oldest parked one.
    const handovers: number[] = [];
    let current = held;
    for (let round = 0; handovers.length < Math.min(samples, parked); round += 1) {
      for (const lease of current) {
        const started = performance.now();
        await provider.ackWorkItem(lease.lockToken, null);
        handovers.push(performance.now() - started);
      }
      current = await provider.fetchWorkItems({ ...FETCH, maxItems: SATURATED_LIMIT });
    }
    await Promise.all(current.map((lease) => provider.ackWorkItem(lease.lockToken, null)));

    console.log(
      `flow backlog: ${parked} parked behind a limit of ${SATURATED_LIMIT} (loaded in ${loadMs.toFixed(0)} ms; limit reports active ${limit.active}, parked ${limit.parked})`,
    );
    console.log(summary('fetch of free work, no limit (baseline)', baseline));
    console.log(summary(`fetch of free work, ${parked} parked`, backlog));
    console.log(summary(`ack handing a permit over, ${parked} parked`, handovers));
    console.log(`  EXPLAIN of the fetch scan, baseline:\n${baselinePlan}`);
    console.log(`  EXPLAIN of the fetch scan, with the backlog:\n${backlogPlan}`);
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
