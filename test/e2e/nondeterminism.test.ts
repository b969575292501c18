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

before(async () => {
  provider = await connect('nondeterminism');
  client = new durox.Client(provider);
});

after(async () => {
  for (const runtime of runtimes) await runtime.shutdown(100);
  await provider.close();
});

test('changing the code of a running orchestration fails it with a message naming the mismatch', async () => {
  const original = await startRuntime(provider, (rt) => {
    rt.registerActivity('ReserveStock', () => 'reserved');
    rt.registerActivity('ChargeCard', () => 'charged');
    rt.registerOrchestration('Checkout', function* (ctx) {
      yield ctx.scheduleActivity('ReserveStock', 'sku-1');
      yield ctx.waitForEvent('confirm');
      return 'done';
    });
  });
  runtimes.push(original);
  const id = uid('checkout');
  await client.startOrchestration(id, 'Checkout');
  await eventually(async () => ((await historyKinds(client, id)).includes('ExternalSubscribed') ? true : undefined));
  await original.shutdown(100);

  const changed = await startRuntime(provider, (rt) => {
    rt.registerActivity('ReserveStock', () => 'reserved');
    rt.registerActivity('ChargeCard', () => 'charged');
    rt.registerOrchestration('Checkout', function* (ctx) {
      try {
        yield ctx.scheduleActivity('ChargeCard', 'sku-1');
        yield ctx.waitForEvent('confirm');
        return 'done';
      } catch (e) {
        return `caught ${(e as Error).message}`;
      }
    });
  });
  runtimes.push(changed);
  await client.raiseEvent(id, 'confirm');
  const status = await client.waitForOrchestration(id, 10_000);
  assert.equal(status.status, 'Failed', 'nondeterminism cannot be caught by orchestration code');
  assert.match(String(status.error), /^nondeterministic: /);
  assert.ok(status.error?.includes('ChargeCard') && status.error.includes('ReserveStock'), status.error);
  const failed = (await client.readExecutionHistory(id, 1)).find((e) => e.kind === 'OrchestrationFailed');
  assert.equal(Object.keys(JSON.parse(failed?.data ?? '{}'))[0], 'Configuration');
});
