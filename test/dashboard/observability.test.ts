/**
 * instrumentProvider on a real runtime and schema: Prometheus counters and histograms by name,
 * lock steals and retries, OpenTelemetry spans for client start, turns and activities with the
 * trace context carried through activities and a sub-orchestration, and JSON log records with
 * instance and execution ids.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  trace,
  type Attributes,
  type Context,
  type Span,
  type SpanContext,
  type SpanOptions,
  type SpanStatus,
  type Tracer,
} from '@opentelemetry/api';
import { Client } from '../../src/client/client';
import { instrumentProvider } from '../../src/observability/instrument';
import { DuroxMetrics } from '../../src/observability/prometheus';
import { startMetricsServer } from '../../src/observability/metrics-server';
import { PostgresProvider } from '../../src/postgres';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { quoteSchemaName } from '../../src/store/schema-name';
import type { Provider } from '../../src/provider/contract';
import { initTracing } from '../../src/runtime/logger';
import { Runtime } from '../../src/runtime/runtime';
import { DATABASE_URL } from './fixture';

interface Recorded {
  name: string;
  context: SpanContext;
  parentSpanId: string | undefined;
  attributes: Attributes;
  status?: SpanStatus;
  ended: boolean;
}

/** A Tracer that records every span in memory (what an SDK exporter would receive). */
class RecordingTracer {
  readonly spans: Recorded[] = [];

  startSpan(name: string, options: SpanOptions = {}, context?: Context): Span {
    const parent = context === undefined ? undefined : trace.getSpanContext(context);
    const record: Recorded = {
      name,
      context: {
        traceId: parent?.traceId ?? randomBytes(16).toString('hex'),
        spanId: randomBytes(8).toString('hex'),
        traceFlags: 1,
      },
      parentSpanId: parent?.spanId,
      attributes: { ...(options.attributes ?? {}) },
      ended: false,
    };
    this.spans.push(record);
    const span: Span = {
      spanContext: () => record.context,
      setAttribute: (key, value) => {
        if (value !== undefined) record.attributes[key] = value;
        return span;
      },
      setAttributes: (attributes) => {
        Object.assign(record.attributes, attributes);
        return span;
      },
      addEvent: () => span,
      addLink: () => span,
      addLinks: () => span,
      setStatus: (status) => {
        record.status = status;
        return span;
      },
      updateName: () => span,
      end: () => {
        record.ended = true;
      },
      isRecording: () => true,
      recordException: () => undefined,
    };
    return span;
  }

  startActiveSpan(): never {
    throw new Error('not used by Durox');
  }
}

function attr(span: Recorded, key: string): unknown {
  return span.attributes[key];
}

describe('observability', () => {
  const schema = `obs_${randomBytes(4).toString('hex')}`;
  const logFile = join(tmpdir(), `durox-obs-${randomBytes(4).toString('hex')}.log`);
  const tracer = new RecordingTracer();
  const metrics = new DuroxMetrics();
  let raw: PostgresProvider;
  let provider: Provider;
  let runtime: Runtime;
  let client: Client;

  before(async () => {
    // The filter is read when the logger is installed; this file runs in its own process.
    process.env.RUST_LOG = 'warn,durox::observability=info';
    initTracing({ logFile, logFormat: 'json', logLevel: 'info' });
    raw = await PostgresProvider.connectWithSchema(DATABASE_URL, schema);
    provider = instrumentProvider(raw, {
      metrics: metrics.attachClient(new Client(raw)),
      tracer: tracer as unknown as Tracer,
      logLevel: 'info',
    });
    client = new Client(provider);
    runtime = new Runtime(provider, { dispatcherPollIntervalMs: 20, logLevel: 'error' });
    runtime.registerActivity('Double', (_ctx, n: number) => n * 2);
    runtime.registerActivity('Fail', () => {
      throw new Error('activity failed on purpose');
    });
    runtime.registerOrchestration('Child', function* (ctx, n: number) {
      return yield ctx.scheduleActivity('Double', n);
    });
    runtime.registerOrchestration('Parent', function* (ctx, n: number) {
      const doubled = (yield ctx.scheduleActivity('Double', n)) as number;
      return yield ctx.scheduleSubOrchestrationWithId('Child', 'obs-child', doubled);
    });
    runtime.registerOrchestration('Failing', function* (ctx) {
      yield ctx.scheduleActivity('Fail', null);
    });
    await runtime.start();
  });

  after(async () => {
    await runtime.shutdown(2000);
    await raw.close();
    rmSync(logFile, { force: true });
    // Test cleanup only: drop the scratch schema (validated name).
    const admin = PgExecutor.fromUrl(DATABASE_URL, 1);
    await admin.query(`DROP SCHEMA IF EXISTS ${quoteSchemaName(schema, 'test')} CASCADE`);
    await admin.close();
  });

  /** The metrics text once it matches `pattern` (or as it is after 5 s, for the assertion to report). */
  async function metricsMatching(pattern: RegExp): Promise<string> {
    const deadline = Date.now() + 5_000;
    let text = await metrics.text();
    while (!pattern.test(text) && Date.now() < deadline) {
      await new Promise((resolve) => setImmediate(resolve));
      text = await metrics.text();
    }
    return text;
  }

  it('counts starts, completions and failures by orchestration name and times turns and activities', async () => {
    await client.startOrchestration('obs-parent', 'Parent', 3);
    await client.startOrchestration('obs-failing', 'Failing', null);
    assert.equal((await client.waitForOrchestration('obs-parent', 15_000)).output, 12);
    assert.equal((await client.waitForOrchestration('obs-failing', 15_000)).status, 'Failed');
    // The store hands a committed terminal status to this process's waiting clients inside the
    // ack call, before the instrumented provider around it counts the turn: the counter of the
    // last turn can trail the wait by a few microtasks.
    const text = await metricsMatching(/durox_orchestrations_completed_total\{orchestration="Parent"\} 1/);
    assert.match(text, /durox_orchestrations_started_total\{orchestration="Parent"\} 1/);
    assert.match(text, /durox_orchestrations_started_total\{orchestration="Child"\} 1/);
    assert.match(text, /durox_orchestrations_completed_total\{orchestration="Child"\} 1/);
    assert.match(text, /durox_orchestrations_completed_total\{orchestration="Parent"\} 1/);
    assert.match(text, /durox_orchestrations_failed_total\{orchestration="Failing"\} 1/);
    assert.match(text, /durox_activity_duration_seconds_count\{activity="Double",outcome="completed"\} 2/);
    assert.match(text, /durox_activity_duration_seconds_count\{activity="Fail",outcome="failed"\} 1/);
    assert.match(
      text,
      /durox_orchestration_turn_duration_seconds_count\{orchestration="Parent",outcome="Completed"\} 1/,
    );
    assert.match(text, /durox_queue_depth\{queue="orchestrator"\} 0/);
    const server = await startMetricsServer(metrics);
    try {
      const scraped = await fetch(server.url);
      assert.equal(scraped.status, 200);
      assert.match(await scraped.text(), /durox_orchestrations_failed_total\{orchestration="Failing"\} 1/);
      assert.equal((await fetch(server.url.replace('/metrics', '/other'))).status, 404);
    } finally {
      await server.close();
    }
  });

  it('carries the trace from the client start through turns, activities and the sub-orchestration', () => {
    const start = tracer.spans.find(
      (s) => s.name === 'durox.client.start' && attr(s, 'durox.instance_id') === 'obs-parent',
    );
    assert.ok(start !== undefined && start.ended);
    const traceId = start.context.traceId;
    const parentTurns = tracer.spans.filter(
      (s) => s.name === 'durox.turn' && attr(s, 'durox.instance_id') === 'obs-parent',
    );
    assert.ok(parentTurns.length >= 3, `parent turns: ${parentTurns.length}`);
    assert.equal(parentTurns[0].parentSpanId, start.context.spanId, 'first turn is a child of the client start');
    assert.ok(parentTurns.every((t) => t.context.traceId === traceId && t.ended));
    const activities = tracer.spans.filter((s) => s.name === 'durox.activity' && s.context.traceId === traceId);
    assert.equal(activities.length, 2, 'both activities (parent and child) belong to the trace');
    assert.equal(activities[0].parentSpanId, parentTurns[0].context.spanId);
    assert.equal(parentTurns[1].parentSpanId, activities[0].context.spanId, 'the completion carries the activity span');
    const childTurns = tracer.spans.filter(
      (s) => s.name === 'durox.turn' && attr(s, 'durox.instance_id') === 'obs-child',
    );
    assert.ok(childTurns.length >= 2);
    assert.ok(
      childTurns.every((t) => t.context.traceId === traceId),
      'the sub-orchestration joins the trace',
    );
    assert.equal(childTurns[0].parentSpanId, parentTurns[1].context.spanId);
    const failedActivity = tracer.spans.find(
      (s) => s.name === 'durox.activity' && attr(s, 'durox.activity') === 'Fail',
    );
    assert.equal(failedActivity?.attributes['durox.outcome'], 'failed');
  });

  it('writes JSON log records with instance and execution ids', () => {
    const records = readFileSync(logFile, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { target: string; fields: Record<string, unknown> });
    const turn = records.find((r) => r.target === 'durox::observability' && r.fields.instance_id === 'obs-child');
    assert.ok(turn !== undefined, 'a record for the child instance');
    assert.equal(turn.fields.execution_id, 1);
    assert.equal(typeof turn.fields.duration_ms, 'number');
  });

  it('counts lock steals and redeliveries', async () => {
    await runtime.shutdown(2000);
    await client.startOrchestration('obs-steal', 'Child', 1);
    const first = await provider.fetchOrchestrationItem({ lockTimeoutMs: 50 });
    assert.ok(first !== null);
    await new Promise((resolve) => setTimeout(resolve, 120));
    const second = await provider.fetchOrchestrationItem({ lockTimeoutMs: 30_000 });
    assert.ok(second !== null && second.attemptCount === 2);
    await assert.rejects(provider.renewOrchestrationItemLock(first.lockToken, 1000), /lock/i);
    await provider.abandonOrchestrationItem(second.lockToken);
    const text = await metrics.text();
    assert.match(text, /durox_lock_steals_total\{kind="orchestration"\} 1/);
    assert.match(text, /durox_retries_total\{kind="orchestration"\} 1/);
  });
});
