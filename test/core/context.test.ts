import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeActivityInput,
  decodeOrchestrationInput,
  decodeResult,
  decodeTypedValue,
  encodeValue,
  errorMessageForGenerator,
  utf8ByteLength,
} from '../../src/core/codec';
import { OrchestrationContext } from '../../src/core/orchestration-context';
import {
  SYSCALL_GET_KV_VALUE,
  SYSCALL_NEW_GUID,
  SYSCALL_UTC_NOW_MS,
  isSystemActivityName,
} from '../../src/core/system-activities';

const ctx = new OrchestrationContext({
  instanceId: 'i',
  executionId: 2,
  orchestrationName: 'O',
  orchestrationVersion: '1.2.3',
});

test('value encoding quirks of section 4.2', () => {
  assert.equal(encodeValue(undefined), 'null');
  assert.equal(encodeValue('x'), '"x"');
  assert.equal(encodeValue({ a: [1] }), '{"a":[1]}');
  assert.equal(decodeResult('not json'), 'not json');
  assert.deepEqual(decodeResult('{"a":1}'), { a: 1 });
  assert.equal(decodeTypedValue('"{\\"a\\":1}"'), '{"a":1}');
  assert.deepEqual(decodeTypedValue('{"a":1}'), { a: 1 });
  assert.equal(decodeTypedValue(5), 5);
  assert.equal(decodeOrchestrationInput(''), undefined);
  assert.throws(() => decodeOrchestrationInput('{'), SyntaxError);
  assert.equal(decodeActivityInput('raw text'), 'raw text');
  assert.equal(errorMessageForGenerator('"quoted"'), 'quoted');
  assert.equal(errorMessageForGenerator('{"code":1}'), '{"code":1}');
  assert.equal(errorMessageForGenerator('Error: x'), 'Error: x');
  assert.equal(utf8ByteLength('aé€😀'), 1 + 2 + 3 + 4);
});

test('context identity properties are read-only', () => {
  assert.equal(ctx.instanceId, 'i');
  assert.equal(ctx.executionId, 2);
  assert.equal(ctx.orchestrationName, 'O');
  assert.equal(ctx.orchestrationVersion, '1.2.3');
  assert.throws(() => {
    (ctx as unknown as { instanceId: string }).instanceId = 'other';
  }, TypeError);
});

test('descriptor shapes of section 4.6', () => {
  const activity = ctx.scheduleActivity('A', { x: 1 }, { sessionId: 's' });
  assert.equal(activity.type, 'activity');
  assert.equal(activity.input, '{"x":1}');
  assert.equal(activity.sessionId, 's');
  assert.equal(activity.withTag('gpu'), activity);
  assert.equal(activity.tag, 'gpu');
  assert.equal(ctx.scheduleActivityOnSessionTyped('A', 1, 's').withTag('t').tag, 't');
  assert.equal(ctx.scheduleActivityTyped('A')._typed, true);
  assert.equal(ctx.scheduleActivity('A').input, 'null');
  assert.deepEqual(ctx.scheduleActivityWithRetry('A', 'i', { maxAttempts: 3, backoff: 'fixed' }), {
    type: 'activityWithRetry',
    name: 'A',
    input: '"i"',
    retry: { maxAttempts: 3, timeoutMs: undefined, totalTimeoutMs: undefined, backoff: 'fixed' },
  });
  assert.equal(ctx.scheduleActivityWithRetryOnSession('A', 1, { maxAttempts: 1 }, 's').sessionId, 's');
  assert.ok(!('withTag' in ctx.scheduleActivityWithRetry('A', 1, { maxAttempts: 1 })));
  assert.deepEqual(ctx.scheduleTimer(5), { type: 'timer', delayMs: 5 });
  assert.deepEqual(ctx.waitForEvent('e'), { type: 'waitEvent', name: 'e' });
  assert.deepEqual(ctx.waitForEventTyped('e'), { type: 'waitEvent', name: 'e', _typed: true });
  assert.deepEqual(ctx.dequeueEvent('q'), { type: 'dequeueEvent', queueName: 'q' });
  assert.deepEqual(ctx.getValueFromInstance('o', 7 as unknown as string), {
    type: 'getValueFromInstance',
    instanceId: 'o',
    key: '7',
  });
  assert.deepEqual(ctx.scheduleSubOrchestration('C'), { type: 'subOrchestration', name: 'C', input: 'null' });
  assert.deepEqual(ctx.scheduleSubOrchestrationWithId('C', 'id', 1), {
    type: 'subOrchestrationWithId',
    name: 'C',
    instanceId: 'id',
    input: '1',
  });
  assert.deepEqual(ctx.scheduleSubOrchestrationVersioned('C', '', 1), {
    type: 'subOrchestrationVersioned',
    name: 'C',
    version: null,
    input: '1',
  });
  assert.deepEqual(ctx.scheduleSubOrchestrationVersionedWithId('C', '2.0.0', 'id'), {
    type: 'subOrchestrationVersionedWithId',
    name: 'C',
    version: '2.0.0',
    instanceId: 'id',
    input: 'null',
  });
  assert.deepEqual(ctx.startOrchestration('D', 'd1', 'x'), {
    type: 'orchestration',
    name: 'D',
    instanceId: 'd1',
    input: '"x"',
  });
  assert.deepEqual(ctx.startOrchestrationVersioned('D', null, 'd1'), {
    type: 'orchestrationVersioned',
    name: 'D',
    version: null,
    instanceId: 'd1',
    input: 'null',
  });
  assert.deepEqual(ctx.newGuid(), { type: 'newGuid' });
  assert.deepEqual(ctx.utcNow(), { type: 'utcNow' });
  assert.deepEqual(ctx.continueAsNew(), { type: 'continueAsNew', input: 'null' });
  assert.deepEqual(ctx.continueAsNewVersioned(1, undefined), {
    type: 'continueAsNewVersioned',
    input: '1',
    version: null,
  });
  const t = ctx.scheduleTimer(1);
  assert.deepEqual(ctx.all([t]), { type: 'join', tasks: [t] });
  assert.deepEqual(ctx.race(t, t), { type: 'select', tasks: [t, t] });
  assert.equal(ctx.raceTyped(t, t)._typed, true);
});

test('synchronous methods work on a context built outside a turn', () => {
  const local = new OrchestrationContext({
    instanceId: 'x',
    executionId: 1,
    orchestrationName: 'O',
    orchestrationVersion: null,
  });
  local.setCustomStatus(42 as unknown as string);
  assert.equal(local.getCustomStatus(), '42');
  local.resetCustomStatus();
  assert.equal(local.getCustomStatus(), null);
  local.setValue('a', { b: 1 } as unknown as string);
  assert.equal(local.getValue('a'), '[object Object]');
  assert.equal(local.getKvLength(), 1);
  assert.equal(local.pruneKvValuesUpdatedBefore(-5), 0);
  local.clearAllValues();
  assert.deepEqual(local.getKvAllValues(), {});
  assert.equal(local.isReplaying, false);
});

test('system activity names', () => {
  assert.equal(SYSCALL_UTC_NOW_MS, '__duroxide_syscall:utc_now_ms');
  assert.equal(SYSCALL_NEW_GUID, '__duroxide_syscall:new_guid');
  assert.equal(SYSCALL_GET_KV_VALUE, '__duroxide_syscall:get_kv_value');
  assert.ok(isSystemActivityName(SYSCALL_NEW_GUID));
  assert.ok(!isSystemActivityName('MyActivity'));
});
