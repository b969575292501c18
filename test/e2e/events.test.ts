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
  provider = await connect('events');
  client = new durox.Client(provider);
  runtime = await startRuntime(provider, (rt) => {
    rt.registerOrchestration('WaitOne', function* (ctx) {
      ctx.setCustomStatus('waiting');
      const data = yield ctx.waitForEvent('approve');
      return data;
    });
    rt.registerOrchestration('WaitTwo', function* (ctx) {
      const first = yield ctx.waitForEvent('go');
      ctx.setCustomStatus('got first');
      yield ctx.scheduleTimer(300);
      const second = yield ctx.waitForEvent('go');
      return [first, second];
    });
    rt.registerOrchestration('Drain', function* (ctx, count: number) {
      const items: unknown[] = [];
      for (let i = 0; i < count; i++) items.push(yield ctx.dequeueEvent('inbox'));
      return items;
    });
  });
});

after(async () => {
  await runtime.shutdown(100);
  await provider.close();
});

async function waitForCustomStatus(id: string, status: string): Promise<void> {
  await eventually(
    async () => ((await client.getStatus(id)).customStatus === status ? true : undefined),
    10_000,
    status,
  );
}

/**
 * Starts a sentinel instance and waits for its first turn. Fetches take the oldest eligible message
 * first, so once the sentinel's later start has been taken, every message enqueued before it has
 * been scanned (and taken, deleted or passed over as ineligible).
 */
async function runtimeHasScannedPast(): Promise<void> {
  const sentinel = uid('sentinel');
  await client.startOrchestration(sentinel, 'WaitOne');
  await waitForCustomStatus(sentinel, 'waiting');
}

test('an event raised after the wait is recorded is delivered', async () => {
  const id = uid('event');
  await client.startOrchestration(id, 'WaitOne');
  await waitForCustomStatus(id, 'waiting');
  await client.raiseEvent(id, 'approve', { by: 'alice', ok: true });
  const status = await client.waitForOrchestration(id, 10_000);
  assert.deepEqual(status.output, { by: 'alice', ok: true });
  const event = (await client.readExecutionHistory(id, 1)).find((e) => e.kind === 'ExternalEvent');
  assert.deepEqual(JSON.parse(event?.data ?? ''), { name: 'approve', data: { by: 'alice', ok: true } });
});

test('an event raised before the instance starts is dropped', async () => {
  const id = uid('early');
  await client.raiseEvent(id, 'approve', 'too early');
  await client.startOrchestration(id, 'WaitOne');
  await waitForCustomStatus(id, 'waiting');
  // The early event waits in the queue for the start and so comes in the first turn's batch:
  // its ExternalEvent in history shows the runtime has processed it.
  const early = (await client.readExecutionHistory(id, 1)).find((e) => e.kind === 'ExternalEvent');
  assert.deepEqual(
    JSON.parse(early?.data ?? ''),
    { name: 'approve', data: 'too early' },
    'the early event was processed',
  );
  assert.equal((await client.getStatus(id)).status, 'Running', 'the early event was not delivered');
  await client.raiseEvent(id, 'approve', 'on time');
  assert.equal((await client.waitForOrchestration(id, 10_000)).output, 'on time');
  const kinds = await historyKinds(client, id);
  assert.equal(kinds.filter((k) => k === 'ExternalEvent').length, 2, 'the dropped event stays in history for audit');
});

test('a second event while only one wait is outstanding is dropped', async () => {
  const id = uid('second');
  await client.startOrchestration(id, 'WaitTwo');
  await eventually(async () => ((await historyKinds(client, id)).includes('ExternalSubscribed') ? true : undefined));
  await client.raiseEvent(id, 'go', 1);
  await client.raiseEvent(id, 'go', 2);
  await waitForCustomStatus(id, 'got first');
  const subscribed = async (): Promise<true | undefined> =>
    (await historyKinds(client, id)).filter((k) => k === 'ExternalSubscribed').length === 2 ? true : undefined;
  await eventually(subscribed, 10_000, 'the second wait');
  assert.equal((await client.getStatus(id)).status, 'Running', 'event 2 arrived while no wait was outstanding');
  await client.raiseEvent(id, 'go', 3);
  assert.deepEqual((await client.waitForOrchestration(id, 10_000)).output, [1, 3]);
});

test('events for an unknown instance are accepted and create nothing', async () => {
  const id = uid('ghost');
  await client.raiseEvent(id, 'approve', 'anyone?');
  await client.enqueueEvent(id, 'inbox', 'hello?');
  await runtimeHasScannedPast();
  assert.equal((await client.getStatus(id)).status, 'NotFound');
  assert.equal((await client.listAllInstances()).includes(id), false);
});

test('queue messages are buffered FIFO and delivered in order', async () => {
  const id = uid('queue');
  await client.startOrchestration(id, 'Drain', 3);
  await client.enqueueEvent(id, 'inbox', { n: 1 });
  await client.enqueueEvent(id, 'inbox', 'two');
  await client.enqueueEvent(id, 'inbox', [3]);
  assert.deepEqual((await client.waitForOrchestration(id, 10_000)).output, [{ n: 1 }, 'two', [3]]);
  const delivered = (await client.readExecutionHistory(id, 1)).filter((e) => e.kind === 'QueueEventDelivered');
  assert.deepEqual(JSON.parse(delivered[0].data ?? ''), { name: 'inbox', data: { n: 1 } });
});

test('queue messages sent while the instance waits elsewhere are kept for later', async () => {
  const id = uid('queue-later');
  await client.startOrchestration(id, 'Drain', 2);
  await eventually(async () => ((await historyKinds(client, id)).includes('QueueSubscribed') ? true : undefined));
  await client.enqueueEventTyped(id, 'inbox', 'a');
  await client.enqueueEventTyped(id, 'inbox', 'b');
  assert.deepEqual((await client.waitForOrchestration(id, 10_000)).output, ['a', 'b']);
});

test('queue messages enqueued before the instance exists are dropped', async () => {
  const id = uid('orphan');
  const depthBefore = (await client.getQueueDepths()).orchestratorQueue;
  await client.enqueueEvent(id, 'inbox', 'orphan');
  await eventually(
    async () => ((await client.getQueueDepths()).orchestratorQueue === depthBefore ? true : undefined),
    10_000,
    'the orphan message to be deleted',
  );
  await client.startOrchestration(id, 'Drain', 1);
  await eventually(async () => ((await historyKinds(client, id)).includes('QueueSubscribed') ? true : undefined));
  assert.equal((await client.getStatus(id)).status, 'Running', 'the deleted orphan was never delivered');
  await client.enqueueEvent(id, 'inbox', 'fresh');
  assert.deepEqual((await client.waitForOrchestration(id, 10_000)).output, ['fresh']);
});
