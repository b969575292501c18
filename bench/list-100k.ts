/**
 * Time of the operators' instance list with 100,000 instances (not a test). Seeds a scratch
 * schema, then times Client.listInstancesPage (first page, a deep page, each filter) and
 * prints the query plans of the statements list_instances_page runs.
 *
 *   npm run build && node dist/bench/list-100k.js
 *
 * Seeding writes the instances and executions tables with one INSERT ... SELECT each: running
 * 100,000 orchestrations through the runtime would take minutes and measure something else.
 * Those statements, the EXPLAINs and the final DROP SCHEMA are bench scaffolding on a validated
 * schema name, never product code.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Client } from '../src/client/client';
import { applyMigrations } from '../src/store/migrations';
import { PgExecutor } from '../src/postgres/pg-executor';
import { ProcedureProvider } from '../src/store/procedure-provider';
import { quoteSchemaName } from '../src/store/schema-name';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/test';
const INSTANCES = 100_000;
const RUNS = 20;

async function timeMs(work: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const start = process.hrtime.bigint();
    await work();
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

async function main(): Promise<void> {
  const schema = `bench_list_${randomBytes(4).toString('hex')}`;
  const quoted = quoteSchemaName(schema, 'bench');
  const admin = PgExecutor.fromUrl(DATABASE_URL, 2);
  await applyMigrations(admin, schema);
  const provider = new ProcedureProvider(PgExecutor.fromUrl(DATABASE_URL, 2), schema, 'postgres');
  const client = new Client(provider);
  try {
    const seedStart = Date.now();
    const base = Date.now() - INSTANCES * 1000;
    await admin.query(
      `INSERT INTO ${quoted}.instances (instance_id, orchestration_name, orchestration_version, current_execution_id,
                                        created_at_ms, updated_at_ms)
       SELECT 'inst-' || lpad(g::text, 6, '0'), 'Orch' || (g % 20), '1.0.0', 1, $1::bigint + g * 1000, $1::bigint + g * 1000
       FROM generate_series(1, $2::int) g`,
      [base, INSTANCES],
    );
    await admin.query(
      `INSERT INTO ${quoted}.executions (instance_id, execution_id, status, output, started_at_ms, completed_at_ms)
       SELECT 'inst-' || lpad(g::text, 6, '0'), 1,
              CASE WHEN g % 10 = 0 THEN 'Failed' WHEN g % 10 < 4 THEN 'Running' ELSE 'Completed' END,
              CASE WHEN g % 10 = 0 THEN 'boom ' || g WHEN g % 10 >= 4 THEN '"ok"' END,
              $1::bigint + g * 1000, CASE WHEN g % 10 < 4 AND g % 10 <> 0 THEN NULL ELSE $1::bigint + g * 1000 + 500 END
       FROM generate_series(1, $2::int) g`,
      [base, INSTANCES],
    );
    await admin.query(`ANALYZE ${quoted}.instances`);
    await admin.query(`ANALYZE ${quoted}.executions`);
    console.log(`seeded ${INSTANCES} instances in ${Date.now() - seedStart} ms (schema ${schema})`);

    const first = await client.listInstancesPage({ limit: 50 });
    let cursor = first.nextCursor ?? undefined;
    for (let i = 0; i < 200 && cursor !== undefined; i++)
      cursor = (await client.listInstancesPage({ limit: 50, cursor })).nextCursor ?? undefined;
    const cases: Array<[string, () => Promise<unknown>]> = [
      ['first page (50)', () => client.listInstancesPage({ limit: 50 })],
      ['page 201 (cursor)', () => client.listInstancesPage({ limit: 50, cursor })],
      ['status=Failed', () => client.listInstancesPage({ limit: 50, status: 'Failed' })],
      ['status=ContinuedAsNew (none)', () => client.listInstancesPage({ limit: 50, status: 'ContinuedAsNew' })],
      ['name=Orch7', () => client.listInstancesPage({ limit: 50, orchestrationName: 'Orch7' })],
      [
        'created range',
        () => client.listInstancesPage({ limit: 50, createdFrom: base + 10_000_000, createdTo: base + 20_000_000 }),
      ],
      ['page of 1000', () => client.listInstancesPage({ limit: 1000 })],
      ['throughput 1h/1min', () => client.getThroughput(Date.now() - 3_600_000, 60_000)],
    ];
    for (const [name, work] of cases)
      console.log(`${name.padEnd(30)} median ${(await timeMs(work)).toFixed(2)} ms over ${RUNS} runs`);

    // The whole CLI: process start, connect (migrations already applied), one page, print.
    const bin = join(__dirname, '..', 'src', 'bin', 'durox.js');
    const cli = (args: string[]) => async () =>
      execFileSync(process.execPath, [bin, '--database', DATABASE_URL, '--schema', schema, ...args], { stdio: 'pipe' });
    for (const args of [['list'], ['list', '--status', 'Failed'], ['--json', 'list', '--limit', '1000']]) {
      const start = process.hrtime.bigint();
      const runs = 5;
      for (let i = 0; i < runs; i++) await cli(args)();
      console.log(
        `${`durox ${args.join(' ')}`.padEnd(30)} ` +
          `${(Number(process.hrtime.bigint() - start) / 1e6 / runs).toFixed(0)} ms per ` +
          `process (mean of ${runs})`,
      );
    }

    // The plans: the same statement shapes list_instances_page assembles, run through EXPLAIN.
    const plans: Array<[string, string, unknown[]]> = [
      ['status=Failed', 'e.status = $1', ['Failed']],
      ['status=ContinuedAsNew', 'e.status = $1', ['ContinuedAsNew']],
      ['status=Running', '(e.status = $1 OR e.status IS NULL)', ['Running']],
      ['name', 'i.orchestration_name = $1', ['Orch7']],
      ['cursor', '(i.created_at_ms, i.instance_id) < ($1, $2)', [base + 50_000_000, 'inst-050000']],
    ];
    await admin.query('SET max_parallel_workers_per_gather = 0');
    for (const [name, where, params] of plans) {
      const rows = await admin.query(
        `EXPLAIN (ANALYZE, COSTS OFF) SELECT i.instance_id FROM ${quoted}.instances i
         LEFT JOIN ${quoted}.executions e ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id
         WHERE ${where} ORDER BY i.created_at_ms DESC, i.instance_id DESC LIMIT 50`,
        params,
      );
      console.log(`\n-- plan: ${name}\n${rows.map((r) => String(r['QUERY PLAN'])).join('\n')}`);
    }
  } finally {
    await provider.close();
    await admin.query(`DROP SCHEMA IF EXISTS ${quoted} CASCADE`);
    await admin.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
