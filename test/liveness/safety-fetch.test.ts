/**
 * The safety net is visible: an idle worker woken by the safety timer is told so ('safety'), and
 * what that fetch finds is counted by cause and exported to Prometheus. Timers are mocked: no
 * ten-second waits.
 */
import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import { DuroxMetrics } from '../../src/observability/prometheus';
import { recordOutageFailure } from '../../src/provider/availability';
import {
  ANNOUNCEMENT_GRACE_MS,
  OUTAGE_GRACE_MS,
  recordSafetyFetchHit,
  safetyFetchCause,
  safetyFetchHits,
} from '../../src/runtime/liveness';
import { QueueGate, SAFETY_FETCH_MS } from '../../src/runtime/queue-gate';

test('an idle worker woken by the safety timer, and only by it, wakes with reason safety', async () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const gate = new QueueGate<string>();
    const stop = new AbortController();
    const announced = gate.wait(stop.signal);
    gate.grant(1);
    assert.equal(await announced, 'once', 'a credit wakes for one announced item');
    const idle = gate.wait(stop.signal);
    mock.timers.tick(SAFETY_FETCH_MS - 1);
    let woke = false;
    // Not awaited: the test checks, tick by tick, whether the wait has ended yet.
    void idle.then(() => (woke = true));
    await Promise.resolve();
    assert.equal(woke, false, 'not before the interval');
    mock.timers.tick(1);
    assert.equal(await idle, 'safety');
    gate.dispose();
    stop.abort();
  } finally {
    mock.timers.reset();
  }
});

test('a safety-fetch find of a redelivered item counts as an expired lock, not as a lost wake-up', async () => {
  const before = safetyFetchHits();
  assert.equal(
    recordSafetyFetchHit({ queue: 'worker', instanceId: 'i-1', activityName: 'A', attemptCount: 2 }),
    'expired_lock',
  );
  const after = safetyFetchHits();
  assert.equal(after.worker.expired_lock, before.worker.expired_lock + 1);
  assert.equal(after.worker.unannounced, before.worker.unannounced);
  assert.equal(after.orchestrator.expired_lock, before.orchestrator.expired_lock);
});

test(
  'a first delivery that had been visible only a moment raced its announcement; ' + 'an older one was a lost wake-up',
  () => {
    assert.equal(
      safetyFetchCause({ queue: 'orchestrator', instanceId: 'i-2', attemptCount: 1, waitedMs: 40 }),
      'raced',
    );
    assert.equal(
      safetyFetchCause({ queue: 'orchestrator', instanceId: 'i-2', attemptCount: 1, waitedMs: ANNOUNCEMENT_GRACE_MS }),
      'unannounced',
    );
    assert.equal(
      safetyFetchCause({ queue: 'worker', instanceId: 'i-2', attemptCount: 1 }),
      'unannounced',
      'a store that does not say how long counts as lost',
    );
    assert.equal(
      safetyFetchCause({ queue: 'worker', instanceId: 'i-2', attemptCount: 3, waitedMs: 40 }),
      'expired_lock',
    );
    const before = safetyFetchHits();
    assert.equal(
      recordSafetyFetchHit({ queue: 'orchestrator', instanceId: 'i-3', attemptCount: 1, waitedMs: 10 }),
      'raced',
    );
    const after = safetyFetchHits();
    assert.equal(after.orchestrator.raced, before.orchestrator.raced + 1);
    assert.equal(after.orchestrator.unannounced, before.orchestrator.unannounced);
  },
);

test('Prometheus exports durox_safety_fetch_hits_total by queue and cause', async () => {
  const metrics = new DuroxMetrics();
  const expired = safetyFetchHits().worker.expired_lock;
  const text = await metrics.text();
  assert.match(text, /^durox_safety_fetch_hits_total\{queue="orchestrator",cause="unannounced"\} 0$/m);
  assert.match(
    text,
    new RegExp(`^durox_safety_fetch_hits_total\\{queue="worker",cause="expired_lock"\\} ${expired}$`, 'm'),
  );
});

test('a first delivery found soon after a store call failed is put down to the outage, later ones are lost', () => {
  // Runs last: it records store failures, which this process keeps.
  const hit = { queue: 'orchestrator' as const, instanceId: 'i-4', attemptCount: 1, waitedMs: 2_000 };
  recordOutageFailure(Date.now() - OUTAGE_GRACE_MS - 1_000);
  assert.equal(safetyFetchCause(hit), 'unannounced', 'the store has been healthy for longer than the grace');
  recordOutageFailure(Date.now() - 1_000);
  assert.equal(safetyFetchCause(hit), 'outage', 'LISTEN/NOTIFY is not durable across a failover');
  assert.equal(safetyFetchCause({ ...hit, waitedMs: 40 }), 'raced', 'a moment old still raced its announcement');
  assert.equal(safetyFetchCause({ ...hit, attemptCount: 2 }), 'expired_lock');
  const before = safetyFetchHits();
  assert.equal(recordSafetyFetchHit(hit), 'outage');
  assert.equal(safetyFetchHits().orchestrator.outage, before.orchestrator.outage + 1);
  assert.equal(safetyFetchHits().orchestrator.unannounced, before.orchestrator.unannounced);
});
