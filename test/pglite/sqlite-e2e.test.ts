/**
 * End to end on the embedded store, written the way a duroxide-node program is: `require` the
 * package, `SqliteProvider.inMemory()`, a Runtime and a Client.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { SqliteProvider, Client, Runtime } = require('durox') as typeof import('../../src/index');

type Provider = Awaited<ReturnType<typeof SqliteProvider.inMemory>>;
let provider: Provider;
const tempDirs: string[] = [];

/** A fresh directory, removed after the file's tests (data directories weigh ~40 MB). */
function tempDir(label: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `durox-${label}-`));
  tempDirs.push(dir);
  return dir;
}
let client: InstanceType<typeof Client>;
let runtime: InstanceType<typeof Runtime>;
const chargeAttempts = new Map<string, number>();

before(async () => {
  provider = await SqliteProvider.inMemory();
  client = new Client(provider);
  runtime = new Runtime(provider, { dispatcherPollIntervalMs: 20, logLevel: 'error' });

  runtime.registerActivity('Greet', async (_ctx, name: string) => `Hello, ${name}!`);
  runtime.registerActivity('Reserve', (_ctx, sku: string) => `reserved ${sku}`);
  runtime.registerActivity('Charge', (ctx) => {
    const attempt = (chargeAttempts.get(ctx.instanceId) ?? 0) + 1;
    chargeAttempts.set(ctx.instanceId, attempt);
    if (attempt === 1) throw new Error('card declined once');
    return attempt;
  });
  runtime.registerOrchestration('HelloWorld', function* (ctx, name: string) {
    return yield ctx.scheduleActivity('Greet', name);
  });
  runtime.registerOrchestration('Ship', function* (ctx, order: string) {
    yield ctx.scheduleTimer(10);
    return `shipped ${order}`;
  });
  runtime.registerOrchestration('Order', function* (ctx, skus: string[]) {
    const reservations = yield ctx.all(skus.map((sku) => ctx.scheduleActivity('Reserve', sku)));
    const attempts = yield ctx.scheduleActivityWithRetry('Charge', null, { maxAttempts: 3, backoff: 'fixed' });
    ctx.setCustomStatus('awaiting-approval');
    const approval = yield ctx.waitForEvent('Approval');
    const shipping = yield ctx.scheduleSubOrchestration('Ship', ctx.instanceId);
    return { reservations, attempts, approval, shipping };
  });
  await runtime.start();
});

after(async () => {
  await runtime.shutdown(100);
  await provider.close();
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

test('hello world runs on SqliteProvider.inMemory()', async () => {
  await client.startOrchestration('hello-1', 'HelloWorld', 'World');
  const result = await client.waitForOrchestration('hello-1', 10_000);
  assert.equal(result.status, 'Completed');
  assert.equal(result.output, 'Hello, World!');
});

test('fan-out, retried payment, approval event, timer and sub-orchestration', async () => {
  await client.startOrchestration('order-1', 'Order', ['widget', 'gadget']);
  let status = await client.getStatus('order-1');
  while (status.customStatus !== 'awaiting-approval') {
    status = await client.waitForStatusChange('order-1', status.customStatusVersion, 20, 10_000);
  }
  await client.raiseEvent('order-1', 'Approval', { by: 'manager' });
  const result = await client.waitForOrchestration('order-1', 15_000);
  assert.equal(result.status, 'Completed', result.error);
  assert.deepEqual(result.output, {
    reservations: [{ ok: 'reserved widget' }, { ok: 'reserved gadget' }],
    attempts: 2,
    approval: { by: 'manager' },
    shipping: 'shipped order-1',
  });
  const kinds = (await client.readExecutionHistory('order-1', 1)).map((e) => e.kind);
  assert.ok(kinds.includes('ActivityFailed'), 'the first charge failed');
  assert.ok(kinds.includes('SubOrchestrationCompleted'));
});

test('in-memory providers do not see each other', async () => {
  const other = await SqliteProvider.inMemory();
  try {
    assert.deepEqual(await new Client(other).listAllInstances(), []);
    assert.ok((await client.listAllInstances()).includes('hello-1'));
  } finally {
    await other.close();
  }
});

test('open() takes sqlite: paths, creates parent directories and keeps the data', async () => {
  const root = tempDir('sqlite');
  const file = path.join(root, 'a', 'b', 'app.db');
  const first = await SqliteProvider.open(`sqlite:${file}`);
  await new Client(first).startOrchestration('kept', 'HelloWorld', 'disk');
  await first.close();
  // Started before the close, run after the reopen: the queued start message was kept.
  const again = await SqliteProvider.open(file);
  const worker = new Runtime(again, { dispatcherPollIntervalMs: 20, logLevel: 'error' });
  worker.registerActivity('Greet', async (_ctx, name: string) => `Hello, ${name}!`);
  worker.registerOrchestration('HelloWorld', function* (ctx, name: string) {
    return yield ctx.scheduleActivity('Greet', name);
  });
  await worker.start();
  try {
    const result = await new Client(again).waitForOrchestration('kept', 10_000);
    assert.equal(result.output, 'Hello, disk!');
    assert.deepEqual(await new Client(again).listAllInstances(), ['kept']);
  } finally {
    await worker.shutdown(100);
    await again.close();
  }
  const memory = await SqliteProvider.open('sqlite::memory:');
  assert.equal(memory.location, ':memory:');
  await memory.close();
});

test('open() failures use the documented texts', async () => {
  const root = tempDir('sqlite-bad');
  fs.writeFileSync(path.join(root, 'report.txt'), 'not a store');
  await assert.rejects(SqliteProvider.open(root), /^Error: Failed to open SQLite: .*not a Durox data directory/);
  const blocker = path.join(root, 'report.txt');
  await assert.rejects(SqliteProvider.open(path.join(blocker, 'x', 'app.db')), /^Error: Failed to create DB file: /);
});

test('npm start demo runs orders to completion on the embedded store and exits 0', () => {
  const dataDir = tempDir('demo');
  const demo = path.join(__dirname, '..', '..', 'src', 'demo', 'main.js');
  const run = spawnSync(process.execPath, [demo, '--orders', '6', '--data-dir', dataDir], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(run.status, 0, run.stderr + run.stdout);
  assert.match(run.stdout, /\| orders completed\s+\|\s+6 \|/);
  assert.match(run.stdout, /\| payments retried after a failure\s+\|\s+6 \|/);
  assert.match(run.stdout, new RegExp(`data: embedded PostgreSQL \\(PGlite\\) in ${dataDir}`));
  assert.ok(fs.existsSync(path.join(dataDir, 'durox-store.json')));
  assert.ok(!fs.existsSync(path.join(dataDir, 'durox.lock')), 'the demo released its store');
});
