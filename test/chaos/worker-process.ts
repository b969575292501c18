/**
 * A worker process of the chaos tests: a runtime with the chaos workload on the schema given as
 * argv[3] of the database argv[2]. Prints `ready` once started, one line per activity start and
 * end, and one line per turn fetched and acknowledged (or abandoned), so the driver knows what was in
 * flight when it killed the process.
 */
import type { Provider } from '../../src/provider/contract';
import { registerWorkload } from './workload';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const durox: typeof import('../../src/index') = require('durox');

async function main(): Promise<void> {
  const [, , databaseUrl, schema] = process.argv;
  const provider = announcingTurns(await durox.PostgresProvider.connectWithSchema(databaseUrl, schema));
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

/** The provider, printing `turn+ <lock>` when a turn is fetched and `turn- <lock>` when it is settled. */
function announcingTurns(target: Provider): Provider {
  const settle =
    (name: 'ackOrchestrationItem' | 'abandonOrchestrationItem') =>
    async (lockToken: string, ...rest: unknown[]): Promise<void> => {
      try {
        await (target[name] as (...a: unknown[]) => Promise<void>).call(target, lockToken, ...rest);
      } finally {
        process.stdout.write(`turn- ${lockToken}\n`);
      }
    };
  const overrides: Partial<Record<keyof Provider, unknown>> = {
    fetchOrchestrationItem: async (options: { lockTimeoutMs: number }) => {
      const item = await target.fetchOrchestrationItem(options);
      if (item !== null) process.stdout.write(`turn+ ${item.lockToken}\n`);
      return item;
    },
    ackOrchestrationItem: settle('ackOrchestrationItem'),
    abandonOrchestrationItem: settle('abandonOrchestrationItem'),
  };
  return new Proxy(target, {
    get(object, key) {
      if (typeof key === 'string' && key in overrides) return overrides[key as keyof Provider];
      const value = Reflect.get(object, key, object) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(object) : value;
    },
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
