/** Per-runtime counters exposed by `Runtime.metricsSnapshot()` (docs/runtime.md, "Logging, tracing and metrics"). */

/** Counters since the runtime started. */
export interface JsMetricsSnapshot {
  /** Orchestration turns processed (as in duroxide, every processed turn counts). */
  orchStarts: number;
  orchCompletions: number;
  orchFailures: number;
  orchApplicationErrors: number;
  orchInfrastructureErrors: number;
  orchConfigurationErrors: number;
  orchPoison: number;
  /** Successful activities, system activities included. */
  activitySuccess: number;
  activityAppErrors: number;
  activityInfraErrors: number;
  activityConfigErrors: number;
  activityPoison: number;
  orchDispatcherItemsFetched: number;
  workerDispatcherItemsFetched: number;
  orchContinueAsNew: number;
  suborchestrationCalls: number;
  providerErrors: number;
  /** Items that only the safety fetch found (see liveness.ts); lost wake-ups when not redelivered. */
  safetyFetchHits: number;
}

export type MetricName = keyof JsMetricsSnapshot;

/** Mutable counters owned by one Runtime. */
export class RuntimeMetrics {
  private readonly counters: JsMetricsSnapshot = {
    orchStarts: 0,
    orchCompletions: 0,
    orchFailures: 0,
    orchApplicationErrors: 0,
    orchInfrastructureErrors: 0,
    orchConfigurationErrors: 0,
    orchPoison: 0,
    activitySuccess: 0,
    activityAppErrors: 0,
    activityInfraErrors: 0,
    activityConfigErrors: 0,
    activityPoison: 0,
    orchDispatcherItemsFetched: 0,
    workerDispatcherItemsFetched: 0,
    orchContinueAsNew: 0,
    suborchestrationCalls: 0,
    providerErrors: 0,
    safetyFetchHits: 0,
  };

  increment(name: MetricName, by = 1): void {
    this.counters[name] += by;
  }

  /** A copy of the counters. */
  snapshot(): JsMetricsSnapshot {
    return { ...this.counters };
  }
}
