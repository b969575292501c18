/**
 * Looks at what the demo stored: counts by status, or one instance's status and history.
 *
 *   node dist/src/demo/inspect.js [--data-dir DIR | --database URL] [instanceId]
 *
 * The embedded store admits one process at a time, so stop a `--keep-running` demo first.
 */
import { Client } from '../client/client';
import { PGliteProvider } from '../pglite/pglite-provider';
import { PostgresProvider } from '../postgres/postgres-provider';
import type { Provider } from '../provider/contract';
import { DEFAULT_DATA_DIR, DEMO_SCHEMA } from './settings';

async function open(argv: string[]): Promise<{ provider: Provider; instanceId: string | undefined }> {
  let dataDir = DEFAULT_DATA_DIR;
  let database: string | undefined;
  let instanceId: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--data-dir') dataDir = argv[++i] ?? dataDir;
    else if (argv[i] === '--database') database = argv[++i];
    else instanceId = argv[i];
  }
  const provider =
    database === undefined ? await PGliteProvider.open(dataDir) : await PostgresProvider.connectWithSchema(database, DEMO_SCHEMA);
  return { provider, instanceId };
}

async function main(): Promise<void> {
  const { provider, instanceId } = await open(process.argv.slice(2));
  const client = new Client(provider);
  try {
    if (instanceId === undefined) {
      const metrics = await client.getSystemMetrics();
      process.stdout.write(`${JSON.stringify(metrics, null, 2)}\n`);
      const failed = await client.listInstancesByStatus('Failed');
      if (failed.length > 0) process.stdout.write(`failed instances: ${failed.join(', ')}\n`);
      return;
    }
    const status = await client.getStatus(instanceId);
    process.stdout.write(`${instanceId}: ${status.status}${status.output === undefined ? '' : ` -> ${status.output}`}\n`);
    for (const executionId of await client.listExecutions(instanceId)) {
      for (const event of await client.readExecutionHistory(instanceId, executionId)) {
        process.stdout.write(`  #${event.eventId} ${event.kind}${event.data === undefined ? '' : ` ${event.data}`}\n`);
      }
    }
  } finally {
    await provider.close();
  }
}

main().catch((error: Error) => {
  process.stderr.write(`inspect failed: ${error.message}\n`);
  process.exit(1);
});
