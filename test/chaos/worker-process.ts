/**
 * A worker process of the chaos tests: a runtime with the chaos workload on the schema given as
 * argv[3] of the database argv[2]. Prints `ready` once started and one line per activity start and
 * end, so the driver knows what was in flight when it killed the process.
 */
import { registerWorkload } from './workload';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const durox: typeof import('../../src/index') = require('durox');

async function main(): Promise<void> {
  const [, , databaseUrl, schema] = process.argv;
  const provider = await durox.PostgresProvider.connectWithSchema(databaseUrl, schema);
  const runtime = new durox.Runtime(provider, {
    workerLockTimeoutMs: 2000,
    dispatcherPollIntervalMs: 20,
    orchestrationConcurrency: 4,
    workerConcurrency: 8,
    logLevel: 'error',
  });
  registerWorkload(runtime, (line) => process.stdout.write(`${line}\n`));
  await runtime.start();
  process.stdout.write('ready\n');
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
