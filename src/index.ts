/**
 * Durox: durable orchestrations for TypeScript on PostgreSQL, a drop-in for the `duroxide`
 * package (docs/runtime.md, "The package entry"). Change the import, keep the program.
 */
export { Runtime } from './runtime/runtime';
export type {
  ActivityHandler,
  AnyOrchestrationHandler,
  AsyncOrchestrationHandler,
  OrchestrationHandler,
} from './runtime/runtime';
export { ActivityContext } from './runtime/activity-context';
export { initTracing } from './runtime/logger';
export type { TracingOptions } from './runtime/logger';
export type { RuntimeOptions, TagFilter } from './runtime/options';
export type { JsMetricsSnapshot } from './runtime/metrics';
export { safetyFetchHits } from './runtime/liveness';
export type { SafetyFetchCause, SafetyFetchQueue } from './runtime/liveness';
export { Client } from './client/client';
export {
  ClientError,
  InvalidArgumentError,
  NotFoundError,
  OrchestrationFailedError,
  TimeoutError,
  UnsupportedError,
} from './client/errors';
export type { ClientErrorCode } from './client/errors';
export { ProviderError, isRetryable } from './provider/errors';
export type { ProviderErrorCode } from './provider/errors';

export type { ClientOptions, StartOptions } from './client/client';
export type {
  JsExecutionInfo,
  JsInstanceInfo,
  JsOrchestrationStatus,
  JsQueueDepths,
  JsSystemMetrics,
  JsSystemStats,
  JsSystemStats as SystemStats,
} from './client/status-shapes';
export type { JsEvent } from './client/history-shapes';
export type {
  JsDeleteInstanceResult,
  JsInstanceFilter,
  JsInstanceTree,
  JsPruneOptions,
  JsPruneResult,
} from './client/management-shapes';
export { ScheduleError } from './schedules/errors';
export type { ScheduleErrorCode } from './schedules/errors';
export type {
  CatchUpPolicy,
  OverlapPolicy,
  ScheduleCounts,
  ScheduleInfo,
  ScheduleOptions,
  ScheduleRun,
  ScheduleSpec,
} from './schedules/model';
export { OrchestrationContext } from './core/orchestration-context';
export type { AsyncOrchestrationContext, Durable, DurableActivity } from './core/async-context';
export type { JoinResult, RaceResult, RetryPolicy, ScheduledTask } from './core/descriptors';
export { PostgresProvider } from './postgres';
export type { PostgresConnectOptions } from './postgres/postgres-provider';
export type { TargetSessionAttrs } from './postgres/multi-host';
export { PGliteProvider, SqliteProvider } from './pglite';

export {
  MAX_KV_KEYS,
  MAX_KV_VALUE_BYTES,
  MAX_NAME_BYTES,
  MAX_PAYLOAD_BYTES,
  MAX_TAG_NAME_BYTES,
  MAX_WORKER_TAGS,
} from './core/limits';
export { MAX_PRIORITY, MIN_PRIORITY, PRIORITY_STEP_MS } from './core/priority';
