/**
 * Layout of an embedded Durox data directory, and the checks made before anything in it is touched.
 *
 * ```
 * <dir>/durox-store.json   marker: proves the directory is ours, records schema and migration version
 * <dir>/durox.lock         owner pid and host while a process has it open (see store-lock.ts)
 * <dir>/pgdata/            the PGlite (PostgreSQL) data directory
 * ```
 * The marker is written before the database is created, so a directory whose first open was
 * interrupted is still recognised (and finished) on the next open instead of being refused.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const MARKER_FILE = 'durox-store.json';
export const LOCK_FILE = 'durox.lock';
export const PGDATA_DIR = 'pgdata';

const MARKER_FORMAT = 'durox-embedded-store';

/** Contents of the marker file. */
export interface StoreMarker {
  format: typeof MARKER_FORMAT;
  /** Schema holding the tables and procedures inside the embedded database. */
  schema: string;
  /** Highest migration applied by the last process that opened the directory (0 = none yet). */
  migrationVersion: number;
}

/** What {@link inspectDataDirectory} found. */
export type DataDirectoryState = { kind: 'new' } | { kind: 'existing'; marker: StoreMarker };

/**
 * Classifies `dir` without changing anything: missing or empty means new; a marker means ours.
 * @throws Error when `dir` is a file, holds something else, or has an unreadable marker.
 */
export function inspectDataDirectory(dir: string): DataDirectoryState {
  let entries: string[];
  try {
    if (!fs.statSync(dir).isDirectory()) throw new Error(`${dir} is a file, not a directory`);
    // A lock file alone means another process is creating the store right now: the lock then
    // reports that clearly, rather than calling the directory foreign.
    entries = fs.readdirSync(dir).filter((name) => name !== LOCK_FILE && !name.startsWith(`.${LOCK_FILE}.`));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'new' };
    throw error;
  }
  if (entries.length === 0) return { kind: 'new' };
  if (!entries.includes(MARKER_FILE)) {
    const what = entries.includes('PG_VERSION') ? 'a PostgreSQL data directory not created by Durox' : 'not empty';
    throw new Error(
      `${dir} is not a Durox data directory (it is ${what} and has no ${MARKER_FILE}); ` +
        'nothing was changed. Use an empty or new directory.',
    );
  }
  return { kind: 'existing', marker: readMarker(dir) };
}

function readMarker(dir: string): StoreMarker {
  const file = path.join(dir, MARKER_FILE);
  let parsed: Partial<StoreMarker>;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<StoreMarker>;
  } catch (error) {
    throw new Error(`${file} is unreadable (${(error as Error).message}); nothing was changed`, { cause: error });
  }
  if (
    parsed.format !== MARKER_FORMAT ||
    typeof parsed.schema !== 'string' ||
    typeof parsed.migrationVersion !== 'number'
  ) {
    throw new Error(`${file} is not a Durox store marker; nothing was changed`);
  }
  return { format: MARKER_FORMAT, schema: parsed.schema, migrationVersion: parsed.migrationVersion };
}

/** Writes the marker atomically (aside, then renamed over the old one). */
export function writeMarker(dir: string, schema: string, migrationVersion: number): void {
  const marker: StoreMarker = { format: MARKER_FORMAT, schema, migrationVersion };
  const file = path.join(dir, MARKER_FILE);
  const draft = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(draft, JSON.stringify(marker, null, 2) + '\n');
  fs.renameSync(draft, file);
}
