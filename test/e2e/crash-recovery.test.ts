import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  DATABASE_URL,
  durox,
  eventually,
  historyKinds,
  schemaFor,
  startRuntime,
  uid,
  type Client,
  type Provider,
  type Runtime,
} from './helpers';
import { dropTestSchema } from '../helpers/postgres-harness';

let provider: Provider;
let client: Client;
let schema: string;
const runtimes: Runtime[] = [];

before(async () => {
  schema = schemaFor('crash');
  provider = await durox.PostgresProvider.connectWithSchema(DATABASE_URL, schema);
  client = new durox.Client(provider);
});

after(async () => {
  for (const runtime of runtimes) await runtime.shutdown(100);
  await provider.close();
  await dropTestSchema(schema);
});

test(
  'a runtime stopped mid-activity with shutdown(0): the activity runs again ' + 'elsewhere and completes once',
  async () => {
    const attempts: string[] = [];
    let release: () => void = () => undefined;
    const first = await startRuntime(
      provider,
      (rt) => {
        rt.registerActivity('Work', async (ctx, input: string) => {
          attempts.push(`first:${ctx.isCancelled()}`);
          await new Promise<void>((resolve) => (release = resolve));
          return `first runtime did ${input}`;
        });
        rt.registerOrchestration('Job', function* (ctx, input: string) {
          return yield ctx.scheduleActivity('Work', input);
        });
      },
      { workerLockTimeoutMs: 2000 },
    );
    const id = uid('job');
    await client.startOrchestration(id, 'Job', 'the job');
    await eventually(async () => (attempts.length === 1 ? true : undefined));
    await first.shutdown(0);

    const second = await startRuntime(
      provider,
      (rt) => {
        rt.registerActivity('Work', async (_ctx, input: string) => {
          attempts.push('second');
          return `second runtime did ${input}`;
        });
        rt.registerOrchestration('Job', function* (ctx, input: string) {
          return yield ctx.scheduleActivity('Work', input);
        });
      },
      { workerLockTimeoutMs: 2000 },
    );
    const status = await client.waitForOrchestration(id, 15_000);
    assert.equal(status.output, 'second runtime did the job');
    release();
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual(attempts, ['first:false', 'second']);
    const kinds = await historyKinds(client, id);
    assert.equal(
      kinds.filter((k) => k === 'ActivityCompleted').length,
      1,
      'the late result of the stopped runtime is dropped',
    );
    await second.shutdown(100);
  },
);

test('a worker process killed with SIGKILL mid-activity: the activity runs again after its lock expires', async () => {
  const script = join(__dirname, 'fixtures', 'crash-worker.js');
  const child = spawn(process.execPath, [script, DATABASE_URL, schema], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let errors = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  await eventually(
    async () => (output.includes('ready') ? true : undefined),
    15_000,
    'the worker process to start',
  ).catch((error: Error) => {
    child.kill('SIGKILL');
    throw new Error(`${error.message}; worker stdout: ${output}; stderr: ${errors}`);
  });

  const id = uid('crash');
  await client.startOrchestration(id, 'CrashFlow');
  await eventually(async () => (output.includes(`started ${id}`) ? true : undefined), 15_000, 'the activity to start');
  const killedAt = Date.now();
  child.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL');

  const survivor = await startRuntime(
    provider,
    (rt) => {
      rt.registerActivity('Crashy', async (_ctx, input: string) => `recovered ${input}`);
      rt.registerOrchestration('CrashFlow', function* (ctx) {
        return yield ctx.scheduleActivity('Crashy', 'payload');
      });
    },
    { workerLockTimeoutMs: 2000 },
  );
  runtimes.push(survivor);
  const status = await client.waitForOrchestration(id, 20_000);
  assert.equal(status.output, 'recovered payload');
  assert.ok(Date.now() - killedAt < 15_000);
  const kinds = await historyKinds(client, id);
  assert.equal(kinds.filter((k) => k === 'ActivityScheduled').length, 1);
  assert.equal(kinds.filter((k) => k === 'ActivityCompleted').length, 1);
});
