/**
 * What the database server spends on the bench's work: CPU seconds of the PostgreSQL processes on
 * this machine (Linux /proc), CPU seconds of the backends of one database, and the time spent in
 * the bench schema's own functions (`pg_stat_user_functions`, with `track_functions` switched on
 * for the bench's sessions only, through the connection string: no server setting is changed).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { PgExecutor } from '../src/postgres/pg-executor';

const CLOCK_TICKS_PER_SECOND = 100;

/** utime + stime (and cutime + cstime when `children`) of one process, in ticks; null when gone. */
function processTicks(pid: string, children: boolean): { name: string; ticks: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const fields = stat.slice(close + 2).split(' ');
    const own = Number(fields[11]) + Number(fields[12]);
    return {
      name: stat.slice(stat.indexOf('(') + 1, close),
      ticks: children ? own + Number(fields[13]) + Number(fields[14]) : own,
    };
  } catch {
    return null; // The process ended meanwhile.
  }
}

/**
 * CPU seconds used so far by the PostgreSQL server(s) on this machine: every process named
 * `postgres*`, with utime + stime and cutime + cstime (backends that exited are counted in the
 * postmaster's). Includes the server's background processes (WAL writer, checkpointer, ...) and
 * any other work on the same server.
 */
export function postgresCpuSeconds(): number {
  let ticks = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const process = processTicks(pid, true);
    if (process !== null && process.name.startsWith('postgres')) ticks += process.ticks;
  }
  return ticks / CLOCK_TICKS_PER_SECOND;
}

/**
 * CPU seconds used so far by the backends connected to `database` (its pids from
 * `pg_stat_activity`, read through `admin`). Only meaningful as a difference over a window in
 * which the workload's connections stay open (a backend that exits inside the window loses its
 * share); it leaves out the server's shared background processes.
 */
export async function databaseBackendCpuSeconds(admin: PgExecutor, database: string): Promise<number> {
  const rows = await admin.query('SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [
    database,
  ]);
  let ticks = 0;
  for (const row of rows) ticks += processTicks(String(row.pid), false)?.ticks ?? 0;
  return ticks / CLOCK_TICKS_PER_SECOND;
}

/** `url` with `track_functions = all` for every session opened on it (superuser only). */
export function withFunctionTracking(url: string): string {
  const parsed = new URL(url);
  const existing = parsed.searchParams.get('options');
  parsed.searchParams.set('options', `${existing === null ? '' : `${existing} `}-c track_functions=all`);
  return parsed.toString();
}

/**
 * Whether a session on `url` may switch `track_functions` on for itself (it is a superuser
 * setting); the reason when not.
 */
export async function functionTrackingAllowed(url: string): Promise<{ allowed: boolean; note: string }> {
  const admin = PgExecutor.fromUrl(url, 1);
  try {
    await admin.withSession(async (session) => {
      await session.query("SET track_functions = 'all'");
      await session.query('RESET track_functions');
    });
    return {
      allowed: true,
      note: "track_functions = 'all' for the bench's own sessions (connection option; server settings untouched)",
    };
  } catch (error) {
    return {
      allowed: false,
      note: `procedure time not measured: ${error instanceof Error ? error.message : String(error)}`,
    };
  } finally {
    await admin.close();
  }
}

export interface FunctionStat {
  function: string;
  calls: number;
  selfMs: number;
  totalMs: number;
}

/**
 * The functions of `schema` in `pg_stat_user_functions`. Backends report their counts when they
 * exit, or about a second after they go idle (PostgreSQL 15+), so read when the store is idle or
 * closed: this waits 1.1 s, then polls until two reads 200 ms apart agree (at most ~3 s more).
 */
export async function readFunctionStats(url: string, schema: string): Promise<FunctionStat[]> {
  const admin = PgExecutor.fromUrl(url, 1);
  try {
    const read = async (): Promise<FunctionStat[]> =>
      (
        await admin.query(
          'SELECT funcname, calls, self_time, total_time FROM pg_stat_user_functions ' +
            'WHERE schemaname = $1 ORDER BY self_time DESC',
          [schema],
        )
      ).map((row) => ({
        function: String(row.funcname),
        calls: Number(row.calls),
        selfMs: Number(row.self_time),
        totalMs: Number(row.total_time),
      }));
    const total = (stats: FunctionStat[]): string =>
      stats.reduce((sum, s) => sum + s.calls, 0) + ':' + stats.reduce((sum, s) => sum + s.selfMs, 0);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    let last = await read();
    for (let attempt = 0; attempt < 15; attempt += 1) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      const next = await read();
      if (total(next) === total(last)) return next;
      last = next;
    }
    return last;
  } finally {
    await admin.close();
  }
}

/** `after` minus `before`, function by function (a window's own calls and time). */
export function subtractStats(after: FunctionStat[], before: FunctionStat[]): FunctionStat[] {
  const earlier = new Map(before.map((s) => [s.function, s]));
  return after
    .map((s) => {
      const b = earlier.get(s.function);
      return b === undefined
        ? s
        : {
            function: s.function,
            calls: s.calls - b.calls,
            selfMs: s.selfMs - b.selfMs,
            totalMs: s.totalMs - b.totalMs,
          };
    })
    .filter((s) => s.calls > 0);
}

export interface ProcedureCost {
  /** Sum of self time of the schema's functions per orchestration. */
  procedureMsPerOrchestration: number;
  /** The top 5 functions by self time, per orchestration. */
  topFunctions: Array<{ function: string; callsPerOrchestration: number; selfMsPerOrchestration: number }>;
}

export function procedureCost(stats: FunctionStat[], orchestrations: number): ProcedureCost {
  const per = (n: number, digits: number): number => Math.round((n / orchestrations) * 10 ** digits) / 10 ** digits;
  return {
    procedureMsPerOrchestration: per(
      stats.reduce((sum, s) => sum + s.selfMs, 0),
      3,
    ),
    topFunctions: [...stats]
      .sort((a, b) => b.selfMs - a.selfMs)
      .slice(0, 5)
      .map((s) => ({
        function: s.function,
        callsPerOrchestration: per(s.calls, 2),
        selfMsPerOrchestration: per(s.selfMs, 3),
      })),
  };
}
