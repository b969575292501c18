/** Observability of a Durox deployment: Prometheus metrics, OpenTelemetry spans, structured logs. */
export { instrumentProvider, OBSERVABILITY_TARGET } from './instrument';
export type { InstrumentOptions } from './instrument';
export { DuroxMetrics } from './prometheus';
export type { DuroxMetricsOptions } from './prometheus';
export { startMetricsServer } from './metrics-server';
export type { MetricsServer } from './metrics-server';
