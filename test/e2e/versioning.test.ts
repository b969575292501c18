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
let client: Client;
const runtimes: Runtime[] = [];

function* upgradeV1(ctx: InstanceType<typeof durox.OrchestrationContext>, input: { round: number }) {
  ctx.setCustomStatus(`v1 round ${input.round}`);
  yield ctx.waitForEvent('go');
  yield ctx.continueAsNew({ round: input.round + 1 });
}

function* upgradeV2(ctx: InstanceType<typeof durox.OrchestrationContext>, input: { round: number }) {
  return `v2 ran round ${input.round} as ${ctx.orchestrationVersion}`;
}

before(async () => {
  provider = await connect('versioning');
  client = new durox.Client(provider);
});

after(async () => {
  for (const runtime of runtimes) await runtime.shutdown(100);
  await provider.close();
});

test('a running instance stays on its version until it continues as new', async () => {
  const v1Only = await startRuntime(provider, (rt) => rt.registerOrchestration('Upgrade', upgradeV1));
  runtimes.push(v1Only);
  const id = uid('upgrade');
  await client.startOrchestration(id, 'Upgrade', { round: 1 });
  await eventually(async () => ((await historyKinds(client, id)).includes('ExternalSubscribed') ? true : undefined));
  await v1Only.shutdown(100);

  const both = await startRuntime(provider, (rt) => {
    rt.registerOrchestration('Upgrade', upgradeV1);
    rt.registerOrchestrationVersioned('Upgrade', '2.0.0', upgradeV2);
  });
  runtimes.push(both);
  await client.raiseEvent(id, 'go');
  const status = await client.waitForOrchestration(id, 10_000);
  assert.equal(status.output, 'v2 ran round 2 as 2.0.0');
  const [first] = await client.readExecutionHistory(id, 1);
  const [second] = await client.readExecutionHistory(id, 2);
  assert.equal(JSON.parse(first.data ?? '{}').version, '1.0.0');
  assert.equal(JSON.parse(second.data ?? '{}').version, '2.0.0');
  assert.equal((await client.getInstanceInfo(id)).orchestrationVersion, '2.0.0');

  const pinned = uid('pinned');
  await client.startOrchestrationVersioned(pinned, 'Upgrade', { round: 7 }, '1.0.0');
  await eventually(async () => ((await client.getStatus(pinned)).customStatus === 'v1 round 7' ? true : undefined));
  assert.equal((await client.getInstanceInfo(pinned)).orchestrationVersion, '1.0.0');
  await client.raiseEvent(pinned, 'go');
  assert.equal((await client.waitForOrchestration(pinned, 10_000)).output, 'v2 ran round 8 as 2.0.0');
  await both.shutdown(100);
});

test('continueAsNewVersioned targets an exact version', async () => {
  const runtime = await startRuntime(provider, (rt) => {
    rt.registerOrchestrationVersioned('Hop', '1.0.0', function* (ctx, n: number) {
      if (n === 0) yield ctx.continueAsNewVersioned(1, '1.0.0');
      return `${ctx.orchestrationVersion}:${n}`;
    });
    rt.registerOrchestrationVersioned('Hop', '1.1.0', function* (ctx, n: number) {
      if (n === 0) yield ctx.continueAsNewVersioned(1, '1.0.0');
      return `${ctx.orchestrationVersion}:${n}`;
    });
  });
  runtimes.push(runtime);
  const id = uid('hop');
  await client.startOrchestration(id, 'Hop', 0);
  assert.equal((await client.waitForOrchestration(id, 10_000)).output, '1.0.0:1');
  assert.equal(JSON.parse((await client.readExecutionHistory(id, 1))[0].data ?? '{}').version, '1.1.0');
});

test('registration mistakes make start() fail, listing them', async () => {
  const wrongOrder = new durox.Runtime(provider);
  wrongOrder.registerOrchestrationVersioned('X', '2.0.0', function* () {
    return 1;
  });
  wrongOrder.registerOrchestrationVersioned('X', '1.5.0', function* () {
    return 1;
  });
  await assert.rejects(wrongOrder.start(), /version 1\.5\.0 .*strictly increasing/);

  const badSemver = new durox.Runtime(provider);
  badSemver.registerOrchestrationVersioned('Y', 'one', function* () {
    return 1;
  });
  await assert.rejects(badSemver.start(), /invalid semver version 'one'/);

  const reserved = new durox.Runtime(provider);
  reserved.registerActivity('__duroxide_syscall:mine', () => 1);
  await assert.rejects(reserved.start(), /reserved prefix '__duroxide_syscall:'/);
});
