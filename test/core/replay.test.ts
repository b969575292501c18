import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { OrchestrationContext } from '../../src/core/orchestration-context';
import { DUROX_VERSION } from '../../src/core/types';
import { Sim, outcomeOf } from './harness';
import type { Untyped } from '../../src/core/turn-api';

function* twoSteps(ctx: OrchestrationContext, input: { n: number }): Generator<unknown, unknown, Untyped> {
  const a = yield ctx.scheduleActivity('Add', { x: input.n });
  const b = yield ctx.scheduleActivity('Double', a);
  return { a, b };
}

test('a new instance records OrchestrationStarted, schedules the first activity and dispatches it', () => {
  const sim = new Sim({ TwoSteps: twoSteps });
  const ack = sim.ack([sim.start('TwoSteps', { n: 1 })]);
  assert.deepEqual(sim.kinds(), ['OrchestrationStarted', 'ActivityScheduled']);
  const [started, scheduled] = ack.historyDelta;
  assert.equal(started.eventId, 1);
  assert.equal(scheduled.eventId, 2);
  for (const event of ack.historyDelta) {
    assert.equal(event.instanceId, 'inst');
    assert.equal(event.executionId, 1);
    assert.equal(event.timestampMs, sim.nowMs);
    assert.equal(event.duroxVersion, DUROX_VERSION);
  }
  assert.equal(started.kind === 'OrchestrationStarted' && started.version, '1.0.0');
  assert.deepEqual(ack.workerItems, [
    {
      type: 'ActivityExecute',
      instance: 'inst',
      executionId: 1,
      id: 2,
      name: 'Add',
      input: '{"x":1}',
      sessionId: null,
      tag: null,
    },
  ]);
  assert.equal(ack.metadata.status, undefined);
  assert.equal(ack.metadata.orchestrationName, 'TwoSteps');
});

test('replays over persisted history and completes with the JSON output', () => {
  const sim = new Sim({ TwoSteps: twoSteps });
  sim.ack([sim.start('TwoSteps', { n: 1 })]);
  sim.ack([sim.done(2, 11)]);
  assert.deepEqual(sim.kinds().slice(2), ['ActivityCompleted', 'ActivityScheduled']);
  const scheduled = sim.find('ActivityScheduled')[1];
  assert.equal(scheduled.input, '11');
  assert.equal(sim.find('ActivityCompleted')[0].sourceEventId, 2);
  const result = sim.turn([sim.done(scheduled.eventId, 22)]);
  assert.equal(outcomeOf(result), 'completed:{"a":11,"b":22}');
  assert.equal(sim.lastAck!.metadata.status, 'Completed');
  assert.equal(sim.lastAck!.metadata.output, '{"a":11,"b":22}');
  assert.equal(sim.last().kind, 'OrchestrationCompleted');
});

test('an application activity failure is thrown into the generator and can be caught', () => {
  const sim = new Sim({
    Catch: function* (ctx: OrchestrationContext) {
      try {
        yield ctx.scheduleActivity('Boom');
        return 'no';
      } catch (e) {
        return `caught ${(e as Error).message}`;
      }
    },
  });
  sim.ack([sim.start('Catch')]);
  assert.equal(outcomeOf(sim.turn([sim.failed(2, 'kaput')])), 'completed:"caught kaput"');
});

test('an uncaught throw fails the orchestration with the stack text', () => {
  const sim = new Sim({
    Throw: function* (ctx: OrchestrationContext) {
      yield ctx.scheduleTimer(5);
      throw new Error('bad thing');
    },
  });
  sim.ack([sim.start('Throw')]);
  const result = sim.turn([sim.fired(2)]);
  assert.equal(result.kind, 'ack');
  if (result.kind !== 'ack' || result.outcome.kind !== 'failed') throw new Error('expected failure');
  const details = result.outcome.details;
  assert.equal(details.category, 'application');
  assert.ok(details.category === 'application' && details.kind === 'OrchestrationFailed');
  assert.match(sim.lastAck!.metadata.output!, /^Error: bad thing\n\s+at /);
});

test('a throw before the first yield and invalid JSON input both fail the orchestration', () => {
  const sim = new Sim({
    Early: function* () {
      throw 'plain string';
    },
  });
  assert.equal(outcomeOf(sim.turn([sim.start('Early')])), 'failed:application:plain string');
  const bad = new Sim(
    {
      Any: function* () {
        return 1;
      },
    },
    'bad',
  );
  const result = bad.turn([{ ...bad.start('Any'), input: '{not json' } as never]);
  assert.match(outcomeOf(result), /^failed:application:SyntaxError/);
});

test('yielding something that is not a task fails with an invalid step result message', () => {
  const sim = new Sim({
    Weird: function* () {
      yield { foo: 1 };
    },
    Promise: function* () {
      yield Promise.resolve(1);
    },
  });
  assert.match(
    outcomeOf(sim.turn([sim.start('Weird')])),
    /invalid step result: orchestration yielded object \{"foo":1\}/,
  );
  const p = new Sim({ Promise: sim.handlers.Promise! }, 'p');
  assert.match(outcomeOf(p.turn([p.start('Promise')])), /invalid step result: .*Promise/);
});

test('undefined return becomes "null" and an empty input string becomes undefined', () => {
  let seen: unknown = 'unset';
  const sim = new Sim({
    Nothing: function* (_ctx: OrchestrationContext, input: unknown) {
      seen = input;
      return undefined;
    },
  });
  assert.equal(outcomeOf(sim.turn([{ ...sim.start('Nothing'), input: '' } as never])), 'completed:null');
  assert.equal(seen, undefined);
});

test('nondeterminism: a changed activity name is a schedule mismatch naming both', () => {
  const sim = new Sim({ TwoSteps: twoSteps });
  sim.ack([sim.start('TwoSteps', { n: 1 })]);
  sim.handlers.TwoSteps = function* (ctx: OrchestrationContext) {
    yield ctx.scheduleActivity('Subtract', { x: 1 });
  };
  const result = sim.turn([sim.done(2, 11)]);
  const text = outcomeOf(result);
  assert.match(text, /^failed:configuration:schedule mismatch: action=ScheduleActivity\{name="Subtract"/);
  assert.match(text, /vs event=ActivityScheduled#2\{name="Add", input="\{\\"x\\":1\}"/);
  assert.equal(sim.last().kind, 'OrchestrationFailed');
  assert.match(sim.lastAck!.metadata.output!, /^nondeterministic: schedule mismatch/);
  // The completion staged this turn is still recorded; the in-flight activity is cancelled after.
  assert.deepEqual(sim.kinds(), [
    'OrchestrationStarted',
    'ActivityScheduled',
    'ActivityCompleted',
    'OrchestrationFailed',
  ]);
});

test('nondeterminism: a changed activity input is a schedule mismatch', () => {
  const sim = new Sim({ TwoSteps: twoSteps });
  sim.ack([sim.start('TwoSteps', { n: 1 })]);
  sim.handlers.TwoSteps = function* (ctx: OrchestrationContext) {
    yield ctx.scheduleActivity('Add', { x: 2 });
  };
  assert.match(
    outcomeOf(sim.turn([sim.done(2, 11)])),
    /schedule mismatch: action=ScheduleActivity\{name="Add", input="\{\\"x\\":2\}"/,
  );
});

test('nondeterminism: history schedule but no emitted action', () => {
  const sim = new Sim({ TwoSteps: twoSteps });
  sim.ack([sim.start('TwoSteps', { n: 1 })]);
  sim.handlers.TwoSteps = function* (ctx: OrchestrationContext) {
    ctx.setCustomStatus('x');
    yield ctx.continueAsNew(1);
  };
  assert.match(outcomeOf(sim.turn([sim.done(2, 11)])), /schedule mismatch: action=UpdateCustomStatus/);
  const other = new Sim({ TwoSteps: twoSteps }, 'o');
  other.ack([other.start('TwoSteps', { n: 1 })]);
  other.handlers.TwoSteps = function* (ctx: OrchestrationContext) {
    yield ctx.continueAsNew(1);
  };
  assert.match(
    outcomeOf(other.turn([other.done(2, 11)])),
    /^failed:configuration:history schedule but no emitted action: ActivityScheduled#2/,
  );
});

test('nondeterminism: a completion for an unknown id or of the wrong kind', () => {
  const sim = new Sim({ TwoSteps: twoSteps });
  sim.ack([sim.start('TwoSteps', { n: 1 })]);
  assert.match(
    outcomeOf(sim.turn([sim.done(9, 1)])),
    /^failed:configuration:no matching schedule for activity completion \(id=9\)/,
  );
  const other = new Sim({ TwoSteps: twoSteps }, 'o');
  other.ack([other.start('TwoSteps', { n: 1 })]);
  assert.match(
    outcomeOf(other.turn([other.fired(2)])),
    /^failed:configuration:completion kind mismatch: timer completion for event 2, which is ActivityScheduled/,
  );
});

test('nondeterminism: corrupted history and completions without an open schedule', () => {
  const sim = new Sim({ TwoSteps: twoSteps });
  sim.ack([sim.start('TwoSteps', { n: 1 })]);
  sim.history = sim.history.slice(1);
  assert.match(outcomeOf(sim.turn([sim.raise('x', 1)])), /corrupted history/);
  const other = new Sim({ TwoSteps: twoSteps }, 'o');
  other.ack([other.start('TwoSteps', { n: 1 })]);
  other.ack([other.done(2, 11)]);
  // Tamper: a second completion for the same schedule in persisted history.
  const completion = other.find('ActivityCompleted')[0];
  other.history.push({ ...completion, eventId: 99 });
  assert.match(outcomeOf(other.turn([other.raise('x', 1)])), /completion without open schedule: ActivityCompleted#99/);
});

test('duplicate and stale completions are dropped silently', () => {
  const sim = new Sim({ TwoSteps: twoSteps });
  sim.ack([sim.start('TwoSteps', { n: 1 })]);
  const ack = sim.ack([sim.done(2, 11), sim.done(2, 12), { ...sim.done(2, 13), executionId: 7 } as never]);
  assert.deepEqual(
    ack.historyDelta.map((e) => e.kind),
    ['ActivityCompleted', 'ActivityScheduled'],
  );
  const again = sim.ack([sim.done(2, 14)]);
  assert.deepEqual(again.historyDelta, []);
  assert.deepEqual(again.workerItems, []);
});

test('a non-application activity failure is recorded and fails the orchestration uncatchably', () => {
  const sim = new Sim({
    Catch: function* (ctx: OrchestrationContext) {
      try {
        yield ctx.scheduleActivity('A');
      } catch {
        return 'caught';
      }
    },
  });
  sim.ack([sim.start('Catch')]);
  const poison = {
    category: 'poison' as const,
    attemptCount: 11,
    maxAttempts: 10,
    messageType: { kind: 'Activity' as const, instance: 'inst', executionId: 1, activityName: 'A', activityId: 2 },
    message: 'too many',
  };
  const result = sim.turn([sim.failed(2, '', poison)]);
  assert.equal(outcomeOf(result), 'failed:poison:');
  assert.deepEqual(sim.kinds(), ['OrchestrationStarted', 'ActivityScheduled', 'ActivityFailed', 'OrchestrationFailed']);
  assert.equal(sim.lastAck!.metadata.output, 'poison: activity A#2 exceeded 11 attempts (max 10)');
});

test('the first start item wins; a duplicate start for a running instance is ignored', () => {
  const sim = new Sim({ TwoSteps: twoSteps });
  const ack = sim.ack([sim.start('TwoSteps', { n: 1 }), sim.start('TwoSteps', { n: 5 })]);
  assert.equal(ack.historyDelta.filter((e) => e.kind === 'OrchestrationStarted').length, 1);
  assert.equal(sim.find('ActivityScheduled')[0].input, '{"x":1}');
  const again = sim.ack([sim.start('TwoSteps', { n: 9 })]);
  assert.deepEqual(again.historyDelta, []);
});

test('traces are suppressed while replaying and emitted for new work', () => {
  const sim = new Sim({
    Traced: function* (ctx: OrchestrationContext) {
      ctx.traceInfo('before');
      yield ctx.scheduleTimer(1);
      ctx.traceWarn({ toString: () => 'after' });
      yield ctx.scheduleTimer(1);
    },
  });
  sim.ack([sim.start('Traced')]);
  assert.deepEqual(sim.traces, [{ level: 'info', message: 'before' }]);
  sim.ack([sim.fired(2)]);
  assert.deepEqual(
    sim.traces.map((t) => t.message),
    ['before', 'after'],
  );
});

test('isReplaying is true only over persisted history', () => {
  const seen: boolean[] = [];
  const sim = new Sim({
    R: function* (ctx: OrchestrationContext) {
      seen.push(ctx.isReplaying);
      yield ctx.scheduleTimer(1);
      seen.push(ctx.isReplaying);
    },
  });
  sim.ack([sim.start('R')]);
  sim.ack([sim.fired(2)]);
  assert.deepEqual(seen, [false, true, false]);
});

test('terminal history discards late messages with an empty ack', () => {
  const sim = new Sim({
    Done: function* () {
      return 1;
    },
  });
  sim.ack([sim.start('Done')]);
  const result = sim.turn([sim.raise('late', 1), sim.cancel('x')]);
  assert.equal(outcomeOf(result), 'discarded');
  assert.equal(sim.lastAck!.historyDelta.length, 0);
  assert.equal(sim.lastAck!.orchestratorItems.length, 0);
});

test('unregistered handler and queue orphans before start', () => {
  const sim = new Sim({});
  assert.deepEqual(sim.turn([sim.start('Missing')]), { kind: 'unregistered', name: 'Missing', version: null });
  assert.equal(outcomeOf(sim.turn([sim.enqueue('q', 1)])), 'discarded');
  assert.equal(sim.turn([sim.raise('e', 1)]).kind, 'unregistered');
});

test('a pinned version is resolved exactly from OrchestrationStarted on later turns', () => {
  const sim = new Sim({ 'V@2.0.0': twoSteps });
  sim.ack([sim.start('V', { n: 1 }, { version: '2.0.0' })]);
  assert.equal(sim.find('OrchestrationStarted')[0].version, '2.0.0');
  sim.ack([sim.done(2, 1)]);
  assert.equal(sim.lastAck!.metadata.orchestrationVersion, '2.0.0');
  assert.deepEqual(sim.resolutions, [
    ['V', '2.0.0'],
    ['V', '2.0.0'],
  ]);
  const latest = new Sim({ V: twoSteps }, 'latest');
  latest.ack([latest.start('V', { n: 1 })]);
  latest.ack([latest.done(2, 1)]);
  assert.deepEqual(latest.resolutions, [
    ['V', null],
    ['V', '1.0.0'],
  ]);
});
