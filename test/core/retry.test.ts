import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelayMs } from '../../src/core/composites';
import type { OrchestrationContext } from '../../src/core/orchestration-context';
import { Sim, outcomeOf } from './harness';

test('backoff rules: exponential default, fixed, anything else linear, all capped at 30 s', () => {
  assert.deepEqual(
    [1, 2, 3].map((a) => backoffDelayMs(undefined, a)),
    [100, 200, 400],
  );
  assert.equal(backoffDelayMs('exponential', 20), 30_000);
  assert.equal(backoffDelayMs('fixed', 7), 1000);
  assert.deepEqual(
    [1, 2].map((a) => backoffDelayMs('linear', a)),
    [100, 200],
  );
  assert.equal(backoffDelayMs('none', 1000), 30_000);
});

test('retry: failed attempts are followed by durable backoff timers and a replay-safe warning', () => {
  const sim = new Sim({
    R: function* (ctx: OrchestrationContext) {
      return yield ctx.scheduleActivityWithRetryOnSession('Flaky', 'in', { maxAttempts: 3 }, 'sess-1');
    },
  });
  sim.ack([sim.start('R')]);
  sim.ack([sim.failed(2, 'e1')]);
  const timer = sim.find('TimerCreated')[0];
  assert.equal(timer.fireAtMs, sim.nowMs + 100);
  assert.equal(sim.traces.filter((t) => t.level === 'warn').length, 1);
  assert.equal(sim.traces[0].message, "Activity 'Flaky' attempt 1/3 failed: e1. Retrying... (session=sess-1)");
  sim.ack([sim.fired(timer.eventId)]);
  const second = sim.find('ActivityScheduled')[1];
  assert.equal(second.sessionId, 'sess-1');
  assert.equal(sim.lastAck!.workerItems[0].sessionId, 'sess-1');
  sim.ack([sim.failed(second.eventId, 'e2')]);
  assert.equal(sim.find('TimerCreated')[1].fireAtMs, sim.nowMs + 200);
  // The first warning was not repeated while replaying.
  assert.deepEqual(
    sim.traces.map((t) => t.message.slice(0, 30)),
    ["Activity 'Flaky' attempt 1/3 f", "Activity 'Flaky' attempt 2/3 f"],
  );
  sim.ack([sim.fired(sim.idOf('TimerCreated', 1))]);
  const result = sim.turn([sim.done(sim.find('ActivityScheduled')[2].eventId, 'finally')]);
  assert.equal(outcomeOf(result), 'completed:"finally"');
});

test('retry: exhausted attempts throw the last error', () => {
  const sim = new Sim({
    R: function* (ctx: OrchestrationContext) {
      try {
        yield ctx.scheduleActivityWithRetry('Flaky', null, { maxAttempts: 2, backoff: 'fixed' });
      } catch (e) {
        return (e as Error).message;
      }
    },
  });
  sim.ack([sim.start('R')]);
  sim.ack([sim.failed(2, 'first')]);
  sim.ack([sim.fired(sim.idOf('TimerCreated'))]);
  const result = sim.turn([sim.failed(sim.find('ActivityScheduled')[1].eventId, 'last')]);
  assert.equal(outcomeOf(result), 'completed:"last"');
});

test('retry: a per-attempt timeout races a timer; timing out throws without retrying and cancels the activity', () => {
  const sim = new Sim({
    R: function* (ctx: OrchestrationContext) {
      try {
        yield ctx.scheduleActivityWithRetry('Slow', 1, { maxAttempts: 5, timeoutMs: 50, totalTimeoutMs: 500 });
      } catch (e) {
        return (e as Error).message;
      }
    },
  });
  const first = sim.ack([sim.start('R')]);
  assert.deepEqual(
    first.historyDelta.map((e) => e.kind),
    ['OrchestrationStarted', 'ActivityScheduled', 'TimerCreated'],
  );
  // totalTimeoutMs overrides timeoutMs.
  assert.equal(sim.find('TimerCreated')[0].fireAtMs, sim.nowMs + 500);
  const ack = sim.ack([sim.fired(3)]);
  assert.equal(ack.metadata.output, '"timeout: activity timed out"');
  assert.deepEqual(ack.cancelledActivities, [{ instance: 'inst', executionId: 1, activityId: 2 }]);
  assert.equal(sim.find('ActivityScheduled').length, 1);
});

test('retry: maxAttempts 0 fails the orchestration as a panic', () => {
  const sim = new Sim({
    R: function* (ctx: OrchestrationContext) {
      yield ctx.scheduleActivityWithRetry('A', 1, { maxAttempts: 0 });
    },
  });
  sim.turn([sim.start('R')]);
  assert.match(sim.lastAck!.metadata.output!, /^orchestration panicked: RetryPolicy: maxAttempts must be at least 1/);
});
