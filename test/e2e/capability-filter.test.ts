/**
 * Capability filtering end to end (docs/runtime.md, "Registration and versions"): a runtime only takes turns of
 * executions pinned to a Durox version it can run ([0.0.0, its own version]); an execution
 * started by a newer Durox waits, unlocked, for a node that can run it.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect, durox, sleep, startRuntime, uid, type Client, type Provider, type Runtime } from './helpers';

let provider: Provider;
let runtime: Runtime;
let client: Client;

before(async () => {
  provider = await connect('capability');
  client = new durox.Client(provider);
  runtime = await startRuntime(provider, (rt) => {
    rt.registerOrchestration('Wait', function* (ctx) {
      return yield ctx.waitForEvent('go');
    });
  });
});

after(async () => {
  await runtime.shutdown(100);
  await provider.close();
});

test('executions pinned by this version run; one pinned by a newer Durox is left alone', async () => {
  const current = uid('current');
  await client.startOrchestration(current, 'Wait');
  for (let i = 0; i < 200 && (await client.getStatus(current)).status !== 'Running'; i += 1) await sleep(10);
  const started = (await client.readExecutionHistory(current, 1))[0];
  assert.equal(started.kind, 'OrchestrationStarted');

  // Simulate an instance started by a future Durox: same store, OrchestrationStarted stamped 99.0.0.
  await runtime.shutdown(100);
  const future = uid('future');
  await provider.enqueueOrchestratorWork({
    type: 'StartOrchestration',
    instance: future,
    orchestration: 'Wait',
    input: 'null',
    version: null,
    parentInstance: null,
    parentId: null,
    parentExecutionId: null,
    executionId: 1,
  });
  const item = await provider.fetchOrchestrationItem({ lockTimeoutMs: 5_000 });
  assert.equal(item?.instanceId, future);
  await provider.ackOrchestrationItem(item.lockToken, {
    instanceId: future,
    executionId: 1,
    historyDelta: [
      {
        eventId: 1,
        instanceId: future,
        executionId: 1,
        timestampMs: Date.now(),
        duroxVersion: '99.0.0',
        kind: 'OrchestrationStarted',
        name: 'Wait',
        version: '1.0.0',
        input: 'null',
      },
    ],
    workerItems: [],
    orchestratorItems: [],
    metadata: { orchestrationName: 'Wait', orchestrationVersion: '1.0.0' },
    cancelledActivities: [],
  });
  runtime = await startRuntime(provider, (rt) => {
    rt.registerOrchestration('Wait', function* (ctx) {
      return yield ctx.waitForEvent('go');
    });
  });

  // The future execution's event is the older: fetches take the oldest eligible message first, so
  // once the current execution's later event has been taken, the older one was passed over.
  await client.raiseEvent(future, 'go', 'now');
  await client.raiseEvent(current, 'go', 'now');
  assert.equal((await client.waitForOrchestration(current, 20_000)).output, 'now');
  assert.equal((await client.getStatus(future)).status, 'Running', 'the newer execution is not run by this node');
  assert.equal((await client.getQueueDepths()).orchestratorQueue, 1, 'its event waits, unlocked, for a capable node');
  const capable = await provider.fetchOrchestrationItem({
    lockTimeoutMs: 5_000,
    versionRange: { min: '0.0.0', max: '99.0.0' },
  });
  assert.equal(capable?.instanceId, future, 'a node supporting 99.0.0 gets it');
  await provider.abandonOrchestrationItem(capable.lockToken);
});
