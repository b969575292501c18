import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { connect, type Provider } from './helpers';
import type { Untyped } from '../../src/core/turn-api';

// Examples are plain CommonJS files outside the TypeScript build; load them from the source tree.
const examplesDir = join(__dirname, '..', '..', '..', 'examples');
const load = (name: string): { main: (provider: Provider, ...args: unknown[]) => Promise<Untyped> } =>
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require(join(examplesDir, name));

let provider: Provider;

before(async () => {
  provider = await connect('examples');
});

after(async () => {
  await provider.close();
});

test('hello-world', async () => {
  assert.equal(await load('hello-world.js').main(provider), 'Hello, World!');
});

test('fan-out-fan-in over 100 activities', async () => {
  const { sum } = await load('fan-out-fan-in.js').main(provider, 100);
  assert.equal(sum, (100 * 101 * 201) / 6);
});

test('human approval: an approved request and an expired one', async () => {
  const result = await load('human-approval.js').main(provider, 300);
  assert.deepEqual(result, {
    approved: { item: 'laptop', decision: 'approved', by: 'alice' },
    expired: { item: 'yacht', decision: 'expired' },
  });
});

test('saga with compensation', async () => {
  const result = await load('saga.js').main(provider);
  assert.deepEqual(result.booked, { status: 'booked', bookings: ['flight-1', 'hotel-1', 'car-1'] });
  assert.deepEqual(result.compensated, {
    status: 'compensated',
    reason: 'no cars left',
    undone: ['cancelled hotel-2', 'cancelled flight-2'],
  });
});

test('eternal orchestration with continue-as-new', async () => {
  const result = await load('eternal.js').main(provider, 4);
  assert.deepEqual(result, {
    output: { rounds: 4, last: 'healthy at round 4' },
    executions: 4,
    customStatus: 'healthy at round 4',
  });
});

test('versioned upgrade of a running orchestration', async () => {
  const result = await load('versioned-upgrade.js').main(provider);
  assert.deepEqual(result, {
    statusBeforeUpgrade: 'cycle 1 on 1.0.0',
    firstExecutionVersion: '1.0.0',
    output: { cycle: 2, invoice: 'invoice #2 (v2)', version: '2.0.0' },
  });
});

test('a program written for duroxide-node', async () => {
  const result = await load('duroxide-user.js').main(provider);
  assert.equal(result.status, 'Completed');
  assert.equal(result.output.orderId, 'A-1');
  assert.equal(result.output.paymentId, 'payment-A-1-27');
  assert.equal(result.output.trackingNumber, 'tracking-A-1');
  assert.equal(typeof result.output.completedAt, 'number');
  assert.deepEqual(JSON.parse(result.customStatus), { stage: 'validated', total: 27 });
  assert.equal(result.tracking, 'tracking-A-1');
});

test('async hello world and fan-out', async () => {
  assert.deepEqual(await load('async-hello-world.js').main(provider, 10), { greeting: 'Hello, World!', sum: 385 });
});

test('a typed async orchestration (examples/async-typed.ts, compiled under strict)', async () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { main } = require('../../examples/async-typed') as typeof import('../../examples/async-typed');
  assert.deepEqual(await main(provider), { id: 'o-1', total: 60, approvedBy: 'alice' });
});
