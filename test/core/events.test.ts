import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { OrchestrationContext } from '../../src/core/orchestration-context';
import { Sim, outcomeOf } from './harness';
import type { Untyped } from '../../src/core/turn-api';

function* waitTwice(ctx: OrchestrationContext): Generator<unknown, unknown, Untyped> {
  const a = yield ctx.waitForEvent('go');
  const b = yield ctx.waitForEvent('go');
  return [a, b];
}

test(
  'an event raised in the same batch as the start is dropped; one raised after ' + 'the subscription is delivered',
  () => {
    const sim = new Sim({ W: waitTwice });
    sim.ack([sim.start('W'), sim.raise('go', 'early')]);
    assert.deepEqual(sim.kinds(), ['OrchestrationStarted', 'ExternalEvent', 'ExternalSubscribed']);
    sim.ack([sim.raise('go', { n: 1 })]);
    assert.deepEqual(sim.kinds().slice(3), ['ExternalEvent', 'ExternalSubscribed']);
    // Two events while one wait is outstanding: the second is dropped.
    const ack = sim.ack([sim.raise('go', 'second'), sim.raise('go', 'third')]);
    assert.equal(ack.metadata.status, 'Completed');
    assert.equal(sim.lastAck!.metadata.output, '[{"n":1},"second"]');
  },
);

test('a cancelled (race-losing) subscription does not take a later event', () => {
  const sim = new Sim({
    W: function* (ctx: OrchestrationContext) {
      const first = yield ctx.race(ctx.waitForEvent('go'), ctx.scheduleTimer(5));
      const second = yield ctx.waitForEvent('go');
      return [first, second];
    },
  });
  sim.ack([sim.start('W')]);
  const ack = sim.ack([sim.fired(3)]);
  assert.deepEqual(
    ack.historyDelta.map((e) => e.kind),
    ['TimerFired', 'ExternalSubscribed', 'ExternalSubscribedCancelled'],
  );
  sim.ack([sim.raise('go', 'x')]);
  assert.equal(sim.lastAck!.metadata.output, '[{"index":1,"value":null},"x"]');
});

test('queue: FIFO per name, buffered messages resolve in the same turn, objects are not double-encoded', () => {
  const sim = new Sim({
    Q: function* (ctx: OrchestrationContext) {
      const got: unknown[] = [];
      for (let i = 0; i < 3; i++) got.push(yield ctx.dequeueEvent('q'));
      return got;
    },
  });
  const ack = sim.ack([sim.start('Q'), sim.enqueue('q', { a: 1 }), sim.enqueue('other', 0), sim.enqueue('q', 'two')]);
  assert.deepEqual(
    ack.historyDelta.map((e) => e.kind),
    [
      'OrchestrationStarted',
      'QueueEventDelivered',
      'QueueEventDelivered',
      'QueueEventDelivered',
      'QueueSubscribed',
      'QueueSubscribed',
      'QueueSubscribed',
    ],
  );
  const result = sim.turn([sim.enqueue('q', [3])]);
  assert.equal(outcomeOf(result), 'completed:[{"a":1},"two",[3]]');
});

test(
  'continue-as-new carries unconsumed queue messages (FIFO across names), custom ' + 'status and starts execution 2',
  () => {
    const sim = new Sim({
      Loop: function* (ctx: OrchestrationContext, input: number) {
        const msg = yield ctx.dequeueEvent('q');
        ctx.setCustomStatus(`round ${input} got ${JSON.stringify(msg)} status-before=${ctx.getCustomStatus()}`);
        if (input < 2) yield ctx.continueAsNew(input + 1);
        return msg;
      },
    });
    const first = sim.ack([
      sim.start('Loop', 1),
      sim.enqueue('q', 'm1'),
      sim.enqueue('x', 'ignored'),
      sim.enqueue('q', 'm2'),
    ]);
    assert.equal(first.metadata.status, 'ContinuedAsNew');
    assert.equal(first.metadata.output, '2');
    assert.equal(sim.last().kind, 'OrchestrationContinuedAsNew');
    const can = first.orchestratorItems.find((i) => i.type === 'ContinueAsNew');
    assert.deepEqual(can, {
      type: 'ContinueAsNew',
      instance: 'inst',
      orchestration: 'Loop',
      input: '2',
      version: null,
      carryForwardEvents: [
        ['x', '"ignored"'],
        ['q', '"m2"'],
      ],
      initialCustomStatus: 'round 1 got "m1" status-before=null',
    });
    // A late completion for execution 1 in the same batch is stale.
    const second = sim.ack([can, { ...sim.done(2, 1), executionId: 1 } as never]);
    assert.equal(second.executionId, 2);
    assert.equal(sim.executionId, 2);
    const started = sim.find('OrchestrationStarted')[0];
    assert.equal(started.input, '2');
    assert.deepEqual(started.carryForwardEvents, can.type === 'ContinueAsNew' ? can.carryForwardEvents : []);
    assert.equal(second.metadata.status, 'Completed');
    assert.equal(second.metadata.output, '"m2"');
    const status = sim.find('CustomStatusUpdated')[0];
    assert.match(status.status!, /status-before=round 1/);
  },
);

test('continue-as-new keeps at most 20 carried messages, oldest first', () => {
  const sim = new Sim({
    C: function* (ctx: OrchestrationContext) {
      yield ctx.continueAsNew(null);
    },
  });
  const messages = Array.from({ length: 25 }, (_, i) => sim.enqueue('q', i));
  const ack = sim.ack([sim.start('C'), ...messages]);
  const can = ack.orchestratorItems.find((i) => i.type === 'ContinueAsNew');
  assert.ok(can && can.type === 'ContinueAsNew');
  assert.equal(can.carryForwardEvents.length, 20);
  assert.deepEqual(can.carryForwardEvents[19], ['q', '19']);
  assert.ok(sim.traces.some((t) => t.level === 'warn' && /dropped 5/.test(t.message)));
});

test('a continue-as-new item for a completed instance is discarded', () => {
  const sim = new Sim({
    D: function* () {
      return 1;
    },
  });
  sim.ack([sim.start('D')]);
  const can = {
    type: 'ContinueAsNew',
    instance: 'inst',
    orchestration: 'D',
    input: '1',
    version: null,
    carryForwardEvents: [],
    initialCustomStatus: null,
  } as const;
  assert.equal(outcomeOf(sim.turn([{ ...can, carryForwardEvents: [] }])), 'discarded');
});

test('outstanding subscriptions are cancelled before the terminal event', () => {
  const sim = new Sim({
    S: function* (ctx: OrchestrationContext) {
      yield ctx.race(ctx.waitForEvent('never'), ctx.scheduleTimer(1));
      yield ctx.race(ctx.dequeueEvent('q'), ctx.scheduleTimer(1));
      yield ctx.continueAsNew(0);
    },
  });
  sim.ack([sim.start('S')]);
  sim.ack([sim.fired(3)]);
  const ack = sim.ack([sim.fired(sim.idOf('TimerCreated', 1))]);
  assert.deepEqual(
    ack.historyDelta.map((e) => e.kind),
    ['TimerFired', 'QueueSubscriptionCancelled', 'OrchestrationContinuedAsNew'],
  );
  assert.deepEqual(
    sim.find('ExternalSubscribedCancelled').map((e) => e.reason),
    ['dropped_future'],
  );
});

test('a wait still outstanding at a terminal turn is cancelled with orchestration_terminal', () => {
  const sim = new Sim({
    S: function* (ctx: OrchestrationContext) {
      yield ctx.waitForEvent('never');
    },
  });
  sim.ack([sim.start('S')]);
  const ack = sim.ack([sim.cancel('stop')]);
  assert.deepEqual(
    ack.historyDelta.map((e) => e.kind),
    ['OrchestrationCancelRequested', 'ExternalSubscribedCancelled', 'OrchestrationFailed'],
  );
  assert.equal(sim.find('ExternalSubscribedCancelled')[0].reason, 'orchestration_terminal');
  assert.equal(ack.metadata.output, 'canceled: stop');
});
