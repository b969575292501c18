/** Lock renewal (runtime/lock-renewal.ts) on node's mock timers: no database, no real waiting. */
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { LockRenewer, renewalIntervalMs } from '../../src/runtime/lock-renewal';

async function flush(): Promise<void> {
  for (let i = 0; i < 5; i += 1) await Promise.resolve();
}

test('renewal interval: half the timeout below 15 s, timeout minus buffer above, never below 1 s', () => {
  assert.equal(renewalIntervalMs(5000, 5000), 2500);
  assert.equal(renewalIntervalMs(30_000, 5000), 25_000);
  assert.equal(renewalIntervalMs(1000, 5000), 1000);
});

test('renews every interval until stopped; a transient failure is reported and renewal goes on', async () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    let renewals = 0;
    const errors: unknown[] = [];
    const renewer = new LockRenewer(
      async () => {
        renewals += 1;
        if (renewals === 2) throw new Error('connection blip');
      },
      1000,
      () => false,
      () => assert.fail('the lock was not lost'),
      (error) => errors.push(error),
    ).start();
    for (let i = 0; i < 3; i += 1) {
      mock.timers.tick(1000);
      await flush();
    }
    assert.equal(renewals, 3);
    assert.equal(errors.length, 1);
    renewer.stop();
    mock.timers.tick(5000);
    await flush();
    assert.equal(renewals, 3, 'no renewal after stop');
  } finally {
    mock.timers.reset();
  }
});

test('a renewal that reports the lock lost ends the loop and calls onLost once', async () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    let renewals = 0;
    let lost = 0;
    const lockLost = new Error('lock lost');
    new LockRenewer(
      async () => {
        renewals += 1;
        throw lockLost;
      },
      1000,
      (error) => error === lockLost,
      () => void (lost += 1),
      () => assert.fail('lock loss is not a transient error'),
    ).start();
    for (let i = 0; i < 3; i += 1) {
      mock.timers.tick(1000);
      await flush();
    }
    assert.equal(renewals, 1);
    assert.equal(lost, 1);
  } finally {
    mock.timers.reset();
  }
});

test('a lock taken a while ago is renewed first after what is left of the interval, then every interval', async () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    let renewals = 0;
    const renewer = new LockRenewer(
      async () => void (renewals += 1),
      1000,
      () => false,
      () => assert.fail('the lock was not lost'),
      () => assert.fail('no renewal fails'),
    ).start(1000 - 700);
    mock.timers.tick(299);
    await flush();
    assert.equal(renewals, 0);
    mock.timers.tick(1);
    await flush();
    assert.equal(renewals, 1, 'renewed 300 ms in: the lock had run 700 ms of the interval');
    mock.timers.tick(999);
    await flush();
    assert.equal(renewals, 1);
    mock.timers.tick(1);
    await flush();
    assert.equal(renewals, 2, 'then every full interval');
    renewer.stop();
  } finally {
    mock.timers.reset();
  }
});
