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
  provider = await connect('can');
  client = new durox.Client(provider);
  runtime = await startRuntime(provider, (rt) => {
    rt.registerOrchestration('Counter', function* (ctx, n: number) {
      ctx.setValue(`seen-${n}`, String(ctx.executionId));
      if (n < 3) {
        ctx.setCustomStatus(`step ${n}`);
        yield ctx.continueAsNew(n + 1);
      }
      return { n, executionId: ctx.executionId, status: ctx.getCustomStatus(), kv: ctx.getKvAllKeys().sort() };
    });
    rt.registerOrchestration('Mailbox', function* (ctx, phase: string) {
      if (phase === 'first') {
        const first = yield ctx.dequeueEvent('mail');
        ctx.setCustomStatus(`first got ${String(first)}`);
        yield ctx.waitForEvent('roll');
        yield ctx.continueAsNew('second');
      }
      const a = yield ctx.dequeueEvent('mail');
      const b = yield ctx.dequeueEvent('mail');
      return [a, b];
    });
  });
});

after(async () => {
  await runtime.shutdown(100);
  await provider.close();
});

test('continue-as-new starts fresh executions and carries custom status and KV', async () => {
  const id = uid('counter');
  await client.startOrchestration(id, 'Counter', 1);
  const status = await client.waitForOrchestration(id, 10_000);
  assert.deepEqual(status.output, { n: 3, executionId: 3, status: 'step 2', kv: ['seen-1', 'seen-2', 'seen-3'] });
  assert.deepEqual(await client.listExecutions(id), [1, 2, 3]);
  const first = await client.getExecutionInfo(id, 1);
  assert.equal(first.status, 'ContinuedAsNew');
  assert.equal(first.output, 2, 'a continued execution reports the next input');
  assert.ok(typeof first.completedAt === 'number');
  assert.deepEqual(await historyKinds(client, id, 1), [
    'OrchestrationStarted',
    'KeyValueSet',
    'CustomStatusUpdated',
    'OrchestrationContinuedAsNew',
  ]);
  const info = await client.getInstanceInfo(id);
  assert.equal(info.currentExecutionId, 3);
  assert.deepEqual(await client.getKvAllValues(id), { 'seen-1': '1', 'seen-2': '2', 'seen-3': '3' });
});

test('unconsumed queue messages are carried into the next execution in order', async () => {
  const id = uid('mailbox');
  await client.startOrchestration(id, 'Mailbox', 'first');
  await client.enqueueEvent(id, 'mail', 'm1');
  await eventually(async () => ((await client.getStatus(id)).customStatus === 'first got m1' ? true : undefined));
  await client.enqueueEvent(id, 'mail', 'm2');
  await client.enqueueEvent(id, 'mail', 'm3');
  await eventually(async () =>
    (await historyKinds(client, id)).filter((k) => k === 'QueueEventDelivered').length === 3 ? true : undefined,
  );
  await client.raiseEvent(id, 'roll', null);
  const status = await client.waitForOrchestration(id, 10_000);
  assert.deepEqual(status.output, ['m2', 'm3']);
  assert.deepEqual(await client.listExecutions(id), [1, 2]);
});
