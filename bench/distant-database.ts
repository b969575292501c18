/**
 * One chain of sequential activities against a distant database: every byte between Durox and
 * PostgreSQL goes through `bench/latency-proxy.ts`, which delays it by `delayMs` each way, so a
 * round trip costs `2 x delayMs`. With the defaults (90 ms each way, 180 ms per round trip, 5
 * activities) this is the case the project's design notes start from: each round trip a step saves
 * is 180 ms the user waits less.
 *
 * `node dist/bench/distant-database.js [delayMs=90] [activities=5] [runs=4]`: a Runtime and a
 * Client with their defaults on one provider, `runs` orchestrations one after the other (the first
 * includes warming the connections), each timed from start to `waitForOrchestration` returning.
 * Prints one JSON document.
 */
import { performance } from 'node:perf_hooks';
import { Client, PostgresProvider, Runtime } from '../src/index';
import { PgExecutor } from '../src/postgres/pg-executor';
import { quoteSchemaName } from '../src/store/schema-name';
import { LatencyProxy } from './latency-proxy';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/test';
const [delayMs, activities, runs] = [2, 3, 4].map((i, n) => Number(process.argv[i] ?? [90, 5, 4][n]));

async function main(): Promise<void> {
  const server = new URL(DATABASE_URL);
  const proxy = await LatencyProxy.start(server.hostname, Number(server.port || 5432), delayMs);
  const schema = `bench_distant_${process.pid}`;
  const viaProxy = new URL(DATABASE_URL);
  viaProxy.hostname = '127.0.0.1';
  viaProxy.port = String(proxy.port);
  const provider = await PostgresProvider.connectWithSchema(viaProxy.toString(), schema);
  const runtime = new Runtime(provider, { logLevel: 'warn' });
  runtime.registerActivity('Step', (_ctx, input: number) => input + 1);
  runtime.registerOrchestration('Chain', function* (ctx, input: number) {
    let value = input;
    for (let i = 0; i < activities; i += 1) value = (yield ctx.scheduleActivity('Step', value)) as number;
    return value;
  });
  const client = new Client(provider);
  const millis: number[] = [];
  try {
    await runtime.start();
    for (let run = 0; run < runs; run += 1) {
      const id = `chain-${run}`;
      const started = performance.now();
      await client.startOrchestration(id, 'Chain', 0);
      const status = await client.waitForOrchestration(id, 120_000);
      millis.push(Math.round(performance.now() - started));
      if (String(status.output) !== String(activities))
        throw new Error(`${id} ended ${status.status} with ${String(status.output)}`);
    }
  } finally {
    await runtime.shutdown(1000);
    await provider.close();
    await proxy.close();
    const admin = PgExecutor.fromUrl(DATABASE_URL, 1);
    try {
      await admin.query(`DROP SCHEMA IF EXISTS ${quoteSchemaName(schema, 'bench')} CASCADE`);
    } finally {
      await admin.close();
    }
  }
  const warm = millis.slice(1).sort((a, b) => a - b);
  console.log(
    JSON.stringify(
      {
        roundTripMs: 2 * delayMs,
        activities,
        startToResultMs: millis,
        medianAfterFirstMs: warm.length === 0 ? null : warm[Math.floor(warm.length / 2)],
      },
      null,
      2,
    ),
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
