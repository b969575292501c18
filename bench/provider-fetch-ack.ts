/**
 * Median time of one orchestration turn (fetch_orchestration_item + ack_orchestration_item) on the
 * PostgreSQL server at DATABASE_URL, over ITERATIONS turns (default 1000), with round trips
 * counted on the driver. Each turn starts a new instance, so history size stays constant.
 *
 *   node dist/bench/provider-fetch-ack.js
 */
import { performance } from 'node:perf_hooks';
import { applyMigrations } from '../src/store/migrations';
import { PgExecutor } from '../src/postgres/pg-executor';
import { ProcedureProvider } from '../src/store/procedure-provider';
import { event, started, startItem, turn } from '../test/conformance/fixtures';
import { CountingExecutor } from '../test/helpers/counting-executor';
import { databaseUrl, uniqueSchemaName } from '../test/helpers/postgres-harness';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
}

async function main(): Promise<void> {
  const iterations = Number(process.env.ITERATIONS ?? 1000);
  const schema = uniqueSchemaName('bench');
  const counter = new CountingExecutor(PgExecutor.fromUrl(databaseUrl(), 2));
  await applyMigrations(counter, schema);
  const provider = new ProcedureProvider(counter, schema, 'postgres');
  const durations: number[] = [];
  let roundTrips = 0;
  try {
    for (let i = 0; i < iterations + 50; i += 1) {
      const id = `bench-${i}`;
      await provider.enqueueOrchestratorWork(startItem(id));
      counter.take();
      const begin = performance.now();
      const item = await provider.fetchOrchestrationItem({ lockTimeoutMs: 30_000 });
      if (item === null) throw new Error('no item fetched');
      await provider.ackOrchestrationItem(
        item.lockToken,
        turn(id, {
          historyDelta: [started(id), event(id, 1, 2, { kind: 'ActivityScheduled', name: 'A', input: '1' })],
        }),
      );
      const elapsed = performance.now() - begin;
      const trips = counter.take().length;
      if (i >= 50) {
        durations.push(elapsed);
        roundTrips += trips;
      }
    }
  } finally {
    await counter.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await provider.close();
  }
  durations.sort((a, b) => a - b);
  console.log(
    JSON.stringify({
      iterations,
      medianMs: Number(percentile(durations, 50).toFixed(3)),
      p95Ms: Number(percentile(durations, 95).toFixed(3)),
      roundTripsPerTurn: roundTrips / iterations,
    }),
  );
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
