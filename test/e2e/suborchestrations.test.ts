import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect, durox, startRuntime, uid, type Client, type Provider, type Runtime } from './helpers';

let provider: Provider;
let runtime: Runtime;
let client: Client;

before(async () => {
  provider = await connect('suborch');
  client = new durox.Client(provider);
  runtime = await startRuntime(provider, (rt) => {
    rt.registerActivity('Double', (_ctx, n: number) => n * 2);
    rt.registerOrchestration('Child', function* (ctx, n: number) {
      const doubled = yield ctx.scheduleActivity('Double', n);
      return { version: ctx.orchestrationVersion, doubled };
    });
    rt.registerOrchestrationVersioned('Child', '2.0.0', function* (ctx, n: number) {
      return { version: ctx.orchestrationVersion, doubled: n * 2, v2: true };
    });
    rt.registerOrchestration('FailingChild', function* () {
      throw new Error('child broke');
    });
    rt.registerOrchestration('Parent', function* (ctx, input: { mode: string; childId?: string }) {
      if (input.mode === 'auto') return yield ctx.scheduleSubOrchestration('Child', 5);
      if (input.mode === 'withId') return yield ctx.scheduleSubOrchestrationWithId('Child', String(input.childId), 6);
      if (input.mode === 'v1') return yield ctx.scheduleSubOrchestrationVersioned('Child', '1.0.0', 7);
      if (input.mode === 'latest') return yield ctx.scheduleSubOrchestrationVersioned('Child', null, 8);
      if (input.mode === 'fails') {
        try {
          yield ctx.scheduleSubOrchestration('FailingChild');
          return 'no error';
        } catch (e) {
          return `child failed: ${(e as Error).message}`;
        }
      }
      const started = yield ctx.startOrchestration('Child', String(input.childId), 9);
      return { detached: started };
    });
  });
});

after(async () => {
  await runtime.shutdown(100);
  await provider.close();
});

test('a sub-orchestration without id gets <parent>::sub::<eventId> and returns its output', async () => {
  const id = uid('parent-auto');
  await client.startOrchestration(id, 'Parent', { mode: 'auto' });
  const status = await client.waitForOrchestration(id, 10_000);
  assert.deepEqual(status.output, { version: '2.0.0', doubled: 10, v2: true });
  const scheduled = (await client.readExecutionHistory(id, 1)).find((e) => e.kind === 'SubOrchestrationScheduled');
  const data = JSON.parse(scheduled?.data ?? '{}');
  assert.equal(data.name, 'Child');
  assert.equal(data.input, 5);
  const childId = `${id}::sub::${scheduled?.eventId}`;
  const child = await client.getInstanceInfo(childId);
  assert.equal(child.parentInstanceId, id);
  assert.equal(child.status, 'Completed');
  assert.equal((await client.getInstanceInfo(id)).parentInstanceId, undefined);
});

test('a sub-orchestration with an explicit id uses it verbatim', async () => {
  const id = uid('parent-id');
  const childId = uid('explicit-child');
  await client.startOrchestration(id, 'Parent', { mode: 'withId', childId });
  assert.equal((await client.waitForOrchestration(id, 10_000)).status, 'Completed');
  assert.deepEqual((await client.waitForOrchestration(childId, 10_000)).output, {
    version: '2.0.0',
    doubled: 12,
    v2: true,
  });
  assert.equal((await client.getInstanceInfo(childId)).parentInstanceId, id);
});

test('a versioned sub-orchestration runs the pinned version; null means latest', async () => {
  const v1 = uid('parent-v1');
  await client.startOrchestration(v1, 'Parent', { mode: 'v1' });
  assert.deepEqual((await client.waitForOrchestration(v1, 10_000)).output, { version: '1.0.0', doubled: 14 });
  const latest = uid('parent-latest');
  await client.startOrchestration(latest, 'Parent', { mode: 'latest' });
  assert.deepEqual((await client.waitForOrchestration(latest, 10_000)).output, {
    version: '2.0.0',
    doubled: 16,
    v2: true,
  });
});

test('a failing child throws its error display message into the parent', async () => {
  const id = uid('parent-fails');
  await client.startOrchestration(id, 'Parent', { mode: 'fails' });
  const output = String((await client.waitForOrchestration(id, 10_000)).output);
  assert.match(output, /^child failed: Error: child broke/);
});

test('a detached start yields null and runs outside the instance tree', async () => {
  const id = uid('parent-detached');
  const detached = uid('detached');
  await client.startOrchestration(id, 'Parent', { mode: 'detached', childId: detached });
  assert.deepEqual((await client.waitForOrchestration(id, 10_000)).output, { detached: null });
  assert.deepEqual((await client.waitForOrchestration(detached, 10_000)).output, {
    version: '2.0.0',
    doubled: 18,
    v2: true,
  });
  assert.equal((await client.getInstanceInfo(detached)).parentInstanceId, undefined);
  const chained = (await client.readExecutionHistory(id, 1)).find((e) => e.kind === 'OrchestrationChained');
  assert.ok(chained, 'the detached start is recorded');
});
