import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import type { StartOrchestrationItem } from '../../src/core/types';
import { PGliteProvider } from '../../src/pglite';
import { latestMigrationVersion } from '../../src/store/migrations';
import { startItem } from '../helpers/work-items';

const tempDirs: string[] = [];
after(() => {
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh directory, removed after the file's tests (data directories weigh ~40 MB). */
function tempDir(label: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `durox-pglite-${label}-`));
  tempDirs.push(dir);
  return dir;
}

function start(instance: string): StartOrchestrationItem {
  return startItem(instance, { orchestration: 'Probe', input: '"x"' });
}

/** Every file under `dir` with its contents, to prove a refused open changed nothing. */
function snapshot(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath ?? entry.path, entry.name);
    files[path.relative(dir, file)] = fs.readFileSync(file).toString('base64');
  }
  return files;
}

/** Runs `PGliteProvider.open(dir)` in another process; resolves to its exit code and stderr. */
function openInChild(dir: string): Promise<{ code: number | null; stderr: string }> {
  const entry = path.join(__dirname, '..', '..', 'src', 'pglite', 'index.js');
  const script = `require(${JSON.stringify(entry)}).PGliteProvider.open(${JSON.stringify(dir)})
    .then((p) => p.close()).then(() => process.exit(0), (e) => { process.stderr.write(e.message); process.exit(3); });`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}

test('a directory is created, and reopened with its data', async () => {
  const dir = path.join(tempDir('reopen'), 'nested', 'store');
  const first = await PGliteProvider.open(dir);
  assert.equal(first.location, path.resolve(dir));
  await first.enqueueOrchestratorWork(start('kept-1'));
  await first.close();
  assert.ok(!fs.existsSync(path.join(dir, 'durox.lock')), 'close releases the lock file');

  const second = await PGliteProvider.open(dir);
  try {
    assert.deepEqual(await second.getQueueDepths(), { orchestratorQueue: 1, workerQueue: 0, timerQueue: 0 });
    const item = await second.fetchOrchestrationItem({ lockTimeoutMs: 5000 });
    assert.equal(item?.instanceId, 'kept-1');
    assert.equal(item?.orchestrationName, 'Probe');
  } finally {
    await second.close();
  }
});

test('a second opener is refused while the directory is open, in this process and in another', async () => {
  const dir = tempDir('locked');
  const owner = await PGliteProvider.open(dir);
  try {
    await assert.rejects(PGliteProvider.open(dir), /in use by this process/);
    const child = await openInChild(dir);
    assert.equal(child.code, 3);
    assert.match(child.stderr, new RegExp(`Failed to open the embedded store at .*in use by process ${process.pid}`));
    // The refused openers left the owner working.
    await owner.enqueueOrchestratorWork(start('still-mine'));
    assert.equal((await owner.getQueueDepths()).orchestratorQueue, 1);
  } finally {
    await owner.close();
  }
  const afterClose = await openInChild(dir);
  assert.equal(afterClose.code, 0, afterClose.stderr);
});

test('a lock left by a process that no longer runs is taken over', async () => {
  const dir = tempDir('stale');
  await (await PGliteProvider.open(dir)).close();
  const dead = spawn(process.execPath, ['-e', '0']);
  const deadPid = await new Promise<number>((resolve) => dead.on('exit', () => resolve(dead.pid ?? -1)));
  fs.writeFileSync(
    path.join(dir, 'durox.lock'),
    JSON.stringify({ pid: deadPid, hostname: os.hostname(), acquiredAt: '2020-01-01T00:00:00.000Z' }),
  );
  const provider = await PGliteProvider.open(dir);
  try {
    const lock = JSON.parse(fs.readFileSync(path.join(dir, 'durox.lock'), 'utf8')) as { pid: number };
    assert.equal(lock.pid, process.pid);
  } finally {
    await provider.close();
  }
});

test('a directory that is not a Durox store is refused and left untouched', async () => {
  const dir = tempDir('foreign');
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'my files');
  fs.mkdirSync(path.join(dir, 'sub'));
  const before = snapshot(dir);
  await assert.rejects(PGliteProvider.open(dir), /is not a Durox data directory .*nothing was changed/);
  assert.deepEqual(snapshot(dir), before);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['notes.txt', 'sub']);

  const file = path.join(dir, 'notes.txt');
  await assert.rejects(PGliteProvider.open(file), /is a file, not a directory/);
  assert.equal(fs.readFileSync(file, 'utf8'), 'my files');
});

test('a directory written by a newer Durox is refused', async () => {
  // Recorded in the marker: refused before the database is even started.
  const markerDir = tempDir('newer-marker');
  await (await PGliteProvider.open(markerDir)).close();
  const markerFile = path.join(markerDir, 'durox-store.json');
  const marker = JSON.parse(fs.readFileSync(markerFile, 'utf8')) as { migrationVersion: number };
  marker.migrationVersion = latestMigrationVersion() + 1;
  fs.writeFileSync(markerFile, JSON.stringify(marker));
  const before = snapshot(markerDir);
  await assert.rejects(PGliteProvider.open(markerDir), /written by a newer Durox .*Nothing was changed/);
  assert.deepEqual(snapshot(markerDir), before);

  // Recorded only in the database's migrations table: refused by the migration runner.
  const tableDir = tempDir('newer-table');
  await (await PGliteProvider.open(tableDir)).close();
  const db = await PGlite.create({ dataDir: path.join(tableDir, 'pgdata') });
  await db.query('INSERT INTO durox.schema_migrations (version, name) VALUES ($1, $2)', [
    latestMigrationVersion() + 1,
    'from_the_future.sql',
  ]);
  await db.close();
  await assert.rejects(PGliteProvider.open(tableDir), /is at migration \d+ but this build only knows up to/);
  assert.ok(!fs.existsSync(path.join(tableDir, 'durox.lock')), 'a failed open releases the lock');
});

test('in-memory stores are isolated from each other and discarded on close', async () => {
  const a = await PGliteProvider.inMemory();
  const b = await PGliteProvider.inMemory();
  try {
    assert.equal(a.location, ':memory:');
    assert.notEqual(a.schema, b.schema);
    await a.enqueueOrchestratorWork(start('only-in-a'));
    assert.equal((await a.getQueueDepths()).orchestratorQueue, 1);
    assert.equal((await b.getQueueDepths()).orchestratorQueue, 0);
    assert.equal(await b.fetchOrchestrationItem({ lockTimeoutMs: 5000 }), null);
    assert.deepEqual(await a.listInstances(), []);
  } finally {
    await a.close();
  }
  await assert.rejects(a.getQueueDepths(), /closed/);
  // The other store keeps working after its neighbour is dropped.
  await b.enqueueOrchestratorWork(start('only-in-b'));
  assert.equal((await b.fetchOrchestrationItem({ lockTimeoutMs: 5000 }))?.instanceId, 'only-in-b');
  await b.close();

  const c = await PGliteProvider.inMemory();
  assert.equal((await c.getQueueDepths()).orchestratorQueue, 0);
  await c.close();
});

test('the shared in-memory engine closes once its last store is closed, so the process can exit', async () => {
  const entry = path.join(__dirname, '..', '..', 'src', 'pglite', 'index.js');
  // An engine left open keeps Node alive ~10 s after its last statement; a closed one does not.
  const script = `const { PGliteProvider } = require(${JSON.stringify(entry)});
    (async () => {
      const a = await PGliteProvider.inMemory();
      const b = await PGliteProvider.inMemory();
      await a.close();
      await b.getQueueDepths();
      await b.close();
      process.stdout.write(String(Date.now()));
    })();`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let closedAt = '';
  child.stdout.on('data', (chunk: Buffer) => (closedAt += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 0);
  const lingerMs = Date.now() - Number(closedAt);
  assert.ok(lingerMs < 5000, `process exited ${lingerMs} ms after the last close`);
});
