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
const observed = new Map<string, 'cancelled' | 'finished'>();
const running = new Set<string>();

before(async () => {
  provider = await connect('cancellation');
  client = new durox.Client(provider);
  runtime = await startRuntime(
    provider,
    (rt) => {
      rt.registerActivity('LongPoll', async (ctx) => {
        running.add(ctx.instanceId);
        const deadline = Date.now() + 15_000;
        while (Date.now() < deadline) {
          if (ctx.isCancelled()) {
            observed.set(ctx.instanceId, 'cancelled');
            return 'stopped early';
          }
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        observed.set(ctx.instanceId, 'finished');
        return 'finished';
      });
      rt.registerOrchestration('Worker', function* (ctx) {
        return yield ctx.scheduleActivity('LongPoll');
      });
      rt.registerOrchestration('Child', function* (ctx) {
        return yield ctx.waitForEvent('never');
      });
      rt.registerOrchestration('Parent', function* (ctx) {
        return yield ctx.all([
          ctx.scheduleSubOrchestrationWithId('Child', `${ctx.instanceId}-child`),
          ctx.waitForEvent('never'),
        ]);
      });
    },
    { workerLockTimeoutMs: 2000 },
  );
});

after(async () => {
  await runtime.shutdown(100);
  await provider.close();
});

test('cancelling fails the instance with the reason and the activity sees isCancelled()', async () => {
  const id = uid('cancel-activity');
  await client.startOrchestration(id, 'Worker');
  await eventually(async () => (running.has(id) ? true : undefined));
  await client.cancelInstance(id, 'user asked');
  const status = await client.waitForOrchestration(id, 10_000);
  assert.equal(status.status, 'Failed');
  assert.equal(status.error, 'canceled: user asked');
  await eventually(async () => observed.get(id), 10_000, 'the activity to observe cancellation');
  assert.equal(observed.get(id), 'cancelled');
  const kinds = await historyKinds(client, id);
  assert.ok(kinds.includes('OrchestrationCancelRequested'));
  assert.ok(kinds.includes('ActivityCancelRequested'));
  assert.equal(kinds.includes('ActivityCompleted'), false, 'the late result was dropped');
});

test('cancelling a parent cascades to its children', async () => {
  const id = uid('cancel-parent');
  await client.startOrchestration(id, 'Parent');
  const childId = `${id}-child`;
  await eventually(async () => ((await client.getStatus(childId)).status === 'Running' ? true : undefined));
  await client.cancelInstance(id, 'stop all');
  assert.equal((await client.waitForOrchestration(id, 10_000)).error, 'canceled: stop all');
  const child = await client.waitForOrchestration(childId, 10_000);
  assert.equal(child.status, 'Failed');
  assert.match(String(child.error), /^canceled: /);
});

test('cancelling a completed instance changes nothing', async () => {
  const id = uid('cancel-done');
  await client.startOrchestration(id, 'Child');
  await eventually(async () => ((await historyKinds(client, id)).includes('ExternalSubscribed') ? true : undefined));
  await client.raiseEvent(id, 'never', 'done');
  assert.equal((await client.waitForOrchestration(id, 10_000)).output, 'done');
  await client.cancelInstance(id, 'too late');
  await new Promise((resolve) => setTimeout(resolve, 200));
  const status = await client.getStatus(id);
  assert.equal(status.status, 'Completed');
});
