/**
 * Priority inheritance in the turn engine: the level of a start reaches OrchestrationStarted and
 * the ack; the activities, sub-orchestrations and detached starts a turn schedules carry the
 * instance's level unless `withPriority` gives them their own; continue-as-new keeps it; levels
 * outside 0..9 fail the orchestration; work at the default level carries no priority field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AsyncOrchestrationContext } from '../../src/core/async-context';
import type { OrchestrationContext } from '../../src/core/orchestration-context';
import type { Untyped } from '../../src/core/turn-api';
import type { OrchestratorWorkItem, StartOrchestrationItem } from '../../src/core/types';
import { Sim, outcomeOf } from './harness';

function* fanOut(ctx: OrchestrationContext): Generator<unknown, unknown, Untyped> {
  yield ctx.all([
    ctx.scheduleActivity('Inherits'),
    ctx.scheduleActivity('Own').withPriority(2),
    ctx.scheduleSubOrchestration('Kid'),
    ctx.scheduleSubOrchestrationWithId('Kid', 'kid-urgent').withPriority(9),
    ctx.scheduleTimer(1_000),
  ]);
  yield ctx.startOrchestration('Kid', 'kid-detached', null);
  return 'done';
}

function starts(items: OrchestratorWorkItem[]): Record<string, number | undefined> {
  return Object.fromEntries(
    items
      .filter((i): i is StartOrchestrationItem => i.type === 'StartOrchestration')
      .map((i) => [i.instance, i.priority]),
  );
}

test('a started level reaches the start event and the ack; scheduled work inherits it unless given its own', () => {
  const sim = new Sim({ Fan: fanOut });
  const ack = sim.ack([sim.start('Fan', null, { priority: 6 })]);
  assert.equal(sim.find('OrchestrationStarted')[0].priority, 6);
  assert.equal(ack.metadata.priority, 6);
  assert.deepEqual(
    ack.workerItems.map((w) => [w.name, w.priority]),
    [
      ['Inherits', 6],
      ['Own', 2],
    ],
  );
  assert.deepEqual(starts(ack.orchestratorItems), { [`inst::sub::4`]: 6, 'kid-urgent': 9 });
  const timer = ack.orchestratorItems.find((i) => i.type === 'TimerFired');
  assert.ok(timer);
  assert.equal('priority' in timer, false, 'a timer takes its instance level in the store, it carries none');
  assert.deepEqual(
    sim.find('ActivityScheduled').map((e) => e.priority),
    [undefined, 2],
    'history records only a level given with withPriority',
  );
  assert.deepEqual(
    sim.find('SubOrchestrationScheduled').map((e) => e.priority),
    [undefined, 9],
  );

  const next = sim.ack([sim.done(2, 1), sim.done(3, 1), sim.subDone(4, 1), sim.subDone(5, 1), sim.fired(6)]);
  assert.deepEqual(starts(next.orchestratorItems), { 'kid-detached': 6 }, 'a detached start inherits too');
  assert.equal(next.metadata.priority, 6, 'every later turn reports the level');
});

test('the default level writes no priority field anywhere', () => {
  const sim = new Sim({ Fan: fanOut });
  const ack = sim.ack([sim.start('Fan')]);
  assert.equal('priority' in sim.find('OrchestrationStarted')[0], false);
  assert.equal(ack.metadata.priority, 0);
  assert.deepEqual(
    ack.workerItems.map((w) => w.priority),
    [undefined, 2],
  );
  assert.deepEqual(starts(ack.orchestratorItems), { [`inst::sub::4`]: undefined, 'kid-urgent': 9 });
});

test('continue-as-new keeps the level for the next execution', () => {
  const sim = new Sim({
    Loop: function* (ctx: OrchestrationContext, n: number): Generator<unknown, unknown, Untyped> {
      yield ctx.scheduleActivity('Step', n);
      if (n < 1) return yield ctx.continueAsNew(n + 1);
      return n;
    },
  });
  sim.ack([sim.start('Loop', 0, { priority: 4 })]);
  const ended = sim.ack([sim.done(2, 'ok')]);
  const next = ended.orchestratorItems.find((i) => i.type === 'ContinueAsNew');
  assert.equal(next?.type === 'ContinueAsNew' ? next.priority : undefined, 4);
  const second = sim.ack([next!]);
  assert.equal(sim.executionId, 2);
  assert.equal(sim.find('OrchestrationStarted')[0].priority, 4);
  assert.equal(second.workerItems[0].priority, 4);
});

test('an async orchestration sets the level of the task it just started', async () => {
  const sim = new Sim({
    Fan: async (ctx: AsyncOrchestrationContext) => {
      const urgent = ctx.scheduleActivity<number>('Act').withPriority(7);
      const child = ctx.scheduleSubOrchestration<number>('Kid').withPriority(3);
      return (await urgent) + (await child);
    },
  });
  const ack = await sim.ackAsync([sim.start('Fan', null, { priority: 1 })]);
  assert.deepEqual(
    ack.workerItems.map((w) => w.priority),
    [7],
  );
  assert.deepEqual(starts(ack.orchestratorItems), { [`inst::sub::3`]: 3 });
});

test('a level outside 0..9 fails the orchestration with a RangeError naming the rule', () => {
  for (const level of [10, -1, 1.5]) {
    const sim = new Sim({
      Bad: function* (ctx: OrchestrationContext): Generator<unknown, unknown, Untyped> {
        return yield ctx.scheduleActivity('Act').withPriority(level);
      },
    });
    const result = sim.turn([sim.start('Bad')]);
    assert.match(outcomeOf(result), /^failed:.*withPriority: priority must be an integer from 0 to 9, got/);
    assert.equal(result.kind === 'ack' ? result.ack.workerItems.length : -1, 0, 'nothing scheduled');
  }
});

test('the chaining setters of a started async descriptor reach its action and keep their attributes', async () => {
  const seen: Record<string, unknown> = {};
  const sim = new Sim({
    Fan: async (ctx: AsyncOrchestrationContext) => {
      const child = ctx.scheduleSubOrchestrationWithId<number>('Kid', 'kid', 1).withFlowKey('kids').withPriority(3);
      const act = ctx.scheduleActivity<number>('Act').withTag('gpu').withFlowKey('api').withPriority(5);
      seen.child = child;
      seen.act = act;
      return (await child) + (await act);
    },
  });
  const ack = await sim.ackAsync([sim.start('Fan')]);
  assert.deepEqual(
    ack.workerItems.map((w) => [w.tag, w.flowKey, w.priority]),
    [['gpu', 'api', 5]],
  );
  assert.deepEqual(
    ack.orchestratorItems.map((i) => (i.type === 'StartOrchestration' ? [i.flowKey, i.priority] : null)),
    [['kids', 3]],
  );
  // A child's setters stay non-enumerable: the started descriptor compares by its data alone.
  assert.deepEqual(
    { ...(seen.child as object) },
    {
      type: 'subOrchestrationWithId',
      name: 'Kid',
      instanceId: 'kid',
      input: '1',
      flowKey: 'kids',
      priority: 3,
    },
  );
  const activityKeys = Object.keys(seen.act as object).filter((k) => k.startsWith('with'));
  assert.deepEqual(activityKeys, ['withTag', 'withFlowKey', 'withPriority'], "an activity's stay as they were");
});

/** [flowKey, priority] of each start of `items` (detached and children alike). */
function startSettings(items: OrchestratorWorkItem[]): Array<[string, string | undefined, number | undefined]> {
  return items
    .filter((i): i is StartOrchestrationItem => i.type === 'StartOrchestration')
    .map((i) => [i.instance, i.flowKey, i.priority]);
}

test('withFlowKey / withPriority on a detached start: carried by its start, recorded, not compared on replay', async () => {
  const detached = function* (ctx: OrchestrationContext): Generator<unknown, unknown, Untyped> {
    yield ctx.startOrchestration('Report', 'report-1', 1).withFlowKey('reports').withPriority(8);
    yield ctx.startOrchestrationVersioned('Report', '1.0.0', 'report-2', 2).withFlowKey('reports');
    return yield ctx.waitForEvent('go');
  };
  const sim = new Sim({ P: detached });
  const ack = sim.ack([sim.start('P', null, { priority: 2 })]);
  assert.deepEqual(startSettings(ack.orchestratorItems), [
    ['report-1', 'reports', 8],
    ['report-2', 'reports', 2],
  ]);
  assert.deepEqual(
    sim.find('OrchestrationChained').map((e) => [e.flowKey, e.priority]),
    [
      ['reports', 8],
      ['reports', undefined],
    ],
  );
  // Code that no longer sets them replays the recorded starts without a nondeterminism error.
  sim.handlers.P = function* (ctx: OrchestrationContext): Generator<unknown, unknown, Untyped> {
    yield ctx.startOrchestration('Report', 'report-1', 1);
    yield ctx.startOrchestrationVersioned('Report', '1.0.0', 'report-2', 2);
    return yield ctx.waitForEvent('go');
  };
  assert.equal(outcomeOf(sim.turn([sim.raise('go', 'x')])), 'completed:"x"');

  const async = new Sim({
    A: async (ctx: AsyncOrchestrationContext) => {
      const started = ctx.startOrchestration('Report', 'report-3', 3).withFlowKey('reports').withPriority(9);
      // The setters of a detached start stay non-enumerable: it compares by its data.
      assert.deepEqual(
        Object.entries(started),
        Object.entries({
          type: 'orchestration',
          name: 'Report',
          instanceId: 'report-3',
          input: '3',
          flowKey: 'reports',
          priority: 9,
        }),
      );
      await started;
      return 'ok';
    },
  });
  const asyncAck = await async.ackAsync([async.start('A')]);
  assert.deepEqual(startSettings(asyncAck.orchestratorItems), [['report-3', 'reports', 9]]);
});

test('withFlowKey / withPriority on a retry reach every attempt, generator and async', async () => {
  const retry = function* (ctx: OrchestrationContext): Generator<unknown, unknown, Untyped> {
    return yield ctx.scheduleActivityWithRetry('Flaky', 1, { maxAttempts: 2 }).withFlowKey('api').withPriority(4);
  };
  const asyncRetry = async (ctx: AsyncOrchestrationContext) =>
    ctx.scheduleActivityWithRetry<string>('Flaky', 1, { maxAttempts: 2 }).withFlowKey('api').withPriority(4);
  for (const [name, handler] of [
    ['generator', retry],
    ['async', asyncRetry],
  ] as const) {
    const sim = new Sim({ R: handler });
    const first = await sim.ackAsync([sim.start('R')]);
    assert.deepEqual(
      first.workerItems.map((w) => [w.flowKey, w.priority]),
      [['api', 4]],
      `${name}: first attempt`,
    );
    await sim.ackAsync([sim.failed(2, 'e1')]);
    const second = await sim.ackAsync([sim.fired(sim.idOf('TimerCreated'))]);
    assert.deepEqual(
      second.workerItems.map((w) => [w.flowKey, w.priority]),
      [['api', 4]],
      `${name}: second attempt`,
    );
    assert.deepEqual(
      sim.find('ActivityScheduled').map((e) => [e.flowKey, e.priority]),
      [
        ['api', 4],
        ['api', 4],
      ],
    );
    const done = await sim.turnAsync([sim.done(sim.find('ActivityScheduled')[1].eventId, 'ok')]);
    assert.equal(outcomeOf(done), 'completed:"ok"', name);
  }
});
