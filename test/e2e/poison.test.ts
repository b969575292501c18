import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect, durox, eventually, startRuntime, uid, type Client, type Provider, type Runtime } from './helpers';

let provider: Provider;
let client: Client;
const runtimes: Runtime[] = [];
/** Test hook (documented in src/runtime/options.ts): shortens the unregistered-handler backoff. */
const FAST_BACKOFF = { _testHooks: { unregisteredBackoffBaseMs: 10, unregisteredBackoffMaxMs: 30 } };

before(async () => {
  provider = await connect('poison');
  client = new durox.Client(provider);
});

after(async () => {
  for (const runtime of runtimes) await runtime.shutdown(100);
  await provider.close();
});

test('an unregistered orchestration stays pending with backoff, then becomes poison', async () => {
  const patient = await startRuntime(provider, () => undefined);
  runtimes.push(patient);
  const id = uid('ghost');
  await client.startOrchestration(id, 'NotDeployedYet', { x: 1 });
  // A second fetch of the only queued item shows the first attempt was given back (with its
  // backoff), not committed.
  await eventually(
    async () => ((patient.metricsSnapshot()?.orchDispatcherItemsFetched ?? 0) >= 2 ? true : undefined),
    10_000,
    'a retry of the unregistered orchestration',
  );
  assert.equal(
    (await client.getStatus(id)).status,
    'NotFound',
    'still waiting for a node that knows the orchestration',
  );
  await patient.shutdown(100);

  const fast = await startRuntime(provider, () => undefined, FAST_BACKOFF);
  runtimes.push(fast);
  const status = await client.waitForOrchestration(id, 20_000);
  assert.equal(status.status, 'Failed');
  assert.match(String(status.error), new RegExp(`^poison: orchestration ${id} exceeded \\d+ attempts \\(max 10\\)$`));
  const kinds = (await client.readExecutionHistory(id, 1)).map((e) => e.kind);
  assert.deepEqual(kinds, ['OrchestrationStarted', 'OrchestrationFailed']);
  assert.ok((fast.metricsSnapshot()?.orchPoison ?? 0) >= 1);
  // This runtime knows no orchestration: left running it would abandon (and poison) the next test's.
  await fast.shutdown(100);
});

test('an unregistered activity becomes poison and fails the orchestration uncatchably', async () => {
  const runtime = await startRuntime(
    provider,
    (rt) => {
      rt.registerOrchestration('UsesMissing', function* (ctx) {
        try {
          yield ctx.scheduleActivity('NoSuchActivity', 1);
          return 'unexpected';
        } catch (e) {
          return `caught ${(e as Error).message}`;
        }
      });
      rt.registerOrchestration('Known', function* () {
        return 'known';
      });
    },
    FAST_BACKOFF,
  );
  runtimes.push(runtime);
  const id = uid('missing-activity');
  await client.startOrchestration(id, 'UsesMissing');
  const status = await client.waitForOrchestration(id, 20_000);
  assert.equal(status.status, 'Failed');
  assert.match(String(status.error), /^poison: activity NoSuchActivity#2 exceeded \d+ attempts \(max 10\)$/);

  const missingVersion = uid('missing-version');
  await client.startOrchestrationVersioned(missingVersion, 'Known', null, '9.9.9');
  const pinned = await client.waitForOrchestration(missingVersion, 20_000);
  assert.match(String(pinned.error), /^poison: orchestration /);
});
