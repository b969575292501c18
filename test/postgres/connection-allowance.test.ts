/**
 * The pool's connection allowance (src/postgres/connection-allowance.ts): a few connections at
 * first, more for slow calls (a distant database) or starved callers, never more than the pool's
 * maximum. The rules are driven by a mocked clock; then, on the real server, a burst of quick
 * calls is served by about 4 backends while slow calls open the pool up to its maximum.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { ConnectionAllowance } from '../../src/postgres/connection-allowance';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { databaseUrl } from '../helpers/postgres-harness';

const SETTINGS = { max: 6, initial: 2, growAfterMs: 20, slowHoldMs: 10, starvedAfterMs: 100 };

/** Lets promise callbacks run (admissions resolve promises). */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('connection allowance (mocked clock)', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'] }));
  afterEach(() => mock.timers.reset());

  it('admits up to the allowance, then one waiter per connection given back', async () => {
    const allowance = new ConnectionAllowance(SETTINGS);
    const first = await allowance.acquire();
    await allowance.acquire();
    let third = false;
    void allowance.acquire().then(() => (third = true));
    await settle();
    assert.equal(third, false, 'a third caller waits');
    first();
    await settle();
    assert.equal(third, true, 'the connection given back goes to the waiter');
    assert.equal(allowance.current, 2);
  });

  it('quick calls: waiters get one more connection only once starved', async () => {
    const allowance = new ConnectionAllowance(SETTINGS);
    for (let i = 0; i < 8; i += 1) (await allowance.acquire())(); // quick calls: held 0 ms
    await allowance.acquire();
    await allowance.acquire();
    const admitted: number[] = [];
    for (let i = 0; i < 3; i += 1) void allowance.acquire().then(() => admitted.push(i));
    mock.timers.tick(99);
    await settle();
    assert.deepEqual(admitted, [], 'no growth after 99 ms of waiting');
    mock.timers.tick(1);
    await settle();
    assert.deepEqual(admitted, [0], 'one more connection after 100 ms');
    assert.equal(allowance.current, 3);
  });

  it('slow calls: every caller that waited 20 ms gets a connection, up to the maximum', async () => {
    const allowance = new ConnectionAllowance(SETTINGS);
    for (let i = 0; i < 4; i += 1) {
      const done = await allowance.acquire();
      mock.timers.tick(70); // a round trip to a distant database
      done();
    }
    await allowance.acquire();
    await allowance.acquire();
    const admitted: number[] = [];
    for (let i = 0; i < 6; i += 1) void allowance.acquire().then(() => admitted.push(i));
    mock.timers.tick(20);
    await settle();
    assert.deepEqual(admitted, [0, 1, 2, 3], 'four more: the maximum of 6');
    assert.equal(allowance.current, 6);
    mock.timers.tick(1000);
    await settle();
    assert.equal(admitted.length, 4, 'never beyond the maximum');
  });

  it('lets every waiter through when the pool closes', async () => {
    const allowance = new ConnectionAllowance({ ...SETTINGS, initial: 1 });
    await allowance.acquire();
    let waiting = true;
    void allowance.acquire().then(() => (waiting = false));
    allowance.openAll();
    await settle();
    assert.equal(waiting, false);
  });
});

describe('postgres: connections a burst opens', () => {
  /** Backends of `executor`'s pool, told apart by their application name. */
  async function backends(name: string): Promise<number> {
    const observer = PgExecutor.fromUrl(databaseUrl(), 1);
    try {
      const rows = await observer.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [
        name,
      ]);
      return Number(rows[0].n);
    } finally {
      await observer.close();
    }
  }

  function pool(name: string): PgExecutor {
    const url = new URL(databaseUrl());
    url.searchParams.set('application_name', name);
    return PgExecutor.fromUrl(url.toString(), 10);
  }

  it('a burst of 40 quick calls is served by about 4 connections; slow calls open up to the maximum', async () => {
    const quickName = `allowance_quick_${process.pid}`;
    const quick = pool(quickName);
    try {
      await Promise.all(Array.from({ length: 40 }, () => quick.query('SELECT 1')));
      // 4 on a quiet machine; a loaded one may starve a caller for 100 ms once or twice. Without
      // the allowance the burst opens all 10.
      const opened = await backends(quickName);
      assert.ok(opened >= 4 && opened <= 6, `the burst opened ${opened} connections`);
    } finally {
      await quick.close();
    }
    const slowName = `allowance_slow_${process.pid}`;
    const slow = pool(slowName);
    try {
      for (let round = 0; round < 3; round += 1)
        await Promise.all(Array.from({ length: 20 }, () => slow.query('SELECT pg_sleep(0.05)')));
      assert.equal(await backends(slowName), 10);
    } finally {
      await slow.close();
    }
  });
});
