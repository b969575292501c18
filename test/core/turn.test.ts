import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { OrchestrationContext } from '../../src/core/orchestration-context';
import { turnEngine } from '../../src/core/turn';
import { Sim, outcomeOf } from './harness';

test('cancellation: replay once more, fail with canceled, cascade to children, steal in-flight activities', () => {
  const sim = new Sim({
    P: function* (ctx: OrchestrationContext) {
      yield ctx.all([
        ctx.scheduleActivity('Work'),
        ctx.scheduleSubOrchestrationWithId('Child', 'kid', 1),
        ctx.scheduleTimer(1000),
      ]);
      return 'never';
    },
  });
  sim.ack([sim.start('P', null, { parentInstance: 'root', parentId: 7, parentExecutionId: 3 })]);
  const ack = sim.ack([sim.cancel('user asked'), sim.cancel('twice')]);
  assert.deepEqual(
    ack.historyDelta.map((e) => e.kind),
    ['OrchestrationCancelRequested', 'OrchestrationFailed', 'ActivityCancelRequested'],
  );
  const failed = sim.find('OrchestrationFailed')[0];
  assert.deepEqual(failed.details, {
    category: 'application',
    kind: 'Cancelled',
    message: '',
    reason: 'user asked',
    retryable: false,
  });
  assert.equal(sim.find('ActivityCancelRequested')[0].reason, 'orchestration_terminal_failed');
  assert.deepEqual(ack.cancelledActivities, [{ instance: 'inst', executionId: 1, activityId: 2 }]);
  assert.deepEqual(ack.orchestratorItems, [
    { type: 'CancelInstance', instance: 'kid', reason: 'parent canceled' },
    {
      type: 'SubOrchFailed',
      parentInstance: 'root',
      parentExecutionId: 3,
      parentId: 7,
      details: failed.details,
    },
  ]);
  assert.equal(ack.metadata.status, 'Failed');
  assert.equal(ack.metadata.output, 'canceled: user asked');
  assert.equal(ack.metadata.parentInstanceId, 'root');
});

test('a cancel in the same batch as the start cancels on the first turn without dispatching work', () => {
  const sim = new Sim({
    P: function* (ctx: OrchestrationContext) {
      yield ctx.scheduleActivity('A');
    },
  });
  const ack = sim.ack([sim.start('P'), sim.cancel('early')]);
  assert.deepEqual(
    ack.historyDelta.map((e) => e.kind),
    [
      'OrchestrationStarted',
      'OrchestrationCancelRequested',
      'ActivityScheduled',
      'OrchestrationFailed',
      'ActivityCancelRequested',
    ],
  );
  assert.deepEqual(ack.workerItems, []);
});

test('sub-orchestration results: completion resumes the parent, failure throws the display message', () => {
  const sim = new Sim({
    P: function* (ctx: OrchestrationContext) {
      const a = yield ctx.scheduleSubOrchestrationTyped('Child', { x: 1 });
      try {
        yield ctx.scheduleSubOrchestrationVersioned('Child', '2.0.0', 2);
      } catch (e) {
        return { a, err: (e as Error).message };
      }
    },
  });
  sim.ack([sim.start('P')]);
  sim.ack([sim.subDone(2, JSON.stringify({ y: 2 }))]);
  const second = sim.find('SubOrchestrationScheduled')[1];
  assert.equal(second.version, '2.0.0');
  assert.equal(
    sim.lastAck!.orchestratorItems[0].type === 'StartOrchestration' && sim.lastAck!.orchestratorItems[0].version,
    '2.0.0',
  );
  const result = sim.turn([sim.subFailed(second.eventId, 'Error: child broke')]);
  assert.equal(outcomeOf(result), 'completed:{"a":{"y":2},"err":"Error: child broke"}');
});

test('a child notifies its parent on completion; detached starts are dispatched with the terminal turn', () => {
  const sim = new Sim(
    {
      C: function* (ctx: OrchestrationContext, input: number) {
        yield ctx.startOrchestrationVersioned('Other', '', 'other-1', { from: ctx.instanceId });
        return input * 2;
      },
    },
    'p::sub::2',
  );
  const ack = sim.ack([sim.start('C', 21, { parentInstance: 'p', parentId: 2, parentExecutionId: 1 })]);
  assert.deepEqual(
    ack.historyDelta.map((e) => e.kind),
    ['OrchestrationStarted', 'OrchestrationChained', 'OrchestrationCompleted'],
  );
  assert.deepEqual(ack.orchestratorItems, [
    {
      type: 'StartOrchestration',
      instance: 'other-1',
      orchestration: 'Other',
      input: '{"from":"p::sub::2"}',
      version: null,
      parentInstance: null,
      parentId: null,
      parentExecutionId: null,
      executionId: 1,
    },
    { type: 'SubOrchCompleted', parentInstance: 'p', parentExecutionId: 1, parentId: 2, result: '42' },
  ]);
});

test('timers fire at nowMs + delay when first scheduled; replay keeps the recorded time', () => {
  const sim = new Sim({
    T: function* (ctx: OrchestrationContext) {
      yield ctx.scheduleTimer(0);
      yield ctx.scheduleTimer(250);
    },
  });
  const first = sim.ack([sim.start('T')]);
  assert.deepEqual(first.orchestratorItems, [
    { type: 'TimerFired', instance: 'inst', executionId: 1, id: 2, fireAtMs: sim.nowMs },
  ]);
  sim.nowMs += 5000;
  sim.ack([sim.fired(2)]);
  assert.equal(sim.find('TimerCreated')[0].fireAtMs, 1_000_000);
  assert.equal(sim.find('TimerCreated')[1].fireAtMs, 1_005_250);
  const bad = new Sim(
    {
      T: function* (ctx: OrchestrationContext) {
        yield ctx.scheduleTimer(1.5);
      },
    },
    'bad',
  );
  assert.match(
    outcomeOf(bad.turn([bad.start('T')])),
    /invalid step result: timer delayMs must be a non-negative integer/,
  );
});

test('utcNow, newGuid and getValueFromInstance are system activities with decoded results', () => {
  const sim = new Sim({
    S: function* (ctx: OrchestrationContext) {
      const now = yield ctx.utcNow();
      const id = yield ctx.newGuid();
      const v = yield ctx.getValueFromInstance('other', 5 as unknown as string);
      const missing = yield ctx.getValueFromInstance('other', 'nope');
      return { now, id, v, missing, t: typeof now };
    },
  });
  sim.ack([sim.start('S')]);
  assert.equal(sim.find('ActivityScheduled')[0].name, '__duroxide_syscall:utc_now_ms');
  sim.ack([sim.done(2, '1700000000123', true)]);
  assert.equal(sim.find('ActivityScheduled')[1].name, '__duroxide_syscall:new_guid');
  sim.ack([sim.done(4, '0000018b-cf1e-7000-8000-000000000001', true)]);
  assert.equal(sim.find('ActivityScheduled')[2].input, '{"instanceId":"other","key":"5"}');
  sim.ack([sim.done(6, JSON.stringify('{"a":1}'), true)]);
  const result = sim.turn([sim.done(8, 'null', true)]);
  assert.equal(
    outcomeOf(result),
    'completed:{"now":1700000000123,"id":"0000018b-cf1e-7000-8000-000000000001","v":"{\\"a\\":1}","missing":null,"t":"number"}',
  );
});

test('custom status and KV: events in emission order, snapshot seeding, replayed timestamps and pruning', () => {
  const sim = new Sim({
    K: function* (ctx: OrchestrationContext) {
      ctx.setCustomStatus({ toString: () => 'step1' } as unknown as string);
      ctx.setValue('a', 1 as unknown as string);
      ctx.setValue('b', 'x');
      yield ctx.scheduleTimer(10);
      const pruned = ctx.pruneKvValuesUpdatedBefore(1_000_001.9);
      ctx.clearValue('b');
      return {
        pruned,
        all: ctx.getKvAllValues(),
        keys: ctx.getKvAllKeys(),
        len: ctx.getKvLength(),
        old: ctx.getValue('old'),
        status: ctx.getCustomStatus(),
      };
    },
  });
  sim.kv = { old: { value: 'kept', lastUpdatedAtMs: 2_000_000 } };
  const first = sim.ack([sim.start('K')]);
  assert.deepEqual(
    first.historyDelta.map((e) => e.kind),
    ['OrchestrationStarted', 'CustomStatusUpdated', 'KeyValueSet', 'KeyValueSet', 'TimerCreated'],
  );
  assert.equal(sim.find('CustomStatusUpdated')[0].status, 'step1');
  assert.equal(sim.find('KeyValueSet')[0].value, '1');
  sim.nowMs = 9_000_000;
  const result = sim.turn([sim.fired(5)]);
  // a and b were written at 1_000_000 (recorded), so both are older than the cutoff 1_000_001.
  assert.equal(
    outcomeOf(result),
    'completed:{"pruned":2,"all":{"old":"kept"},"keys":["old"],"len":1,"old":"kept","status":"step1"}',
  );
  assert.deepEqual(
    sim.lastAck!.historyDelta.map((e) => e.kind),
    ['TimerFired', 'KeyValueCleared', 'KeyValueCleared', 'KeyValueCleared', 'OrchestrationCompleted'],
  );
});

test('nondeterminism: a changed KV value on replay', () => {
  let value = 'v1';
  const sim = new Sim({
    K: function* (ctx: OrchestrationContext) {
      ctx.setValue('k', value);
      yield ctx.scheduleTimer(1);
    },
  });
  sim.ack([sim.start('K')]);
  value = 'v2';
  assert.match(
    outcomeOf(sim.turn([sim.fired(3)])),
    /schedule mismatch: action=SetKeyValue\{key="k", value="v2"\} vs event=KeyValueSet#2\{key="k", value="v1"\}/,
  );
});

test('limits: custom status, tag, KV value size and key count fail the orchestration and discard queued work', () => {
  const cases: Array<[string, (ctx: OrchestrationContext) => unknown, RegExp]> = [
    [
      'status',
      (ctx) => ctx.setCustomStatus('x'.repeat(262_145)),
      /^Custom status size \(262145 bytes\) exceeds limit \(262144 bytes\)$/,
    ],
    [
      'value',
      (ctx) => ctx.setValue('k', 'é'.repeat(32_769)),
      /^KV value size for key 'k' \(65538 bytes\) exceeds limit \(65536 bytes\)$/,
    ],
    [
      'keys',
      (ctx) => {
        for (let i = 0; i < 151; i++) ctx.setValue(`k${i}`, 'v');
      },
      /^KV key count \(151\) exceeds limit \(150 keys\)$/,
    ],
  ];
  for (const [name, act, message] of cases) {
    const sim = new Sim(
      {
        L: function* (ctx: OrchestrationContext) {
          act(ctx);
          yield ctx.scheduleActivity('A');
        },
      },
      name,
    );
    const ack = sim.ack([sim.start('L')]);
    assert.deepEqual(
      ack.historyDelta.map((e) => e.kind),
      ['OrchestrationStarted', 'OrchestrationFailed'],
      name,
    );
    assert.deepEqual(ack.workerItems, []);
    assert.match(ack.metadata.output!, message);
  }
  const tagged = new Sim({
    L: function* (ctx: OrchestrationContext) {
      yield ctx.scheduleActivity('A').withTag('t'.repeat(257));
    },
  });
  assert.match(
    tagged.ack([tagged.start('L')]).metadata.output!,
    /^Activity tag size \(257 bytes\) exceeds limit \(256 bytes\)/,
  );
  const ok = new Sim({
    L: function* (ctx: OrchestrationContext) {
      yield ctx.scheduleActivity('A').withTag('gpu');
    },
  });
  assert.equal(ok.ack([ok.start('L')]).workerItems[0].tag, 'gpu');
});

test('continue-as-new versioned: in-flight activities are cancelled after the terminal event', () => {
  const sim = new Sim({
    C: function* (ctx: OrchestrationContext) {
      yield ctx.race(ctx.waitForEvent('go'), ctx.scheduleTimer(1));
      yield ctx.continueAsNewVersioned({ n: 1 }, '2.0.0');
    },
  });
  sim.ack([sim.start('C')]);
  const ack = sim.ack([sim.fired(3)]);
  const can = ack.orchestratorItems.find((i) => i.type === 'ContinueAsNew');
  assert.ok(can && can.type === 'ContinueAsNew' && can.version === '2.0.0' && can.input === '{"n":1}');
  assert.equal(sim.last().kind, 'OrchestrationContinuedAsNew');
});

test(
  'activities still running at completion get orchestration_terminal_completed ' +
    'breadcrumbs after the terminal event',
  () => {
    const sim = new Sim({
      C: function* (ctx: OrchestrationContext) {
        yield ctx.race(ctx.scheduleTimer(1), ctx.scheduleActivity('Slow'));
        return 'done';
      },
    });
    sim.ack([sim.start('C')]);
    const ack = sim.ack([sim.fired(2)]);
    // The dropped activity gets exactly one breadcrumb (dropped_future), before the terminal event.
    assert.deepEqual(
      ack.historyDelta.map((e) => e.kind),
      ['TimerFired', 'ActivityCancelRequested', 'OrchestrationCompleted'],
    );
    assert.deepEqual(ack.cancelledActivities, [{ instance: 'inst', executionId: 1, activityId: 3 }]);
    const other = new Sim(
      {
        C: function* (ctx: OrchestrationContext) {
          yield ctx.all([ctx.scheduleActivity('A'), ctx.scheduleActivity('B')]);
        },
      },
      'o',
    );
    other.ack([other.start('C')]);
    const failed = other.ack([
      other.failed(2, 'x', { category: 'infrastructure', operation: 'op', message: 'm', retryable: false }),
    ]);
    assert.deepEqual(
      failed.historyDelta.map((e) => e.kind),
      ['ActivityFailed', 'OrchestrationFailed', 'ActivityCancelRequested'],
    );
    assert.equal(other.last().kind === 'ActivityCancelRequested' && other.last().sourceEventId, 3);
    assert.equal(failed.metadata.output, 'infrastructure:op: m');
  },
);

test('poison: synthesises OrchestrationStarted for an empty history and notifies the parent', () => {
  const sim = new Sim({});
  const start = sim.start('Gone', 5, { parentInstance: 'p', parentId: 4, parentExecutionId: 2, version: '3.0.0' });
  const ack = turnEngine.poisonTurn(
    {
      instanceId: 'inst',
      orchestrationName: 'Gone',
      orchestrationVersion: null,
      executionId: 1,
      history: [],
      messages: [start],
      kvSnapshot: {},
      customStatus: null,
      nowMs: 5,
    },
    11,
    10,
  );
  assert.deepEqual(
    ack.historyDelta.map((e) => e.kind),
    ['OrchestrationStarted', 'OrchestrationFailed'],
  );
  assert.equal(ack.metadata.output, 'poison: orchestration inst exceeded 11 attempts (max 10)');
  assert.equal(ack.metadata.orchestrationVersion, '3.0.0');
  assert.equal(ack.orchestratorItems[0].type, 'SubOrchFailed');
  const running = new Sim({
    P: function* (ctx: OrchestrationContext) {
      yield ctx.scheduleActivity('A');
    },
  });
  running.ack([running.start('P')]);
  const poisoned = turnEngine.poisonTurn(
    {
      instanceId: 'inst',
      orchestrationName: 'P',
      orchestrationVersion: '1.0.0',
      executionId: 1,
      history: running.history,
      messages: [],
      kvSnapshot: {},
      customStatus: null,
      nowMs: 5,
    },
    11,
    10,
  );
  assert.deepEqual(
    poisoned.historyDelta.map((e) => [e.eventId, e.kind]),
    [
      [3, 'OrchestrationFailed'],
      [4, 'ActivityCancelRequested'],
    ],
  );
  assert.deepEqual(poisoned.cancelledActivities, [{ instance: 'inst', executionId: 1, activityId: 2 }]);
});

test('a turn the store refuses for good fails the execution and cancels the activities still in flight', () => {
  const sim = new Sim({
    P: function* (ctx: OrchestrationContext) {
      yield ctx.scheduleActivity('A');
    },
  });
  sim.ack([sim.start('P', null, { parentInstance: 'root', parentId: 7, parentExecutionId: 3 })]);
  const refused = {
    instanceId: 'inst',
    executionId: 1,
    historyDelta: [],
    workerItems: [],
    orchestratorItems: [],
    metadata: {
      status: 'Completed' as const,
      output: 'too large',
      orchestrationName: 'P',
      orchestrationVersion: '1.0.0',
      parentInstanceId: 'root',
    },
    cancelledActivities: [],
  };
  const ack = turnEngine.infrastructureFailureTurn(
    { instanceId: 'inst', nowMs: 9, history: sim.history },
    refused,
    'payload refused',
  );
  assert.deepEqual(
    ack.historyDelta.map((e) => [e.eventId, e.kind]),
    [
      [3, 'OrchestrationFailed'],
      [4, 'ActivityCancelRequested'],
    ],
  );
  const failed = ack.historyDelta[0];
  assert.equal(failed.kind === 'OrchestrationFailed' && failed.details.category, 'infrastructure');
  assert.deepEqual(ack.cancelledActivities, [{ instance: 'inst', executionId: 1, activityId: 2 }]);
  assert.deepEqual(
    ack.orchestratorItems.map((i) => i.type),
    ['SubOrchFailed'],
  );
  assert.equal(ack.metadata.status, 'Failed');
  assert.equal(ack.metadata.output, 'infrastructure:ack_orchestration_item: payload refused');
  assert.equal(ack.metadata.parentInstanceId, 'root');
});

test('a refused first turn keeps its OrchestrationStarted and fails without cancelling work it never committed', () => {
  const sim = new Sim({
    P: function* (ctx: OrchestrationContext) {
      yield ctx.scheduleActivity('A');
    },
  });
  const refused = sim.ack([sim.start('P', null, { parentInstance: 'root', parentId: 7, parentExecutionId: 3 })]);
  const ack = turnEngine.infrastructureFailureTurn(
    { instanceId: 'inst', nowMs: 9, history: [] },
    refused,
    'payload refused',
  );
  assert.deepEqual(
    ack.historyDelta.map((e) => [e.eventId, e.kind]),
    [
      [1, 'OrchestrationStarted'],
      [2, 'OrchestrationFailed'],
    ],
  );
  assert.deepEqual(ack.cancelledActivities, []);
  assert.deepEqual(ack.workerItems, []);
  assert.deepEqual(
    ack.orchestratorItems.map((i) => i.type),
    ['SubOrchFailed'],
  );
});

test('getValueUpdatedAt reads the time of the turn that wrote the key, the same on replay', () => {
  const sim = new Sim({
    P: function* (ctx: OrchestrationContext) {
      ctx.setValue('clock', '1');
      const first = ctx.getValueUpdatedAt('clock');
      yield ctx.scheduleTimer(10);
      ctx.setValue('clock', '2');
      return [first, ctx.getValueUpdatedAt('clock'), ctx.getValueUpdatedAt('missing')];
    },
  });
  sim.nowMs = 1_000_000;
  sim.ack([sim.start('P')]);
  sim.nowMs = 7_000_000;
  const ack = sim.ack([sim.fired(sim.idOf('TimerCreated'))]);
  assert.equal(ack.metadata.output, '[1000000,7000000,null]');
});

test('withFlowKey on a child: recorded on SubOrchestrationScheduled, carried by its start, not compared on replay', async () => {
  const sim = new Sim({
    P: function* (ctx: OrchestrationContext) {
      yield ctx.waitForEvent('go');
      return yield ctx.scheduleSubOrchestrationWithId('Child', 'kid', 1).withFlowKey('kids');
    },
    Q: async (ctx: OrchestrationContext) => ctx.scheduleSubOrchestration('Child', 2).withFlowKey('kids'),
  });
  sim.ack([sim.start('P')]);
  const ack = sim.ack([sim.raise('go', null)]);
  assert.equal(sim.find('SubOrchestrationScheduled')[0].flowKey, 'kids');
  assert.deepEqual(
    ack.orchestratorItems.map((item) => [item.type, item.type === 'StartOrchestration' ? item.flowKey : null]),
    [['StartOrchestration', 'kids']],
  );
  // Code that no longer sets the key replays the recorded child without a nondeterminism error.
  sim.handlers.P = function* (ctx: OrchestrationContext) {
    yield ctx.waitForEvent('go');
    return yield ctx.scheduleSubOrchestrationWithId('Child', 'kid', 1);
  };
  assert.equal(outcomeOf(sim.turn([sim.raise('again', null)])), 'continue');

  const async = new Sim({ Q: sim.handlers.Q }, 'async-parent');
  const asyncAck = await async.ackAsync([async.start('Q')]);
  assert.deepEqual(
    asyncAck.orchestratorItems.map((item) => (item.type === 'StartOrchestration' ? item.flowKey : null)),
    ['kids'],
  );
});
