/**
 * Starts PGlite databases, fast.
 *
 * A new PGlite database runs initdb inside WebAssembly. Measured on the development machine
 * (PGlite 0.5.16): initdb 1.8-3.9 s, reopening an existing directory ~0.2 s, loading a dumped
 * fresh cluster 0.35-0.7 s (gzip, 4.5 MB; the uncompressed 40 MB dump loads no faster). So the
 * first new database on a machine is initdb'd and dumped to a cache file; every later new database
 * (in-memory engine or new data directory) is loaded from that dump. A missing, unreadable or
 * rejected cache only costs the initdb again: correctness never depends on it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PG_COMPATIBLE_PARSERS } from './pglite-executor';

function pgliteVersion(): string {
  const entry = require.resolve('@electric-sql/pglite');
  const manifest = path.join(path.dirname(entry), '..', 'package.json');
  try {
    return String((JSON.parse(fs.readFileSync(manifest, 'utf8')) as { version?: unknown }).version);
  } catch {
    return `unknown-${fs.statSync(entry).mtimeMs}`;
  }
}

/** Cache file of a freshly initialised cluster for this PGlite version (override: DUROX_PGLITE_CACHE_DIR). */
export function templatePath(): string {
  const dir = process.env.DUROX_PGLITE_CACHE_DIR ?? path.join(os.tmpdir(), 'durox-pglite-cache');
  return path.join(dir, `initdb-${pgliteVersion()}.tar.gz`);
}

function readTemplate(): Blob | undefined {
  try {
    return new Blob([fs.readFileSync(templatePath())]);
  } catch {
    return undefined;
  }
}

async function saveTemplate(db: PGlite): Promise<void> {
  const file = templatePath();
  const draft = `${file}.${process.pid}.tmp`;
  try {
    const dump = await db.dumpDataDir('gzip');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(draft, Buffer.from(await dump.arrayBuffer()));
    fs.renameSync(draft, file);
  } catch {
    // A cache that cannot be written only means the next new database runs initdb too.
    fs.rmSync(draft, { force: true });
  }
}

function isEmptyOrMissing(dir: string): boolean {
  try {
    return fs.readdirSync(dir).length === 0;
  } catch {
    return true;
  }
}

/**
 * Opens PGlite on `dataDir` (created when missing or empty), or in memory when `dataDir` is
 * undefined, decoding values like the `pg` driver.
 */
export async function createPGlite(dataDir?: string): Promise<PGlite> {
  const fresh = dataDir === undefined || isEmptyOrMissing(dataDir);
  if (!fresh) return PGlite.create({ dataDir, parsers: PG_COMPATIBLE_PARSERS });
  const template = readTemplate();
  if (template !== undefined) {
    try {
      return await PGlite.create({ dataDir, loadDataDir: template, parsers: PG_COMPATIBLE_PARSERS });
    } catch {
      // Corrupt or incompatible cache: start over from initdb below.
      if (dataDir !== undefined) fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }
  const db = await PGlite.create({ dataDir, parsers: PG_COMPATIBLE_PARSERS });
  await saveTemplate(db);
  return db;
}
