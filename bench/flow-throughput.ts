/**
 * Throughput with flow limits on versus off: one runtime with its defaults runs `count`
 * orchestrations of `activities` sequential no-op activities, started at once, on a fresh schema
 * per round, three ways: no limit; a limit on the activity's key that never binds (maxActive
 * 10,000: every permit taken and handed back, nothing parked); a binding one (maxActive 4, below
 * the runtime's activity slots). Prints orchestrations per second (median of `rounds`).
 *
 *   node dist/bench/flow-throughput.js [count=40] [activities=5] [rounds=3]
 *
 * Runs on the server at DATABASE_URL (default postgres://root@127.0.0.1:5432/test).
 */
import { performance } from 'node:perf_hooks';
import { Client, PostgresProvider, Runtime } from '../src/index';
import { PgExecutor } from '../src/postgres/pg-executor';
import { quoteSchemaName } from '../src/store/schema-name';

const url = process.env.DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/test';

type Mode = { label: string; maxActive: number | null };
const MODES: Mode[] = [
  { label: 'no limit', maxActive: null },
  { label: 'limit that never binds (10,000)', maxActive: 10_000 },
  { label: 'binding limit (4)', maxActive: 4 },
];

async function round(mode: Mode, count: number, activities: number, index: number): Promise<number> {
  const schema = `flow_tp_${process.pid}_${index}`;
  const provider = await PostgresProvider.connectWithSchema(url, schema);
  const client = new Client(provider);
  if (mode.maxActive !== null) await client.setFlowLimit('activity:Noop', { maxActive: mode.maxActive });
  const runtime = new Runtime(provider, { logLevel: 'warn' });
  runtime.registerActivity('Noop', (_ctx, input: number) => input);
  runtime.registerOrchestration('Chain', function* (ctx, input: number) {
    let value = input;
    for (let i = 0; i < activities; i += 1) value = (yield ctx.scheduleActivity('Noop', value)) as number;
    return value;
  });
  await runtime.start();
  try {
    const started = performance.now();
    await Promise.all(Array.from({ length: count }, (_, i) => client.startOrchestration(`c-${i}`, 'Chain', i)));
    for (let i = 0; i < count; i += 1) {
      const result = await client.waitForOrchestration(`c-${i}`, 120_000);
      if (result.status !== 'Completed') throw new Error(`c-${i}: ${JSON.stringify(result)}`);
    }
    return count / ((performance.now() - started) / 1000);
  } finally {
    await runtime.shutdown(1000);
    await provider.close();
    const admin = PgExecutor.fromUrl(url, 1);
    await admin.query(`DROP SCHEMA IF EXISTS ${quoteSchemaName(schema, 'bench')} CASCADE`);
    await admin.close();
  }
}

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 40);
  const activities = Number(process.argv[3] ?? 5);
  const rounds = Number(process.argv[4] ?? 3);
  const results = new Map<string, number[]>(MODES.map((m) => [m.label, []]));
  let index = 0;
  // Modes interleaved round by round, so machine noise falls on all of them alike.
  for (let r = 0; r < rounds; r += 1) {
    for (const mode of MODES) results.get(mode.label)!.push(await round(mode, count, activities, index++));
  }
  console.log(`flow throughput: ${count} x ${activities} sequential activities, ${rounds} rounds (median)`);
  for (const [label, values] of results) {
    const sorted = [...values].sort((a, b) => a - b);
    console.log(
      `${label.padEnd(34)} ${sorted[Math.floor(sorted.length / 2)].toFixed(1)} orchestrations/s  (${values.map((v) => v.toFixed(1)).join(', ')})`,
    );
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
