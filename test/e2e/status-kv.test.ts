import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  connect,
  durox,
  eventually,
  historyKinds,
  startRuntime,
  uid,
  type Client,
  type Provider,
  type Runtime,
} from './helpers';

let provider: Provider;
let runtime: Runtime;
let client: Client;

before(async () => {
  provider = await connect('statuskv');
  client = new durox.Client(provider);
  runtime = await startRuntime(provider, (rt) => {
    rt.registerOrchestration('Progress', function* (ctx) {
      ctx.setCustomStatus('step 1');
      yield ctx.waitForEvent('next');
      ctx.setCustomStatus('step 2');
      ctx.setCustomStatus('step 2b');
      yield ctx.waitForEvent('next');
      ctx.resetCustomStatus();
      return ctx.getCustomStatus();
    });
    rt.registerOrchestration('Kv', function* (ctx) {
      ctx.setValue('color', 'blue');
      ctx.setValue('size', 42 as unknown as string);
      ctx.setValue('temp', 'x');
      ctx.clearValue('temp');
      yield ctx.waitForEvent('next');
      const before = {
        color: ctx.getValue('color'),
        all: ctx.getKvAllValues(),
        keys: ctx.getKvAllKeys().sort(),
        len: ctx.getKvLength(),
      };
      ctx.clearAllValues();
      ctx.setValue('final', 'yes');
      return { before, after: ctx.getKvAllValues() };
    });
    rt.registerOrchestration('ReadOther', function* (ctx, other: string) {
      const color = yield ctx.getValueFromInstance(other, 'final');
      const missing = yield ctx.getValueFromInstance(other, 'nope');
      return { color, missing };
    });
    rt.registerOrchestration('Deterministic', function* (ctx) {
      const now = yield ctx.utcNow();
      const guid = yield ctx.newGuid();
      yield ctx.waitForEvent('next');
      const nowAgain = yield ctx.utcNow();
      return { now, guid, nowAgain, replayedSame: true };
    });
  });
});

after(async () => {
  await runtime.shutdown(100);
  await provider.close();
});

test('custom status: versions count turns, waitForStatusChange sees each change', async () => {
  const id = uid('progress');
  await client.startOrchestration(id, 'Progress');
  const first = await client.waitForStatusChange(id, 0, 20, 10_000);
  assert.equal(first.status, 'Running');
  assert.equal(first.customStatus, 'step 1');
  assert.equal(first.customStatusVersion, 1);
  await assert.rejects(client.waitForStatusChange(id, 1, 20, 150), {
    message: /^Operation timed out: \w+\('[^']+'\) gave up after 150 ms; the instance is \w+$/,
  });
  await client.raiseEvent(id, 'next');
  const second = await client.waitForStatusChange(id, 1, 20, 10_000);
  assert.equal(second.customStatus, 'step 2b');
  assert.equal(second.customStatusVersion, 2, 'two sets in one turn bump the version once');
  await client.raiseEvent(id, 'next');
  const done = await client.waitForOrchestration(id, 10_000);
  assert.equal(done.output, null);
  assert.equal(done.customStatus, undefined, 'a reset status is absent');
  assert.equal(done.customStatusVersion, 3);
});

test('KV: set, clear, clear-all, reads inside and outside the orchestration', async () => {
  const id = uid('kv');
  await client.startOrchestration(id, 'Kv');
  assert.equal(await client.waitForValue(id, 'color', 10_000), 'blue');
  assert.equal(await client.getValue(id, 'size'), '42', 'values are coerced with String');
  assert.equal(await client.getValue(id, 'temp'), null);
  assert.deepEqual(await client.getKvAllValues(id), { color: 'blue', size: '42' });
  await client.raiseEvent(id, 'next');
  const status = await client.waitForOrchestration(id, 10_000);
  assert.deepEqual(status.output, {
    before: { color: 'blue', all: { color: 'blue', size: '42' }, keys: ['color', 'size'], len: 2 },
    after: { final: 'yes' },
  });
  assert.deepEqual(await client.getKvAllValues(id), { final: 'yes' });
  await assert.rejects(client.waitForValue(id, 'color', 100), {
    message: `Timed out waiting for value 'color' on instance '${id}'`,
  });

  const reader = uid('reader');
  await client.startOrchestration(reader, 'ReadOther', id);
  assert.deepEqual((await client.waitForOrchestration(reader, 10_000)).output, { color: 'yes', missing: null });
});

test('utcNow and newGuid are recorded once and replay to the same values', async () => {
  const id = uid('det');
  const before = Date.now();
  await client.startOrchestration(id, 'Deterministic');
  await eventually(async () => ((await historyKinds(client, id)).includes('ExternalSubscribed') ? true : undefined));
  await client.raiseEvent(id, 'next');
  const output = (await client.waitForOrchestration(id, 10_000)).output as unknown as Record<string, unknown>;
  assert.equal(typeof output.now, 'number');
  assert.ok((output.now as number) >= before - 5_000 && (output.now as number) <= Date.now());
  assert.match(String(output.guid), /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.ok((output.nowAgain as number) >= (output.now as number));
  const history = await client.readExecutionHistory(id, 1);
  const scheduled = history.filter((e) => e.kind === 'ActivityScheduled').map((e) => JSON.parse(e.data ?? '{}').name);
  assert.deepEqual(scheduled, [
    '__duroxide_syscall:utc_now_ms',
    '__duroxide_syscall:new_guid',
    '__duroxide_syscall:utc_now_ms',
  ]);
  const recordedNow = history.find((e) => e.kind === 'ActivityCompleted');
  assert.equal(Number(recordedNow?.data), output.now, 'the replayed value is the recorded one');
});
