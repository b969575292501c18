/**
 * Child process of the backlog scenario: one runtime on an already migrated schema. Prints
 * `READY`, starts its runtime on `GO` (stdin), and on `STOP` shuts down and prints one JSON line
 * with its peak RSS and provider calls.
 *
 *   node dist/bench/backlog-worker.js <databaseUrl> <schema>
 */
import { createInterface } from 'node:readline';
import { Runtime, safetyFetchHits } from '../src/index';
import { PgExecutor } from '../src/postgres/pg-executor';
import { ProcedureProvider } from '../src/store/procedure-provider';

async function main(): Promise<void> {
  const [url, schema] = process.argv.slice(2);
  if (url === undefined || schema === undefined) throw new Error('usage: backlog-worker <databaseUrl> <schema>');
  let calls = 0;
  const executor = PgExecutor.fromUrl(url);
  const provider = new ProcedureProvider(
    {
      query: (text, params) => ((calls += 1), executor.query(text, params)),
      withSession: (w) => executor.withSession(w),
      close: () => executor.close(),
      subscribe: (t, e) => executor.subscribe(t, e),
    },
    schema,
    'postgres',
  );
  const runtime = new Runtime(provider, { logLevel: 'warn' });
  runtime.registerActivity('Noop', (_ctx, input: unknown) => input);
  runtime.registerOrchestration('One', function* (ctx, input: number) {
    return (yield ctx.scheduleActivity('Noop', input)) as number;
  });
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
  const lines = createInterface({ input: process.stdin });
  process.stdout.write('READY\n');
  for await (const line of lines) {
    if (line === 'GO') await runtime.start();
    if (line === 'STOP') break;
  }
  await runtime.shutdown(1000);
  clearInterval(sampler);
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  const hits = safetyFetchHits();
  const lostWakeups = hits.orchestrator.unannounced + hits.worker.unannounced;
  process.stdout.write(
    `${JSON.stringify({ peakRssMb: Math.round(peakRss / 1048576), providerCalls: calls, lostWakeups })}\n`,
  );
  await provider.close();
  lines.close();
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
