/**
 * A node that turns read-only under the runtime (what a failover's demoted primary does): for
 * three seconds every write the store receives fails with SQLSTATE 25006, as a standby answers.
 * Turn acks, activity acks, starts and status reads must ride it out (retryable `unavailable`,
 * retried by time), never fail an orchestration, and the log must name the read-only node.
 * The real failover runs in test/chaos/failover.chaos.ts.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DATABASE_URL, durox } from '../e2e/helpers';
import { applyMigrations } from '../../src/store/migrations';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { ProcedureProvider } from '../../src/store/procedure-provider';
import type { NotificationEvent, Row, SqlExecutor, SqlSession } from '../../src/store/sql-executor';
import { freshSchema } from './support';
import { dropTestSchema } from '../helpers/postgres-harness';

const logFile = join(tmpdir(), `durox-read-only-${process.pid}-${randomBytes(3).toString('hex')}.log`);
durox.initTracing({ logFile, logLevel: 'warn', logFormat: 'compact' });
const schema = freshSchema('rel_readonly');

after(async () => {
  await dropTestSchema(schema);
  rmSync(logFile, { force: true });
});

/**
 * Procedures that write, which a standby refuses; status reads are refused too (as by a node that
 * cannot be reached) so that waitForOrchestration's retry is exercised.
 */
const REFUSED =
  /\.(ack_orchestration_items?|ack_work_items?_with_turns?|ack_work_items?|enqueue_orchestrator_work|start_orchestration_claimed|start_orchestrations?_with_turns?|fetch_orchestration_items?|fetch_work_item_group|fetch_work_items?|get_instance_status)\(/;

/** Passes statements through, except writes while `readOnly` is set: those fail as on a standby. */
class ReadOnlyWindow implements SqlExecutor {
  readOnly = false;
  refused = new Map<string, number>();

  constructor(private readonly inner: PgExecutor) {}

  async query(text: string, params?: unknown[]): Promise<Row[]> {
    const write = REFUSED.exec(text);
    if (this.readOnly && write !== null) {
      this.refused.set(write[1], (this.refused.get(write[1]) ?? 0) + 1);
      throw Object.assign(new Error('cannot execute INSERT in a read-only transaction'), {
        code: '25006',
        severity: 'ERROR',
      });
    }
    return this.inner.query(text, params);
  }

  withSession<T>(work: (session: SqlSession) => Promise<T>): Promise<T> {
    return this.inner.withSession(work);
  }

  subscribe(setupText: string, onEvent: (event: NotificationEvent) => void): () => Promise<void> {
    return this.inner.subscribe(setupText, onEvent);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

test(
  'a read-only window under load: acks, starts and waits ride it out, nothing fails',
  { timeout: 60_000 },
  async () => {
    const admin = PgExecutor.fromUrl(DATABASE_URL, 2);
    try {
      await applyMigrations(admin, schema);
    } finally {
      await admin.close();
    }
    const window = new ReadOnlyWindow(PgExecutor.fromUrl(DATABASE_URL, 6));
    const provider = new ProcedureProvider(window, schema, 'postgres');
    const runtime = new durox.Runtime(provider, { logLevel: 'warn' });
    runtime.registerActivity('Slow', async (_ctx, x: number) => {
      await new Promise((resolve) => setTimeout(resolve, 200));
      return x + 1;
    });
    let opened = 0;
    runtime.registerOrchestration('Three', function* (ctx, x: number) {
      for (let i = 0; i < 3; i += 1) {
        x = yield ctx.scheduleActivity('Slow', x);
        // The window opens during a turn, so that turn's ack is the first write refused.
        if (x === 52 && opened === 0) {
          window.readOnly = true;
          opened = Date.now();
        }
      }
      return x;
    });
    await runtime.start();
    const client = new durox.Client(provider);
    try {
      // ro-before-5 starts at 50: its second activity returns 52, which opens the window.
      const before = Array.from({ length: 6 }, (_, i) => `ro-before-${i}`);
      for (const [i, id] of before.entries()) await client.startOrchestration(id, 'Three', i * 10);
      while (opened === 0) await new Promise((resolve) => setTimeout(resolve, 10));
      // Through a second provider object on the same connections: its client did not start the
      // instance, so it reads the status (a client that started it knows it runs, and sleeps).
      const reader = new durox.Client(new ProcedureProvider(window, schema, 'postgres'));
      const waitThroughWindow = reader.waitForOrchestration(before[5], 30_000);
      // Started and waited for while every write is refused: the calls wait for the window to close.
      const during = Array.from({ length: 4 }, (_, i) => `ro-during-${i}`);
      const starts = during.map((id, i) => client.startOrchestration(id, 'Three', 100 + i));
      await new Promise((resolve) => setTimeout(resolve, 3000 - (Date.now() - opened)));
      window.readOnly = false;
      await Promise.all(starts);
      assert.ok(Date.now() - opened >= 3000);
      assert.equal((await waitThroughWindow).status, 'Completed', 'a wait begun in the window outlives it');
      assert.ok((window.refused.get('get_instance_status') ?? 0) > 0, 'a status read was refused');
      const all = [
        ...before.map((id, i) => [id, i * 10 + 3] as const),
        ...during.map((id, i) => [id, 100 + i + 3] as const),
      ];
      for (const [id, expected] of all) {
        const status = await client.waitForOrchestration(id, 30_000);
        assert.equal(status.status, 'Completed', `${id}: ${status.error ?? ''}`);
        assert.equal(status.output, expected, id);
      }
      assert.ok(
        // With fused completion the turn may ride on the activity's ack (ack_work_item_with_turn).
        (window.refused.get('ack_orchestration_item') ?? 0) +
          (window.refused.get('ack_orchestration_items') ?? 0) +
          (window.refused.get('ack_work_item_with_turn') ?? 0) +
          (window.refused.get('ack_work_items_with_turns') ?? 0) >
          0,
        'a turn ack was refused',
      );
      assert.ok(
        (window.refused.get('enqueue_orchestrator_work') ?? 0) +
          (window.refused.get('start_orchestration_claimed') ?? 0) +
          (window.refused.get('start_orchestration_with_turn') ?? 0) +
          (window.refused.get('start_orchestrations_with_turns') ?? 0) >
          0,
        'a start was refused',
      );
      assert.equal(runtime.metricsSnapshot()?.orchInfrastructureErrors, 0, 'no orchestration failed for it');
      const log = readFileSync(logFile, 'utf8');
      assert.match(log, /the node is a read-only standby/);
    } finally {
      await runtime.shutdown(1000);
      await provider.close();
    }
  },
);
