/**
 * One in-memory PGlite engine per process, shared by every in-memory provider.
 *
 * Why a shared engine with a schema per store rather than a database per store (measured with
 * bench/pglite-startup.ts, PGlite 0.5.16, this machine):
 * - a new PGlite database: initdb 1.8-3.9 s, or 0.35-0.9 s when loaded from a dumped fresh
 *   cluster (`loadDataDir`, see pglite-factory.ts);
 * - a new schema on a running engine with all migrations applied: 18-62 ms; dropping it 9-35 ms.
 * So the first in-memory store of a process pays for the engine (0.9 s with the cached dump,
 * 2.4 s without) and every later one only for its own schema (`mem_<n>`), which keeps stores
 * isolated from each other. The engine closes once no store has used it for a moment (a short
 * grace period lets back-to-back tests reuse it).
 */
import type { NotificationEvent, Row, SqlExecutor, SqlSession } from '../store/sql-executor';
import { PGliteExecutor } from './pglite-executor';
import { createPGlite } from './pglite-factory';

/** How long an unused engine stays open for the next store (the timer never keeps the process alive). */
const IDLE_CLOSE_MS = 500;

interface Engine {
  executor: Promise<PGliteExecutor>;
  users: number;
  idleTimer: NodeJS.Timeout | undefined;
}

let engine: Engine | null = null;
let schemasHandedOut = 0;

/** A schema of its own on the shared engine. */
export interface MemoryStoreLease {
  schema: string;
  /** Statements go to the shared engine; `close()` runs `beforeRelease` then gives the engine back. */
  executor: SqlExecutor;
}

function acquireEngine(): Engine {
  if (engine === null) {
    const created: Engine = {
      executor: createPGlite().then((db) => new PGliteExecutor(db)),
      users: 0,
      idleTimer: undefined,
    };
    created.executor.catch(() => {
      if (engine === created) engine = null;
    });
    engine = created;
  }
  clearTimeout(engine.idleTimer);
  engine.users++;
  return engine;
}

function releaseEngine(used: Engine): void {
  used.users--;
  if (used.users > 0) return;
  used.idleTimer = setTimeout(() => {
    if (used.users > 0) return;
    if (engine === used) engine = null;
    // Closing an engine nobody uses is background clean-up: its failure changes nothing.
    void used.executor.then((executor) => executor.close()).catch(() => undefined);
  }, IDLE_CLOSE_MS);
  used.idleTimer.unref();
}

/**
 * Leases a fresh schema name on the shared engine (creating the engine if needed). The caller
 * applies the migrations to it. `beforeRelease` runs on close while the engine is still open
 * (the provider drops its schema there).
 */
export async function leaseMemoryStore(
  beforeRelease: (shared: SqlExecutor, schema: string) => Promise<void>,
): Promise<MemoryStoreLease> {
  const used = acquireEngine();
  let shared: PGliteExecutor;
  try {
    shared = await used.executor;
  } catch (error) {
    releaseEngine(used);
    throw error;
  }
  schemasHandedOut++;
  const schema = `mem_${schemasHandedOut}`;
  let closed = false;
  const assertOpen = (): void => {
    if (closed) throw new Error(`The in-memory store ${schema} is closed`);
  };
  const executor: SqlExecutor = {
    query(text: string, params?: unknown[]): Promise<Row[]> {
      assertOpen();
      return shared.query(text, params);
    },
    withSession<T>(work: (session: SqlSession) => Promise<T>): Promise<T> {
      assertOpen();
      return shared.withSession(work);
    },
    subscribe(setupText: string, onEvent: (event: NotificationEvent) => void): () => Promise<void> {
      assertOpen();
      return shared.subscribe(setupText, onEvent);
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      try {
        await beforeRelease(shared, schema);
      } finally {
        releaseEngine(used);
      }
    },
  };
  return { schema, executor };
}
