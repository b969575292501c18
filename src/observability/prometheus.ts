/**
 * Prometheus metrics of a Durox deployment (prom-client). One {@link DuroxMetrics} per process:
 * the instrumented provider (./instrument.ts) feeds the counters and histograms of every runtime
 * that uses it, and, when a Client is attached, the queue depths and instance counts are read
 * from the store at scrape time (so every scraper sees the store, not one process's view).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Client } from '../client/client';
import { availabilityTotals } from '../provider/availability';
import { safetyFetchHits } from '../runtime/liveness';

/** Seconds buckets for turns and activities: 1 ms .. 60 s. */
const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Options of {@link DuroxMetrics}. */
export interface DuroxMetricsOptions {
  /** Registry to register into (default: a new one, so several instances never collide). */
  registry?: Registry;
  /** Metric name prefix (default `durox_`). */
  prefix?: string;
}

/** The Durox metric families. */
export class DuroxMetrics {
  readonly registry: Registry;
  readonly orchestrationsStarted: Counter<'orchestration'>;
  readonly orchestrationsCompleted: Counter<'orchestration'>;
  readonly orchestrationsFailed: Counter<'orchestration'>;
  readonly turnDuration: Histogram<'orchestration' | 'outcome'>;
  readonly activityDuration: Histogram<'activity' | 'outcome'>;
  readonly lockSteals: Counter<'kind'>;
  readonly retries: Counter<'kind'>;
  readonly safetyFetchHits: Counter<'queue' | 'cause'>;
  readonly failovers: Counter;
  readonly databaseOutages: Counter;
  readonly databaseOutageSeconds: Counter;
  #client: Client | null = null;

  constructor(options: DuroxMetricsOptions = {}) {
    const prefix = options.prefix ?? 'durox_';
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix))
      throw new Error(`DuroxMetrics: invalid metric prefix ${JSON.stringify(prefix)}`);
    this.registry = options.registry ?? new Registry();
    const registers = [this.registry];
    this.orchestrationsStarted = new Counter({
      name: `${prefix}orchestrations_started_total`,
      help: 'Orchestration instances started (client starts and sub-orchestrations), by orchestration name.',
      labelNames: ['orchestration'],
      registers,
    });
    this.orchestrationsCompleted = new Counter({
      name: `${prefix}orchestrations_completed_total`,
      help: 'Executions that completed successfully, by orchestration name.',
      labelNames: ['orchestration'],
      registers,
    });
    this.orchestrationsFailed = new Counter({
      name: `${prefix}orchestrations_failed_total`,
      help: 'Executions that failed, by orchestration name.',
      labelNames: ['orchestration'],
      registers,
    });
    this.turnDuration = new Histogram({
      name: `${prefix}orchestration_turn_duration_seconds`,
      help: 'Time from fetching an orchestration turn to its acknowledgement (or abandonment).',
      labelNames: ['orchestration', 'outcome'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.activityDuration = new Histogram({
      name: `${prefix}activity_duration_seconds`,
      help: 'Time from fetching an activity to its acknowledgement (or abandonment).',
      labelNames: ['activity', 'outcome'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.lockSteals = new Counter({
      name: `${prefix}lock_steals_total`,
      help: 'Acks or renewals refused because the lock had expired and been taken over (or the item withdrawn).',
      labelNames: ['kind'],
      registers,
    });
    this.retries = new Counter({
      name: `${prefix}retries_total`,
      help: 'Redeliveries: orchestration turns and activities fetched with an attempt count above 1.',
      labelNames: ['kind'],
      registers,
    });
    this.safetyFetchHits = new Counter({
      name: `${prefix}safety_fetch_hits_total`,
      help:
        'Items that only the idle safety fetch found, by queue and cause: unannounced ' +
        '(a lost wake-up, expected 0), expired_lock (a dead holder), raced (taken a ' +
        'moment before its announcement arrived) or outage (ready while the store recovered from an outage).',
      labelNames: ['queue', 'cause'],
      registers,
      // The runtime counts per process (runtime/liveness.ts); read at scrape time.
      collect() {
        this.reset();
        for (const [queue, causes] of Object.entries(safetyFetchHits())) {
          for (const [cause, count] of Object.entries(causes)) this.inc({ queue, cause }, count);
        }
      },
    });
    // Process-wide availability figures (provider/availability.ts); read at scrape time.
    this.failovers = new Counter({
      name: `${prefix}failovers_total`,
      help: 'Times the connections of this process moved to another database node (a failover or switchover).',
      registers,
      collect() {
        this.reset();
        this.inc(availabilityTotals().failovers);
      },
    });
    this.databaseOutages = new Counter({
      name: `${prefix}database_outages_total`,
      help: 'Database outages this process rode out or is riding out (store calls failing with a retryable error).',
      registers,
      collect() {
        this.reset();
        this.inc(availabilityTotals().outages);
      },
    });
    this.databaseOutageSeconds = new Counter({
      name: `${prefix}database_outage_seconds_total`,
      help: 'Time during which store calls of this process failed with a retryable error (an outage in progress counts up to now).',
      registers,
      collect() {
        this.reset();
        this.inc(availabilityTotals().outageMs / 1000);
      },
    });
    const currentClient = (): Client | null => this.#client;
    // Gauges read at scrape time; the registry holds them, nothing else needs a reference.
    new Gauge({
      name: `${prefix}queue_depth`,
      help: 'Visible, unlocked messages per queue, read from the store at scrape time.',
      labelNames: ['queue'],
      registers,
      async collect() {
        const client = currentClient();
        if (client === null) return;
        const depths = await client.getQueueDepths();
        this.set({ queue: 'orchestrator' }, depths.orchestratorQueue);
        this.set({ queue: 'worker' }, depths.workerQueue);
      },
    });
    new Gauge({
      name: `${prefix}instances`,
      help: 'Instances by the status of their current execution, read from the store at scrape time.',
      labelNames: ['status'],
      registers,
      async collect() {
        const client = currentClient();
        if (client === null) return;
        const m = await client.getSystemMetrics();
        this.set({ status: 'running' }, m.runningInstances);
        this.set({ status: 'completed' }, m.completedInstances);
        this.set({ status: 'failed' }, m.failedInstances);
      },
    });
  }

  /** Reads queue depths and instance counts through `client` at every scrape. */
  attachClient(client: Client): this {
    this.#client = client;
    return this;
  }

  /** Content type of {@link text}. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text of every metric in the registry. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
