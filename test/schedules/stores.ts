/**
 * Stores for the schedule tests: a fresh schema on the PostgreSQL server or a fresh in-memory
 * PGlite, a test clock (set_test_clock_offset) and providers for several runtimes.
 *
 * The runtimes' providers have no push channel, so idle runtimes poll (dispatcherPollIntervalMs):
 * a push hint of a timer arms a real-time wake-up for its real due time, which a test clock that
 * jumps hours ahead would leave far in the future. Polling is a supported mode of the runtime
 * (it is what runs while LISTEN is down), and every runtime still races every other for each turn.
 */
import { applyMigrations } from '../../src/store/migrations';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { ProcedureProvider } from '../../src/store/procedure-provider';
import { quoteSchemaName } from '../../src/store/schema-name';
import type { SqlExecutor } from '../../src/store/sql-executor';
import { openMemoryStore } from '../../src/pglite/pglite-provider';
import { Client } from '../../src/client/client';
import { Runtime } from '../../src/runtime/runtime';
import type { RuntimeOptions } from '../../src/runtime/options';
import type { ScheduleInfo } from '../../src/schedules/model';
import { databaseUrl, uniqueSchemaName } from '../helpers/postgres-harness';
import { sleep, until } from '../helpers/sleep';

export type StoreKind = 'postgres' | 'pglite';
export const STORE_KINDS: readonly StoreKind[] = ['postgres', 'pglite'];

/** An executor without a push channel (see the file comment). */
function withoutPush(executor: SqlExecutor, closes: boolean): SqlExecutor {
  return {
    query: (text, params) => executor.query(text, params),
    withSession: (work) => executor.withSession(work),
    close: async () => (closes ? executor.close() : undefined),
  };
}

export interface ScheduleStore {
  kind: StoreKind;
  /** A client on its own provider. */
  client: Client;
  /** A new provider for one more runtime. */
  openProvider(): ProcedureProvider;
  /** Starts a runtime on its own provider; `register` adds the test's orchestrations. */
  startRuntime(register: (runtime: Runtime) => void, options?: RuntimeOptions): Promise<Runtime>;
  /** Moves the store clock to `offsetMs` from real time. */
  setClockOffset(offsetMs: number): Promise<void>;
  /** The offset last set. */
  clockOffsetMs(): number;
  /** The store clock now (epoch ms). */
  nowMs(): Promise<number>;
  /** Shuts down every runtime started here, closes every provider and drops the store. */
  close(): Promise<void>;
}

/** Runtime options of these tests: quick polling, quiet logs. */
export const POLLING: RuntimeOptions = {
  dispatcherPollIntervalMs: 10,
  logLevel: 'warn',
  orchestrationConcurrency: 2,
  workerConcurrency: 2,
};

export async function openScheduleStore(kind: StoreKind): Promise<ScheduleStore> {
  let base: SqlExecutor;
  let schema: string;
  let dropStore: () => Promise<void>;
  let newExecutor: () => SqlExecutor;
  if (kind === 'postgres') {
    schema = uniqueSchemaName('sched');
    const quoted = quoteSchemaName(schema, 'test');
    const admin = PgExecutor.fromUrl(databaseUrl(), 2);
    await applyMigrations(admin, schema);
    base = admin;
    newExecutor = () => withoutPush(PgExecutor.fromUrl(databaseUrl(), 4), true);
    dropStore = async () => {
      await admin.query(`DROP SCHEMA IF EXISTS ${quoted} CASCADE`);
      await admin.close();
    };
  } else {
    const store = await openMemoryStore();
    schema = store.schema;
    base = store.executor;
    newExecutor = () => withoutPush(store.executor, false);
    dropStore = () => store.executor.close();
  }
  const quoted = quoteSchemaName(schema, 'test');
  const providers: ProcedureProvider[] = [];
  const runtimes: Runtime[] = [];
  const openProvider = (): ProcedureProvider => {
    const provider = new ProcedureProvider(newExecutor(), schema, kind);
    providers.push(provider);
    return provider;
  };
  let clockOffsetMs = 0;
  const clockQuery = async (offsetMs: number | null): Promise<number> => {
    const rows =
      offsetMs === null
        ? await base.query(
            `SELECT (floor(extract(epoch FROM clock_timestamp()) * 1000))::BIGINT + offset_ms AS now FROM ${quoted}.test_clock`,
          )
        : await base.query(`SELECT (${quoted}.set_test_clock_offset($1))->>'nowMs' AS now`, [offsetMs]);
    return Number(rows[0].now);
  };
  return {
    kind,
    client: new Client(openProvider()),
    openProvider,
    startRuntime: async (register, options = POLLING) => {
      const runtime = new Runtime(openProvider(), options);
      register(runtime);
      runtimes.push(runtime);
      await runtime.start();
      return runtime;
    },
    setClockOffset: async (offsetMs) => {
      clockOffsetMs = offsetMs;
      await clockQuery(offsetMs);
    },
    clockOffsetMs: () => clockOffsetMs,
    nowMs: () => clockQuery(null),
    close: async () => {
      await Promise.all(runtimes.map((r) => r.shutdown(0)));
      await Promise.all(providers.map((p) => p.close()));
      await dropStore();
    },
  };
}

export { sleep };

/** Polls `check` every `pauseMs` until it returns a value other than undefined (`until`). */
export function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 20_000,
  pauseMs = 5,
): Promise<T> {
  return until(what, check, timeoutMs, pauseMs);
}

/** The schedule once it satisfies `ready` (it is published after the schedule's first turn). */
export function scheduleWhen(
  store: ScheduleStore,
  scheduleId: string,
  what: string,
  ready: (s: ScheduleInfo) => boolean,
): Promise<ScheduleInfo> {
  return eventually(`schedule '${scheduleId}': ${what}`, async () => {
    const list = await store.client.listSchedules();
    const schedule = list.find((s) => s.scheduleId === scheduleId);
    return schedule !== undefined && ready(schedule) ? schedule : undefined;
  });
}

export const HOUR_MS = 3_600_000;

/**
 * Moves the store clock forward to one minute past its next full hour, so that hourly crons fire
 * exactly once per hour the test advances, whatever the real time is. The clock never moves
 * back (a lock taken before would look held for as long). Returns the offset set and that hour.
 */
export async function alignToHour(store: ScheduleStore): Promise<{ offsetMs: number; hourMs: number }> {
  const nowMs = await store.nowMs();
  const hourMs = Math.ceil(nowMs / HOUR_MS) * HOUR_MS;
  const offsetMs = store.clockOffsetMs() + (hourMs + 60_000 - nowMs);
  await store.setClockOffset(offsetMs);
  return { offsetMs, hourMs };
}

/** Run instances of a schedule (ids `<scheduleId>@...`), sorted. */
export async function runsOf(client: Client, scheduleId: string): Promise<string[]> {
  return (await client.listAllInstances()).filter((id) => id.startsWith(`${scheduleId}@`)).sort();
}
