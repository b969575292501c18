/**
 * The schedule orchestration in the pure turn engine (no store): a long catch-up must not trip
 * the engine's limit of 100 rounds of new actions per turn. With 'all', 300 missed fires of a
 * per-second cron are started in turns of at most 50 yields, each fire exactly once, in order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { OrchestrationFunction } from '../../src/core/turn-api';
import { runInstanceId, type ScheduleState } from '../../src/schedules/model';
import { scheduleOrchestration } from '../../src/schedules/schedule-orchestration';
import { Sim } from '../core/harness';

function newSchedule(overlap: 'allow' | 'skip'): ScheduleState {
  return {
    scheduleId: 'catch',
    spec: {
      cron: '* * * * * *',
      timezone: null,
      orchestration: 'Run',
      version: null,
      input: null,
      overlap,
      catchUp: 'all',
    },
    paused: false,
    cursorMs: null,
    lastRun: null,
    counts: { started: 0, triggered: 0, skippedOverlap: 0, cancelledPrevious: 0, missed: 0 },
  };
}

test('300 missed fires are caught up over several turns, each started once, in order', () => {
  const sim = new Sim({ Schedule: scheduleOrchestration as OrchestrationFunction });
  const startMs = 1_800_000_000_500;
  sim.nowMs = startMs;
  sim.ack([sim.start('Schedule', newSchedule('allow'))]);
  sim.nowMs = startMs + 300_000;

  let turns = 0;
  for (;;) {
    // Deliver every timer that is due (the race timer, then each pacing timer).
    const fired = new Set(sim.find('TimerFired').map((e) => e.sourceEventId));
    const due = sim.find('TimerCreated').filter((t) => !fired.has(t.eventId) && t.fireAtMs <= sim.nowMs);
    if (due.length === 0) break;
    const ack = sim.ack(due.map((t) => sim.fired(t.eventId)));
    assert.equal(ack.metadata.status ?? 'Running', 'Running', JSON.stringify(ack.metadata));
    turns += 1;
    assert.ok(turns < 50, 'the catch-up ends');
  }
  const started = sim.find('OrchestrationChained').map((e) => e.instance);
  const expected = Array.from({ length: 300 }, (_, i) => runInstanceId('catch', startMs - 500 + (i + 1) * 1000));
  assert.deepEqual(started, expected);
  assert.ok(turns >= 6, `paced over ${turns} turns`);
  const view = JSON.parse(sim.customStatus as string) as { counts: { started: number }; nextFireAtMs: number };
  assert.equal(view.counts.started, 300);
  assert.equal(view.nextFireAtMs, startMs - 500 + 301_000);
});
