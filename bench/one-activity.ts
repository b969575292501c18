/**
 * Wall time of a one-activity orchestration from `startOrchestration` to the moment
 * `waitForOrchestration` returns, on the local PostgreSQL server: median (and p90) of 50 runs,
 * for a few dispatcher poll intervals. Run: `npm run build && node dist/bench/one-activity.js`.
 */
import { randomBytes } from 'node:crypto';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const durox = require('durox') as typeof import('../src/index');

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/test';
const RUNS = 50;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
}

async function measure(pollMs: number): Promise<{ pollMs: number; medianMs: number; p90Ms: number; minMs: number }> {
  const provider = await durox.PostgresProvider.connectWithSchema(
    DATABASE_URL,
    `bench_${randomBytes(4).toString('hex')}`,
  );
  const client = new durox.Client(provider);
  const runtime = new durox.Runtime(provider, { dispatcherPollIntervalMs: pollMs, logLevel: 'warn' });
  runtime.registerActivity('Noop', (_ctx, input: number) => input);
  runtime.registerOrchestration('OneActivity', function* (ctx, input: number) {
    return (yield ctx.scheduleActivity('Noop', input)) as number;
  });
  await runtime.start();
  const times: number[] = [];
  try {
    for (let i = 0; i < RUNS + 3; i++) {
      const id = `bench-${i}`;
      const started = process.hrtime.bigint();
      await client.startOrchestration(id, 'OneActivity', i);
      const status = await client.waitForOrchestration(id, 30_000);
      const elapsed = Number(process.hrtime.bigint() - started) / 1e6;
      if (status.status !== 'Completed') throw new Error(`run ${i} ended ${status.status}: ${status.error}`);
      if (i >= 3) times.push(elapsed); // the first runs warm up connections and JIT
    }
  } finally {
    await runtime.shutdown(100);
    await provider.close();
  }
  times.sort((a, b) => a - b);
  const round = (n: number): number => Math.round(n * 10) / 10;
  return {
    pollMs,
    medianMs: round(percentile(times, 50)),
    p90Ms: round(percentile(times, 90)),
    minMs: round(times[0]),
  };
}

async function main(): Promise<void> {
  for (const pollMs of [100, 20, 5]) {
    const result = await measure(pollMs);
    process.stdout.write(
      `${JSON.stringify({ benchmark: '1-activity orchestration, start to completion', runs: RUNS, ...result })}\n`,
    );
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
