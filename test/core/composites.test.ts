import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { OrchestrationContext } from '../../src/core/orchestration-context';
import { Sim, outcomeOf } from './harness';

test('all: results per task in order, failures as {err}, timers as {ok:null}, empty list', () => {
  let empty: unknown;
  const sim = new Sim({
    Fan: function* (ctx: OrchestrationContext) {
      empty = yield ctx.all([]);
      const results = yield ctx.all([
        ctx.scheduleActivity('A', 1),
        ctx.scheduleActivity('B', 2),
        ctx.scheduleTimer(10),
        ctx.utcNow(),
      ]);
      return results;
    },
  });
  const first = sim.ack([sim.start('Fan')]);
  assert.deepEqual(
    first.workerItems.map((w) => [w.id, w.name]),
    [
      [2, 'A'],
      [3, 'B'],
    ],
  );
  assert.equal(first.orchestratorItems[0].type, 'TimerFired');
  sim.ack([sim.failed(3, 'b broke')]);
  sim.ack([sim.fired(4)]);
  const result = sim.turn([sim.done(2, { v: [1, 'x', null, true] })]);
  assert.equal(
    outcomeOf(result),
    'completed:[{"ok":{"v":[1,"x",null,true]}},{"err":"b broke"},{"ok":null},{"err":"unsupported task in join"}]',
  );
  assert.deepEqual(empty, []);
});

test('race: the first completion in history wins, the loser activity is cancelled with lock stealing', () => {
  const sim = new Sim({
    Race: function* (ctx: OrchestrationContext) {
      const r = yield ctx.race(ctx.scheduleActivity('Slow'), ctx.scheduleTimer(100));
      return r;
    },
  });
  sim.ack([sim.start('Race')]);
  const ack = sim.ack([sim.fired(3)]);
  assert.equal(
    outcomeOf({ kind: 'ack', ack, outcome: { kind: 'completed', output: sim.lastAck!.metadata.output! } }),
    'completed:{"index":1,"value":null}',
  );
  assert.deepEqual(sim.kinds(), [
    'OrchestrationStarted',
    'ActivityScheduled',
    'TimerCreated',
    'TimerFired',
    'ActivityCancelRequested',
    'OrchestrationCompleted',
  ]);
  const crumb = sim.find('ActivityCancelRequested')[0];
  assert.equal(crumb.reason, 'dropped_future');
  assert.equal(crumb.sourceEventId, 2);
  assert.deepEqual(ack.cancelledActivities, [{ instance: 'inst', executionId: 1, activityId: 2 }]);
});

test('race: errors are flattened into value and ties go to the first argument', () => {
  const sim = new Sim({
    Race: function* (ctx: OrchestrationContext) {
      const a = yield ctx.race(ctx.scheduleActivity('A'), ctx.scheduleActivity('B'));
      const b = yield ctx.race(ctx.dequeueEvent('q'), ctx.dequeueEvent('q'));
      return [a, b];
    },
  });
  sim.ack([sim.start('Race')]);
  sim.ack([sim.failed(3, 'B failed')]);
  assert.equal(sim.find('ActivityCancelRequested')[0].sourceEventId, 2);
  const result = sim.turn([sim.enqueue('q', 'm1'), sim.enqueue('q', 'm2')]);
  assert.equal(outcomeOf(result), 'completed:[{"index":1,"value":"B failed"},{"index":0,"value":"m1"}]');
  // The losing dequeue consumed nothing and is cancelled.
  const cancelled = sim.find('QueueSubscriptionCancelled').map((e) => e.reason);
  assert.deepEqual(cancelled.sort(), ['dropped_future']);
});

test('race: a losing sub-orchestration gets a breadcrumb and CancelInstance', () => {
  const sim = new Sim({
    Race: function* (ctx: OrchestrationContext) {
      yield ctx.race(ctx.scheduleSubOrchestration('Child', 1), ctx.scheduleTimer(5));
      yield ctx.scheduleTimer(5);
    },
  });
  const first = sim.ack([sim.start('Race')]);
  assert.deepEqual(first.orchestratorItems[0], {
    type: 'StartOrchestration',
    instance: 'inst::sub::2',
    orchestration: 'Child',
    input: '1',
    version: null,
    parentInstance: 'inst',
    parentId: 2,
    parentExecutionId: 1,
    executionId: 1,
  });
  assert.equal(sim.find('SubOrchestrationScheduled')[0].instance, 'sub::2');
  const ack = sim.ack([sim.fired(3)]);
  assert.deepEqual(
    ack.historyDelta.map((e) => e.kind),
    ['TimerFired', 'TimerCreated', 'SubOrchestrationCancelRequested'],
  );
  assert.ok(
    ack.orchestratorItems.some(
      (i) =>
        i.type === 'CancelInstance' &&
        i.instance === 'inst::sub::2' &&
        i.reason === 'parent dropped sub-orchestration future',
    ),
  );
  // Replaying reproduces the drop: no new breadcrumb, no nondeterminism.
  const next = sim.ack([sim.fired(sim.idOf('TimerCreated', 1))]);
  assert.equal(next.metadata.status, 'Completed');
  assert.equal(sim.find('SubOrchestrationCancelRequested').length, 1);
});

test('nondeterminism: a persisted dropped-future breadcrumb the code no longer reproduces', () => {
  const sim = new Sim({
    Both: function* (ctx: OrchestrationContext) {
      yield ctx.all([ctx.scheduleActivity('A'), ctx.scheduleActivity('B')]);
    },
  });
  sim.ack([sim.start('Both')]);
  // History as an earlier version of the code left it: it raced A and B and dropped A.
  const template = sim.history[1];
  sim.history.push({
    ...template,
    eventId: 4,
    sourceEventId: 2,
    kind: 'ActivityCancelRequested',
    reason: 'dropped_future',
  } as never);
  assert.match(
    outcomeOf(sim.turn([sim.raise('x', 1)])),
    /^failed:configuration:cancellation mismatch \(activity\): history records a dropped future for event 2/,
  );
});

test('composition errors are thrown into the generator; unsupported race members win immediately', () => {
  const sim = new Sim({
    Bad: function* (ctx: OrchestrationContext) {
      const errors: string[] = [];
      try {
        yield ctx.all([ctx.race(ctx.scheduleTimer(1), ctx.scheduleTimer(2))]);
      } catch (e) {
        errors.push((e as Error).message);
      }
      try {
        yield ctx.race(ctx.scheduleTimer(1));
      } catch (e) {
        errors.push((e as Error).message);
      }
      try {
        yield ctx.race(ctx.all([]), ctx.scheduleTimer(1));
      } catch (e) {
        errors.push((e as Error).message);
      }
      const r = yield ctx.race(ctx.newGuid(), ctx.scheduleTimer(1));
      return { errors, r };
    },
  });
  const result = sim.turn([sim.start('Bad')]);
  assert.equal(
    outcomeOf(result),
    'completed:{"errors":["nested join/select inside join is not ' +
      'supported","select currently supports exactly 2 tasks","nested join/select ' +
      'inside select is not supported"],"r":{"index":0,"value":"unsupported task in ' +
      'select"}}',
  );
  // Nothing was scheduled by the rejected compositions; the race loser timer is the only action.
  assert.deepEqual(sim.kinds(), ['OrchestrationStarted', 'TimerCreated', 'OrchestrationCompleted']);
});

test('typed variants parse string results once more; waitForEventTyped does not', () => {
  const sim = new Sim({
    Typed: function* (ctx: OrchestrationContext) {
      const a = yield ctx.scheduleActivityTyped('A');
      const b = yield ctx.scheduleActivity('A');
      const all = yield ctx.allTyped([ctx.scheduleActivity('A'), ctx.scheduleActivity('A')]);
      const race = yield ctx.raceTyped(ctx.scheduleActivity('A'), ctx.waitForEvent('never'));
      const ev = yield ctx.waitForEventTyped('e');
      return { a, b, all, race, ev };
    },
  });
  const doubly = JSON.stringify(JSON.stringify({ k: 1 }));
  const act = (n: number): number => sim.find('ActivityScheduled')[n].eventId;
  sim.ack([sim.start('Typed')]);
  sim.ack([sim.done(act(0), doubly, true)]);
  sim.ack([sim.done(act(1), doubly, true)]);
  sim.ack([sim.done(act(2), doubly, true), sim.failed(act(3), '{"e":1}')]);
  sim.ack([sim.done(act(4), doubly, true)]);
  const result = sim.turn([sim.raise('e', JSON.stringify({ z: 2 }))]);
  assert.equal(
    outcomeOf(result),
    'completed:{"a":{"k":1},"b":"{\\"k\\":1}","all":[{"ok":{"k":1}},{"err":{"e":1}}],"race":{"index":0,"value":{"k":1}},"ev":"{\\"z\\":2}"}',
  );
});

test('retry is not supported as a join member only through its own descriptor: join of retries works', () => {
  const sim = new Sim({
    J: function* (ctx: OrchestrationContext) {
      return yield ctx.all([
        ctx.scheduleActivityWithRetry('A', 1, { maxAttempts: 2, backoff: 'fixed' }),
        ctx.getValueFromInstance('other', 'k'),
      ]);
    },
  });
  sim.ack([sim.start('J')]);
  assert.equal(sim.find('ActivityScheduled')[1].name, '__duroxide_syscall:get_kv_value');
  assert.equal(sim.find('ActivityScheduled')[1].input, '{"instanceId":"other","key":"k"}');
  sim.ack([sim.failed(2, 'once'), sim.done(3, 'v')]);
  assert.equal(sim.find('TimerCreated')[0].fireAtMs, sim.nowMs + 1000);
  sim.ack([sim.fired(sim.idOf('TimerCreated'))]);
  const result = sim.turn([sim.done(sim.find('ActivityScheduled')[2].eventId, 'ok')]);
  assert.equal(outcomeOf(result), 'completed:[{"ok":"ok"},{"ok":"v"}]');
});
