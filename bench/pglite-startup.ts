/**
 * Embedded-store timings (not a test): fresh in-memory stores (first and later in a process),
 * a new and a reopened data directory, and one provider fetch+ack round on PGlite.
 *
 *   npm run build && node dist/bench/pglite-startup.js [--no-template]
 *
 * `--no-template` points the initdb cache at an empty directory, to time a machine's first run.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';

const emptyCache = process.argv.includes('--no-template')
  ? fs.mkdtempSync(path.join(os.tmpdir(), 'durox-bench-cache-'))
  : undefined;
if (emptyCache !== undefined) process.env.DUROX_PGLITE_CACHE_DIR = emptyCache;

// Loaded after the cache directory is chosen.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { PGliteProvider } = require('../src/pglite') as typeof import('../src/pglite');

async function timed<T>(label: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const result = await work();
  process.stdout.write(`${label.padEnd(44)} ${(performance.now() - started).toFixed(1).padStart(9)} ms\n`);
  return result;
}

async function main(): Promise<void> {
  const first = await timed('inMemory() first in process', () => PGliteProvider.inMemory());
  const second = await timed('inMemory() second (shared engine)', () => PGliteProvider.inMemory());
  const third = await timed('inMemory() third (shared engine)', () => PGliteProvider.inMemory());
  await timed('close() of an in-memory store (drop schema)', () => third.close());

  const provider = first;
  const rounds = 200;
  for (let i = 0; i < rounds; i++) {
    await provider.enqueueWorkerWork({
      type: 'ActivityExecute',
      instance: `bench-${i}`,
      executionId: 1,
      id: 2,
      name: 'Act',
      input: '1',
      sessionId: null,
      tag: null,
    });
  }
  const started = performance.now();
  for (let i = 0; i < rounds; i++) {
    const lease = await provider.fetchWorkItem({ lockTimeoutMs: 30_000, tagFilter: { mode: 'any' } });
    if (lease === null) throw new Error('bench: expected a work item');
    await provider.ackWorkItem(lease.lockToken, null);
  }
  const perRound = (performance.now() - started) / rounds;
  process.stdout.write(`${'activity fetch+ack (mean of 200)'.padEnd(44)} ${perRound.toFixed(2).padStart(9)} ms\n`);
  await second.close();
  await first.close();

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'durox-bench-dir-'));
  const store = path.join(dir, 'store');
  const created = await timed('open(dir) new directory', () => PGliteProvider.open(store));
  await created.close();
  const reopened = await timed('open(dir) existing directory', () => PGliteProvider.open(store));
  await reopened.close();
  fs.rmSync(dir, { recursive: true, force: true });
  if (emptyCache !== undefined) fs.rmSync(emptyCache, { recursive: true, force: true });
}

main().catch((error: Error) => {
  process.stderr.write(`${error.stack ?? error.message}\n`);
  process.exit(1);
});
