/**
 * Exclusive ownership of an embedded data directory by one process.
 *
 * PGlite is a single in-process backend with no shared memory between processes: two processes
 * writing the same data directory would corrupt it. The owner therefore holds a lock file naming
 * its pid and host. A lock whose pid no longer runs on this host is stale (the owner crashed or was
 * killed) and is taken over. Known limit: two processes taking over the same stale lock at the
 * same instant could both remove it; node offers no portable flock() to close that window.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Contents of the lock file. */
interface LockOwner {
  pid: number;
  hostname: string;
  acquiredAt: string;
}

/** Thrown when another live process (or this one) already holds the directory. */
export class StoreLockedError extends Error {
  constructor(
    readonly lockPath: string,
    readonly owner: LockOwner,
  ) {
    const who =
      owner.pid === process.pid && owner.hostname === os.hostname()
        ? 'this process (it is already open here; close the other provider first)'
        : `process ${owner.pid} on ${owner.hostname} since ${owner.acquiredAt} (stop ` +
          `that process; if it no longer runs, delete ${lockPath})`;
    super(`the data directory is in use by ${who}`);
    this.name = 'StoreLockedError';
  }
}

/** Locks released on exit even when the program never closes its provider. */
const heldLocks = new Set<StoreLock>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const lock of heldLocks) lock.release();
  });
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOwner(lockPath: string): LockOwner | null {
  let text: string;
  try {
    text = fs.readFileSync(lockPath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  try {
    const parsed = JSON.parse(text) as Partial<LockOwner>;
    if (typeof parsed.pid === 'number' && typeof parsed.hostname === 'string') {
      return { pid: parsed.pid, hostname: parsed.hostname, acquiredAt: String(parsed.acquiredAt) };
    }
  } catch {
    // fall through: an unreadable lock file is reported with its raw state below
  }
  return { pid: -1, hostname: 'an unknown host (unreadable lock file)', acquiredAt: 'unknown' };
}

/** A held lock file. */
export class StoreLock {
  private released = false;

  private constructor(readonly lockPath: string) {}

  /**
   * Takes the lock file `lockPath`, replacing a stale one. The file appears atomically with its
   * contents (written aside, then hard-linked into place), so a reader never sees it half-written.
   * @throws StoreLockedError when a running process holds it.
   */
  static acquire(lockPath: string): StoreLock {
    const owner: LockOwner = { pid: process.pid, hostname: os.hostname(), acquiredAt: new Date().toISOString() };
    const draft = path.join(path.dirname(lockPath), `.${path.basename(lockPath)}.${process.pid}.${Date.now()}`);
    fs.writeFileSync(draft, JSON.stringify(owner) + '\n');
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          fs.linkSync(draft, lockPath);
          const lock = new StoreLock(lockPath);
          heldLocks.add(lock);
          installExitHook();
          return lock;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        }
        const holder = readOwner(lockPath);
        if (holder === null) continue; // released meanwhile: try again
        const stale = holder.hostname === os.hostname() && holder.pid !== process.pid && !isRunning(holder.pid);
        if (!stale) throw new StoreLockedError(lockPath, holder);
        fs.rmSync(lockPath, { force: true });
      }
      throw new Error(`could not take the lock file ${lockPath}: other processes keep taking it`);
    } finally {
      fs.rmSync(draft, { force: true });
    }
  }

  /** Removes the lock file. Idempotent; synchronous so that it can run in an exit hook. */
  release(): void {
    if (this.released) return;
    this.released = true;
    heldLocks.delete(this);
    fs.rmSync(this.lockPath, { force: true });
  }
}
