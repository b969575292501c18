/**
 * `npm start`: runs the order-processing demo on the embedded store (no setup), or on a
 * PostgreSQL server with `--database postgres://...`.
 *
 *   node dist/src/demo/main.js [--orders 60] [--data-dir .durox-data/demo]
 *                              [--database postgres://user@host/db] [--keep-running]
 */
import { Client } from '../client/client';
import { PGliteProvider } from '../pglite/pglite-provider';
import { PostgresProvider } from '../postgres/postgres-provider';
import type { Provider } from '../provider/contract';
import { Runtime } from '../runtime/runtime';
import { APPROVAL_EVENT, makeOrder, ORDER_ORCHESTRATION, OrderDemoWorld, registerOrderDemo } from './order-demo';
import { ProgressTracker } from './progress';
import { DEFAULT_DATA_DIR, DEMO_SCHEMA } from './settings';

interface DemoOptions {
  orders: number;
  dataDir: string;
  database: string | undefined;
  keepRunning: boolean;
}

const USAGE = `usage: npm start -- [--orders N] [--data-dir DIR] [--database postgres://...] [--keep-running]
  --orders N         orders to process (default 60)
  --data-dir DIR     embedded store directory (default ${DEFAULT_DATA_DIR})
  --database URL     run against a PostgreSQL server instead (schema ${DEMO_SCHEMA})
  --keep-running     keep the runtime up after the run (Ctrl+C to stop)`;

function parseArgs(argv: string[]): DemoOptions {
  const options: DemoOptions = { orders: 60, dataDir: DEFAULT_DATA_DIR, database: undefined, keepRunning: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = (): string => {
      const next = argv[++i];
      if (next === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
      return next;
    };
    if (flag === '--orders') {
      options.orders = Number(value());
      if (!Number.isInteger(options.orders) || options.orders < 1)
        throw new Error(`--orders must be a positive integer\n${USAGE}`);
    } else if (flag === '--data-dir') options.dataDir = value();
    else if (flag === '--database') options.database = value();
    else if (flag === '--keep-running') options.keepRunning = true;
    else if (flag === '--help' || flag === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else throw new Error(`unknown option ${flag}\n${USAGE}`);
  }
  return options;
}

async function openProvider(options: DemoOptions): Promise<{ provider: Provider; where: string; inspect: string }> {
  if (options.database !== undefined) {
    const provider = await PostgresProvider.connectWithSchema(options.database, DEMO_SCHEMA);
    return {
      provider,
      where: `PostgreSQL ${options.database.replace(/:[^:@/]*@/, ':***@')} (schema ${DEMO_SCHEMA})`,
      inspect: `node dist/src/cli/main.js --database ${options.database} --schema ${DEMO_SCHEMA}`,
    };
  }
  const provider = await PGliteProvider.open(options.dataDir);
  return {
    provider,
    where: `embedded PostgreSQL (PGlite) in ${provider.location}`,
    inspect: `node dist/src/cli/main.js --data-dir ${options.dataDir}`,
  };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function table(rows: Array<[string, string]>): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  const valueWidth = Math.max(...rows.map(([, v]) => v.length));
  const rule = `+-${'-'.repeat(width)}-+-${'-'.repeat(valueWidth)}-+`;
  return [rule, ...rows.map(([k, v]) => `| ${k.padEnd(width)} | ${v.padStart(valueWidth)} |`), rule].join('\n');
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const openedAt = Date.now();
  const { provider, where, inspect } = await openProvider(options);
  const openMs = Date.now() - openedAt;
  process.stdout.write(`Durox order demo: ${options.orders} orders on ${where} (opened in ${openMs} ms)\n`);

  const world = new OrderDemoWorld();
  // Guard mode: an async orchestration that awaits anything but ctx tasks fails loudly.
  const runtime = new Runtime(provider, {
    orchestrationConcurrency: 4,
    workerConcurrency: 8,
    logLevel: 'error',
    asyncOrchestrationGuards: true,
  });
  registerOrderDemo(runtime, world);
  await runtime.start();
  const client = new Client(provider);
  const progress = new ProgressTracker();

  // The "manager": approves each order shortly after the workflow asks for it.
  world.on('approvalRequested', (orderId) => {
    progress.set(orderId, 'awaiting-approval');
    setTimeout(() => {
      client
        .raiseEvent(orderId, APPROVAL_EVENT, { approvedBy: 'demo-manager' })
        .then(() => progress.set(orderId, 'running'))
        .catch((error: Error) => process.stderr.write(`approval of ${orderId} failed: ${error.message}\n`));
    }, 150);
  });

  const runId = Date.now().toString(36);
  const orders = Array.from({ length: options.orders }, (_, i) => makeOrder(runId, i + 1));
  for (const order of orders) progress.set(order.orderId, 'queued');
  progress.start();

  const latencies: number[] = [];
  const outcomes = await Promise.all(
    orders.map(async (order) => {
      const startedAt = Date.now();
      await client.startOrchestration(order.orderId, ORDER_ORCHESTRATION, order);
      progress.set(order.orderId, 'running');
      const status = await client.waitForOrchestration(order.orderId, 120_000);
      latencies.push(Date.now() - startedAt);
      progress.set(order.orderId, status.status === 'Completed' ? 'completed' : 'failed');
      return { order, status };
    }),
  );
  progress.stop();

  const counts = progress.counts();
  const elapsedMs = progress.elapsedMs();
  latencies.sort((a, b) => a - b);
  const retried = [...world.paymentAttempts.values()].filter((attempts) => attempts > 1).length;
  const metrics = await client.getSystemMetrics();
  const sample = outcomes.find((o) => o.status.status === 'Completed');
  const firstFailure = outcomes.find((o) => o.status.status !== 'Completed');
  process.stdout.write(
    `\n${table([
      ['orders completed', String(counts.completed)],
      ['orders failed', String(counts.failed)],
      ['payments retried after a failure', String(retried)],
      ['activities executed', String(world.activitiesRun)],
      ['wall time', `${(elapsedMs / 1000).toFixed(2)} s`],
      ['orchestrations / s', (outcomes.length / (elapsedMs / 1000)).toFixed(1)],
      ['order latency p50', `${percentile(latencies, 50)} ms`],
      ['order latency p95', `${percentile(latencies, 95)} ms`],
      ['instances in the store (all runs)', String(metrics.totalInstances)],
      ['history events in the store', String(metrics.totalEvents)],
    ])}\n`,
  );
  if (sample !== undefined) {
    process.stdout.write(`\nexample result (${sample.order.orderId}): ${JSON.stringify(sample.status.output)}\n`);
  }
  if (firstFailure !== undefined) {
    process.stdout.write(
      `\nfirst failure (${firstFailure.order.orderId}): ${firstFailure.status.error ?? 'unknown'}\n`,
    );
  }
  process.stdout.write(
    `\ndata: ${where}\ninspect (the durox CLI; stop a --keep-running demo first on the embedded store):\n` +
      `  ${inspect} list\n  ${inspect} history ${orders[0].orderId}\n`,
  );

  if (options.keepRunning) {
    process.stdout.write('\nruntime still running (--keep-running); press Ctrl+C to stop.\n');
    await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
  }
  await runtime.shutdown(200);
  await provider.close();
  process.exitCode = counts.failed === 0 ? 0 : 1;
}

main().catch((error: Error) => {
  process.stderr.write(`demo failed: ${error.message}\n`);
  process.exit(1);
});
