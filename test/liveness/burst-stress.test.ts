/**
 * Liveness under bursts, as a new user first meets Durox: a fresh runtime with its defaults runs
 * ten one-activity orchestrations one after the other, then forty orchestrations of five
 * sequential activities started at once. Twenty such rounds per store, each on a fresh store.
 *
 * No orchestration may take more than two seconds from its start to its completion (the whole
 * burst takes about one on this two-core machine), and nothing may reach a worker through the
 * ten-second safety fetch alone: a lost wake-up shows as one or the other.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Client, PGliteProvider, PostgresProvider, Runtime } from '../../src/index';
import { safetyFetchHits } from '../../src/runtime/liveness';
import { databaseUrl, uniqueSchemaName } from '../helpers/postgres-harness';
import { PgExecutor } from '../../src/postgres/pg-executor';

const ROUNDS = 20;
const SEQUENTIAL = 10;
const BURST = 40;
const STEPS = 5;
/**
 * Start-to-completion bound per store. The server's burst takes about 1 s; on PGlite the whole
 * burst runs in this process's one thread and takes 1.2-1.7 s by itself on this machine, so its
 * bound leaves room above that. A lost wake-up costs ~10 s (the safety fetch) and is also caught
 * exactly by the safety-fetch count below.
 */
const MAX_LATENCY_MS = { server: 2_000, PGlite: 3_000 } as const;

type Store = { provider: PostgresProvider | PGliteProvider; dispose: () => Promise<void> };

async function serverStore(): Promise<Store> {
  const schema = uniqueSchemaName('liveness');
  const provider = await PostgresProvider.connectWithSchema(databaseUrl(), schema);
  return {
    provider,
    dispose: async () => {
      await provider.close();
      const admin = PgExecutor.fromUrl(databaseUrl(), 1);
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await admin.close();
    },
  };
}

async function embeddedStore(): Promise<Store> {
  const provider = await PGliteProvider.inMemory();
  return { provider, dispose: () => provider.close() };
}

/** One round on a fresh store; returns every orchestration's start-to-completion time. */
async function round(open: () => Promise<Store>): Promise<number[]> {
  const { provider, dispose } = await open();
  const runtime = new Runtime(provider, { logLevel: 'warn' });
  runtime.registerActivity('Noop', (_ctx, input: unknown) => input);
  runtime.registerOrchestration('One', function* (ctx, input: number) {
    return yield ctx.scheduleActivity('Noop', input);
  });
  runtime.registerOrchestration('Steps', function* (ctx, input: number) {
    let value = input;
    for (let step = 0; step < STEPS; step += 1) value = yield ctx.scheduleActivity('Noop', value);
    return value;
  });
  await runtime.start();
  const client = new Client(provider);
  const timed = async (id: string, name: string, input: number): Promise<number> => {
    const started = Date.now();
    await client.startOrchestration(id, name, input);
    const result = await client.waitForOrchestration(id, 30_000);
    assert.equal(result.status, 'Completed', `${id}: ${JSON.stringify(result)}`);
    assert.equal(result.output, input);
    return Date.now() - started;
  };
  try {
    const latencies: number[] = [];
    for (let i = 0; i < SEQUENTIAL; i += 1) latencies.push(await timed(`one-${i}`, 'One', i));
    latencies.push(...(await Promise.all(Array.from({ length: BURST }, (_, i) => timed(`steps-${i}`, 'Steps', i)))));
    return latencies;
  } finally {
    await runtime.shutdown();
    await dispose();
  }
}

function lostWakeups(): number {
  const hits = safetyFetchHits();
  return hits.orchestrator.unannounced + hits.worker.unannounced;
}

for (const [name, open] of [
  ['server', serverStore],
  ['PGlite', embeddedStore],
] as const) {
  describe(
    `liveness: ${ROUNDS} fresh runtimes x (${SEQUENTIAL} in sequence, then ` +
      `${BURST} x ${STEPS} at once) on ${name}`,
    () => {
      it(`no orchestration takes more than ${MAX_LATENCY_MS[name]} ms and the safety fetch finds nothing`, async () => {
        // Unmeasured rounds first: they compile the code paths (and, on PGlite, the WASM engine).
        for (let i = 0; i < 2; i += 1) await round(open);
        const lostBefore = lostWakeups();
        let worst = 0;
        for (let i = 0; i < ROUNDS; i += 1) {
          const latencies = await round(open);
          worst = Math.max(worst, ...latencies);
          assert.ok(worst <= MAX_LATENCY_MS[name], `round ${i}: an orchestration took ${worst} ms`);
        }
        assert.equal(lostWakeups() - lostBefore, 0, 'items found only by the safety fetch');
        console.log(
          `# liveness ${name}: worst start-to-completion ${worst} ms over ` +
            `${ROUNDS * (SEQUENTIAL + BURST)} orchestrations`,
        );
      });
    },
  );
}
