/**
 * A real store for the operator tests: a fresh PostgreSQL schema with a running Runtime and a few
 * instances in every state. Ids, inputs and errors hold HTML and script on purpose, so every
 * screen and output must escape them.
 */
import { randomBytes } from 'node:crypto';
import { Client } from '../../src/client/client';
import { PostgresProvider } from '../../src/postgres';
import { quoteSchemaName } from '../../src/store/schema-name';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { Runtime } from '../../src/runtime/runtime';
import type { Provider } from '../../src/provider/contract';

export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/test';

/** Markup that must never be interpreted. */
export const HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>';

export interface OperatorsFixture {
  schema: string;
  provider: Provider;
  client: Client;
  runtime: Runtime;
  ids: { completed: string; failed: string; waiting: string; parent: string; child: string; hostile: string };
  /** Starts another instance waiting for event `go` and returns its id once it is running. */
  startWaiter(prefix: string): Promise<string>;
  close(): Promise<void>;
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Creates the schema, runs the instances to their states and returns the handles. */
export async function createOperatorsFixture(prefix: string): Promise<OperatorsFixture> {
  const schema = `${prefix}_${randomBytes(4).toString('hex')}`;
  const provider = await PostgresProvider.connectWithSchema(DATABASE_URL, schema);
  const client = new Client(provider);
  const runtime = new Runtime(provider, { dispatcherPollIntervalMs: 20, logLevel: 'error' });
  runtime.registerActivity('Echo', (_ctx, input: unknown) => input);
  runtime.registerOrchestration('Hello', function* (ctx, input: { name: string }) {
    const echoed = (yield ctx.scheduleActivity('Echo', input.name)) as string;
    ctx.setCustomStatus(`greeted ${echoed}`);
    return { greeting: `hello ${echoed}` };
  });
  runtime.registerOrchestration('Boom', function* (ctx, input: { message: string }) {
    yield ctx.scheduleActivity('Echo', 1);
    throw new Error(input.message);
  });
  runtime.registerOrchestration('Waiter', function* (ctx) {
    ctx.setCustomStatus('waiting for go');
    return yield ctx.waitForEvent('go');
  });
  runtime.registerOrchestration('Parent', function* (ctx, childId: string) {
    return yield ctx.scheduleSubOrchestrationWithId('Hello', childId, { name: 'child' });
  });
  await runtime.start();

  const tag = randomBytes(2).toString('hex');
  const ids = {
    completed: `done-${tag}`,
    failed: `failed-${tag}`,
    waiting: `waiting-${tag}`,
    parent: `parent-${tag}`,
    child: `parent-${tag}-child`,
    hostile: `${HOSTILE}-${tag}`,
  };
  await client.startOrchestration(ids.completed, 'Hello', { name: 'Ada' });
  await client.startOrchestration(ids.failed, 'Boom', { message: `exploded ${HOSTILE}` });
  await client.startOrchestration(ids.waiting, 'Waiter', null);
  await client.startOrchestration(ids.parent, 'Parent', ids.child, { priority: 3 });
  await client.startOrchestration(ids.hostile, 'Boom', { message: HOSTILE });
  const settled: Record<string, string> = {
    [ids.completed]: 'Completed',
    [ids.failed]: 'Failed',
    [ids.waiting]: 'Running',
    [ids.parent]: 'Completed',
    [ids.hostile]: 'Failed',
  };
  for (const [id, status] of Object.entries(settled)) {
    await until(async () => (await client.getStatus(id)).status === status, `${id} to be ${status}`);
  }
  await until(
    async () => (await client.getStatus(ids.waiting)).customStatus === 'waiting for go',
    'the waiter to subscribe',
  );

  return {
    schema,
    provider,
    client,
    runtime,
    ids,
    async startWaiter(waiterPrefix: string): Promise<string> {
      const id = `${waiterPrefix}-${randomBytes(3).toString('hex')}`;
      await client.startOrchestration(id, 'Waiter', null);
      await until(async () => (await client.getStatus(id)).customStatus === 'waiting for go', `${id} to wait`);
      return id;
    },
    async close(): Promise<void> {
      await runtime.shutdown(2000);
      await provider.close();
      // Test cleanup only: drop the scratch schema (validated name).
      const admin = PgExecutor.fromUrl(DATABASE_URL, 1);
      await admin.query(`DROP SCHEMA IF EXISTS ${quoteSchemaName(schema, 'test')} CASCADE`);
      await admin.close();
    },
  };
}
