/**
 * Runtime options (docs/runtime.md, "Options") and the defaults Durox applies.
 *
 * Our defaults, stated truthfully (they differ from duroxide's typings on purpose):
 * - `orchestrationConcurrency`: 4 turn workers (duroxide's typings also say 4; its Rust core uses 2).
 * - `workerConcurrency`: 8 activity slots (duroxide's typings also say 8; its Rust core uses 2).
 * - `dispatcherPollIntervalMs`: 100 ms between empty fetches, used only while push wake-ups are
 *   unavailable (a provider without `subscribeToWakeups`, or its LISTEN connection is down). With
 *   push live an idle runtime sends nothing but one safety fetch per queue every 10 s
 *   (SAFETY_FETCH_MS in queue-gate.ts), which also finds work whose holder died.
 * - Concurrency for an I/O-bound Node process: idle slots cost no round trips (they sleep on push
 *   wake-ups, and one announced item wakes one slot), so the limit that matters is connections:
 *   4 turn workers + 8 activity slots share the provider's pool (10 connections by default,
 *   DUROXIDE_PG_POOL_MAX). Raise both the slots and the pool when the database is far away:
 *   throughput is bounded by pool size / round-trip time / round trips per orchestration.
 * - `workerLockTimeoutMs`: 30000 ms.
 * - `logFormat`: `pretty`; `logLevel`: `info`; `serviceName`: `duroxide`.
 * - `maxSessionsPerRuntime`: 10; `sessionIdleTimeoutMs`: 300000 (accepted and validated; sessions
 *   are not routed by this build's provider contract).
 * - `workerTagFilter`: `defaultOnly`.
 * - `maxOutageMs`: 90000 (acks ride out a database outage or failover this long; provider/outage-retry.ts).
 * Unknown keys are ignored, as in duroxide.
 */
import { MAX_TAG_NAME_BYTES, MAX_WORKER_TAGS } from '../core/limits';
import { describeNonError } from '../core/thrown';
import type { TagFilter as ProviderTagFilter } from '../provider/contract';
import { DEFAULT_MAX_OUTAGE_MS } from '../provider/outage-retry';

/** Which activity tags this runtime's workers serve. */
export type TagFilter = 'defaultOnly' | 'any' | 'none' | { tags: string[] } | { defaultAnd: string[] };

/** Options accepted by `new Runtime(provider, options)`. All are optional. */
export interface RuntimeOptions {
  /** Orchestration turn workers; 0 runs no orchestration dispatcher (worker-only node). Default 4. */
  orchestrationConcurrency?: number;
  /** Concurrent activity slots; 0 runs no activity worker. Default 8. */
  workerConcurrency?: number;
  /**
   * Pause between two empty fetches of one worker, in ms, while push wake-ups are unavailable.
   * Default 100.
   */
  dispatcherPollIntervalMs?: number;
  /** Lock timeout of an activity work item, in ms; renewal and cancellation latency follow it. Default 30000. */
  workerLockTimeoutMs?: number;
  /** Log line format: `json`, `pretty` or `compact` (unknown strings mean compact). Default `pretty`. */
  logFormat?: string;
  /** Level of orchestration and activity traces. Default `info`. */
  logLevel?: string;
  /** Service name written into logs. Default `duroxide`. */
  serviceName?: string;
  /** Service version written into logs. */
  serviceVersion?: string;
  /** Most distinct sessions one runtime owns at once. Default 10. */
  maxSessionsPerRuntime?: number;
  /** A session unpins after this long without activity, in ms. Default 300000. */
  sessionIdleTimeoutMs?: number;
  /** Stable identity of this worker node (used in `ActivityContext.workerId`). */
  workerNodeId?: string;
  /** Which activity tags this runtime serves. Default `defaultOnly`. */
  workerTagFilter?: TagFilter;
  /**
   * Guard mode for `async` orchestrations: an orchestration that creates a timer, file or network
   * I/O (anything it could await besides ctx tasks) fails at once with a message naming it and
   * where it was created. Without it such an await is only caught when it leaves the function
   * waiting on nothing durable. Costs an async_hooks hook while async turns run. Default false.
   */
  asyncOrchestrationGuards?: boolean;
  /**
   * How long acks keep retrying through a database outage (connection loss, a failover's
   * read-only window), in ms, with jittered back-off. Cover the longest failover you expect:
   * an unplanned pg_auto_failover failover takes about 50 s with its default timeouts. Default 90000.
   */
  maxOutageMs?: number;
}

/**
 * Test hook, not part of the public API: shortens the fixed delays so tests of the poison path
 * do not take five minutes. Passed as `_testHooks` in the options object.
 */
export interface RuntimeTestHooks {
  /** First delay of the unregistered-handler backoff (default 1000 ms). */
  unregisteredBackoffBaseMs?: number;
  /** Cap of the unregistered-handler backoff (default 60000 ms). */
  unregisteredBackoffMaxMs?: number;
}

/** The options with every default applied. */
export interface ResolvedRuntimeOptions {
  orchestrationConcurrency: number;
  workerConcurrency: number;
  dispatcherPollIntervalMs: number;
  workerLockTimeoutMs: number;
  logFormat: 'json' | 'pretty' | 'compact';
  logLevel: string;
  serviceName: string;
  serviceVersion: string | null;
  maxSessionsPerRuntime: number;
  sessionIdleTimeoutMs: number;
  workerNodeId: string | null;
  tagFilter: ProviderTagFilter;
  asyncOrchestrationGuards: boolean;
  maxOutageMs: number;
  unregisteredBackoffBaseMs: number;
  unregisteredBackoffMaxMs: number;
}

/** Fixed values of duroxide that JavaScript cannot configure (docs/runtime.md, "Options"). */
export const FIXED = {
  orchestrationLockTimeoutMs: 5000,
  orchestrationRenewalBufferMs: 2000,
  workerRenewalBufferMs: 5000,
  maxAttempts: 10,
  historyErrorBackoffMs: 1000,
  activityCancellationGraceMs: 10_000,
  fetchErrorBackoffBaseMs: 100,
  fetchErrorBackoffMaxMs: 3000,
  /**
   * Ack calls a pool (turns, activities) keeps out at once; acks beyond wait and go together
   * (call-batcher.ts). One: more acks per call, fewer calls, less contention on the store (fan-out
   * of 100: 118 -> 88 calls, 200 -> 163 ms; 40 x 5 and a 70 ms link no slower than with 4).
   */
  maxAckCallsInFlight: 1,
  /**
   * Fused ack calls (an activity's result with the turn it unblocks) a runtime keeps out at once.
   * Two: each slot waits for its chain's next step, so a second call keeps the slots busy while
   * the first commits (200 chains of 5 on fresh runtimes, `node dist/bench/call-profile.js 200 5
   * 2`, four pairs interleaved: 156 -> 181 orchestrations/s on average, 2.25 -> 2.8 calls each,
   * the same PostgreSQL CPU; 40 x 5 in the peer bench no different). One where calls run one
   * after the other (`Provider.callsRunInParallel`, PGlite): there two only made the groups
   * smaller, 130 -> 117 orchestrations/s.
   */
  maxFusedAckCallsInFlight: 2,
  /** Activity fetches a runtime keeps out at once; fetches beyond wait and go together (call-batcher.ts). */
  maxFetchCallsInFlight: 1,
} as const;

function count(value: unknown, fallback: number, field: string): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new Error(`Invalid runtime option ${field}: expected a non-negative integer, got ${describeNonError(value)}`);
  }
  return value;
}

function positive(value: unknown, fallback: number, field: string): number {
  const n = count(value, fallback, field);
  if (n === 0) throw new Error(`Invalid runtime option ${field}: must be greater than 0`);
  return n;
}

function tagList(value: unknown, field: string): string[] {
  if (!Array.isArray(value) || value.some((t) => typeof t !== 'string' || t.length === 0)) {
    throw new Error(`Invalid runtime option workerTagFilter.${field}: expected an array of non-empty strings`);
  }
  if (value.length > MAX_WORKER_TAGS) {
    throw new Error(
      `Invalid runtime option workerTagFilter.${field}: ${value.length} tags exceed ` +
        `MAX_WORKER_TAGS (${MAX_WORKER_TAGS})`,
    );
  }
  for (const tag of value as string[]) {
    const bytes = Buffer.byteLength(tag, 'utf8');
    if (bytes > MAX_TAG_NAME_BYTES) {
      throw new Error(
        `Invalid runtime option workerTagFilter.${field}: tag of ${bytes} bytes ` +
          `exceeds MAX_TAG_NAME_BYTES (${MAX_TAG_NAME_BYTES})`,
      );
    }
  }
  return [...(value as string[])];
}

/** Maps the JavaScript tag filter onto the provider's; unrecognised strings mean `defaultOnly`. */
export function toProviderTagFilter(filter: unknown): ProviderTagFilter {
  if (filter === 'any') return { mode: 'any' };
  if (filter === 'none') return { mode: 'none' };
  if (filter !== null && typeof filter === 'object') {
    const record = filter as Record<string, unknown>;
    if ('tags' in record) return { mode: 'tags', tags: tagList(record.tags, 'tags') };
    if ('defaultAnd' in record) return { mode: 'defaultAnd', tags: tagList(record.defaultAnd, 'defaultAnd') };
  }
  return { mode: 'defaultOnly' };
}

function logFormatOf(value: unknown): 'json' | 'pretty' | 'compact' {
  if (value === undefined || value === null) return 'pretty';
  return value === 'json' || value === 'pretty' ? value : 'compact';
}

/** Applies defaults and validates; throws a clear error for a malformed option. */
export function resolveRuntimeOptions(options: RuntimeOptions | undefined): ResolvedRuntimeOptions {
  const o = (options ?? {}) as RuntimeOptions & { _testHooks?: RuntimeTestHooks };
  const hooks = o._testHooks ?? {};
  return {
    orchestrationConcurrency: count(o.orchestrationConcurrency, 4, 'orchestrationConcurrency'),
    workerConcurrency: count(o.workerConcurrency, 8, 'workerConcurrency'),
    dispatcherPollIntervalMs: positive(o.dispatcherPollIntervalMs, 100, 'dispatcherPollIntervalMs'),
    workerLockTimeoutMs: positive(o.workerLockTimeoutMs, 30_000, 'workerLockTimeoutMs'),
    logFormat: logFormatOf(o.logFormat),
    logLevel: typeof o.logLevel === 'string' && o.logLevel !== '' ? o.logLevel : 'info',
    serviceName: typeof o.serviceName === 'string' ? o.serviceName : 'duroxide',
    serviceVersion: typeof o.serviceVersion === 'string' ? o.serviceVersion : null,
    maxSessionsPerRuntime: positive(o.maxSessionsPerRuntime, 10, 'maxSessionsPerRuntime'),
    sessionIdleTimeoutMs: positive(o.sessionIdleTimeoutMs, 300_000, 'sessionIdleTimeoutMs'),
    workerNodeId: typeof o.workerNodeId === 'string' && o.workerNodeId !== '' ? o.workerNodeId : null,
    tagFilter: toProviderTagFilter(o.workerTagFilter),
    asyncOrchestrationGuards: o.asyncOrchestrationGuards === true,
    maxOutageMs: positive(o.maxOutageMs, DEFAULT_MAX_OUTAGE_MS, 'maxOutageMs'),
    unregisteredBackoffBaseMs: positive(hooks.unregisteredBackoffBaseMs, 1000, '_testHooks.unregisteredBackoffBaseMs'),
    unregisteredBackoffMaxMs: positive(hooks.unregisteredBackoffMaxMs, 60_000, '_testHooks.unregisteredBackoffMaxMs'),
  };
}
