/**
 * Multi-host connections: libpq URI parsing, the role rules of target_session_attrs, the node
 * choice against the real server (a dead first host, a node that reports itself read-only),
 * the classification of standby and shutdown errors, and the time-bounded retry policy.
 * The failover itself runs on a pg_auto_failover formation in test/chaos/failover.chaos.ts.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { DATABASE_URL } from '../e2e/helpers';
import { toProviderError } from '../../src/store/error-mapping';
import {
  parseConnectionTarget,
  roleMatches,
  isPreferred,
  type TargetSessionAttrs,
} from '../../src/postgres/multi-host';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { isReadOnlyNodeError } from '../../src/provider/errors';
import { jitteredDelayMs, retryThroughOutage, DEFAULT_OUTAGE_RETRY } from '../../src/provider/outage-retry';
import { causeOf } from '../../src/runtime/fault-log';
import { PostgresProvider } from '../../src/postgres/postgres-provider';

test('a libpq multi-host URI lists its nodes in order and keeps everything else', () => {
  const target = parseConnectionTarget(
    'postgres://app:secret@h1:6001,h2:6002,[::1]:6003,h4/db?target_session_attrs=read-write&sslmode=disable',
  );
  assert.deepEqual(target.hosts, [
    { host: 'h1', port: 6001 },
    { host: 'h2', port: 6002 },
    { host: '::1', port: 6003 },
    { host: 'h4', port: 5432 },
  ]);
  assert.equal(target.targetSessionAttrs, 'read-write');
  assert.equal(target.urlFor(target.hosts[1]), 'postgres://app:secret@h2:6002/db?sslmode=disable');
  assert.equal(target.urlFor(target.hosts[2]), 'postgres://app:secret@[::1]:6003/db?sslmode=disable');
});

test('the default target is read-write; code overrides the URL hosts and attrs', () => {
  assert.equal(parseConnectionTarget('postgresql://h/db').targetSessionAttrs, 'read-write');
  const target = parseConnectionTarget('postgres://h:1/db?target_session_attrs=any', {
    hosts: ['a:7001', { host: 'b', port: 7002 }],
    targetSessionAttrs: 'prefer-standby',
  });
  assert.deepEqual(target.hosts, [
    { host: 'a', port: 7001 },
    { host: 'b', port: 7002 },
  ]);
  assert.equal(target.targetSessionAttrs, 'prefer-standby');
  assert.equal(target.urlFor(target.hosts[0]), 'postgres://a:7001/db');
});

test('malformed URIs are refused with a message naming the problem', () => {
  assert.throws(() => parseConnectionTarget('mysql://h/db'), /must start with postgres:\/\//);
  assert.throws(() => parseConnectionTarget('postgres://h1,,h2/db'), /empty entry/);
  assert.throws(
    () => parseConnectionTarget('postgres://h1:99999/db'),
    /port of h1:99999 must be a number from 1 to 65535/,
  );
  assert.throws(
    () => parseConnectionTarget('postgres://h1/db?target_session_attrs=writable'),
    /target_session_attrs must be one of/,
  );
  assert.throws(() => parseConnectionTarget('postgres:///db'), /names no host/);
});

test('role rules follow libpq', () => {
  const primary = { standby: false, readOnly: false };
  const standby = { standby: true, readOnly: true };
  const readOnlyPrimary = { standby: false, readOnly: true };
  const table: Array<[TargetSessionAttrs, boolean, boolean, boolean]> = [
    ['any', true, true, true],
    ['read-write', true, false, false],
    ['read-only', false, true, true],
    ['primary', true, false, true],
    ['standby', false, true, false],
    ['prefer-standby', true, true, true],
  ];
  for (const [attrs, p, s, r] of table) {
    assert.equal(roleMatches(primary, attrs), p, `${attrs} on a primary`);
    assert.equal(roleMatches(standby, attrs), s, `${attrs} on a standby`);
    assert.equal(roleMatches(readOnlyPrimary, attrs), r, `${attrs} on a read-only primary`);
  }
  assert.equal(isPreferred(standby, 'prefer-standby'), true);
  assert.equal(isPreferred(primary, 'prefer-standby'), false);
});

test('standby, shutdown and connection errors are retryable unavailable; a read-only node is named', () => {
  for (const code of ['25006', '57P01', '57P02', '57P03', '08006', '08001', '53300']) {
    const error = toProviderError(Object.assign(new Error('boom'), { code }), 'ack_orchestration_item');
    assert.equal(error.code, 'unavailable', code);
    assert.equal(error.retryable, true, code);
  }
  const readOnly = toProviderError(
    Object.assign(new Error('cannot execute INSERT in a read-only transaction'), { code: '25006' }),
    'start',
  );
  assert.match(readOnly.message, /the node is read-only/);
  assert.equal(isReadOnlyNodeError(readOnly), true);
  assert.equal(causeOf(readOnly), 'the node is a read-only standby');
  assert.equal(
    causeOf(toProviderError(Object.assign(new Error('x'), { code: '57P01' }), 'fetch')),
    'the database is unreachable',
  );
  assert.equal(
    causeOf(toProviderError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }), 'fetch')),
    'the database is unreachable',
  );
  assert.equal(toProviderError(Object.assign(new Error('x'), { code: 'DX001' }), 'ack').retryable, false);
});

test('retries are bounded by time, with jittered back-off', async () => {
  for (let failures = 1; failures < 12; failures++) {
    const ceiling = Math.min(DEFAULT_OUTAGE_RETRY.baseDelayMs * 2 ** (failures - 1), DEFAULT_OUTAGE_RETRY.maxDelayMs);
    assert.equal(
      jitteredDelayMs(failures, DEFAULT_OUTAGE_RETRY, () => 0),
      Math.round(ceiling / 2),
    );
    assert.equal(
      jitteredDelayMs(failures, DEFAULT_OUTAGE_RETRY, () => 1),
      ceiling,
    );
  }
  const unavailable = toProviderError(Object.assign(new Error('down'), { code: '57P03' }), 'op');
  let calls = 0;
  const started = Date.now();
  await assert.rejects(
    retryThroughOutage(
      async () => {
        calls += 1;
        throw unavailable;
      },
      { maxOutageMs: 300, baseDelayMs: 10, maxDelayMs: 50 },
      (e) => e === unavailable,
    ),
    (error) => error === unavailable,
  );
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 200 && elapsed < 1500, `gave up after ${elapsed} ms`);
  assert.ok(calls >= 5, `${calls} attempts`);
  let attempts = 0;
  const value = await retryThroughOutage(
    async () => {
      attempts += 1;
      if (attempts < 4) throw unavailable;
      return 'ok';
    },
    { maxOutageMs: 5000, baseDelayMs: 5, maxDelayMs: 20 },
    (e) => e === unavailable,
  );
  assert.equal(value, 'ok');
  const permanent = new Error('bug');
  await assert.rejects(
    retryThroughOutage(
      async () => {
        throw permanent;
      },
      DEFAULT_OUTAGE_RETRY,
      () => false,
    ),
    (e) => e === permanent,
  );
});

/** A loopback port with nothing listening. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function withHosts(url: string, hosts: string): string {
  const parsed = new URL(url);
  return url.replace(parsed.host, hosts);
}

test('a dead first node is skipped: connections land on the next one that matches', async () => {
  const real = new URL(DATABASE_URL);
  const dead = await closedPort();
  const chosen: string[] = [];
  const executor = PgExecutor.fromUrl(
    withHosts(DATABASE_URL, `127.0.0.1:${dead},${real.hostname}:${real.port || 5432}`),
    2,
    {
      onNodeChosen: (node) => chosen.push(`${node.host}:${node.port}`),
    },
  );
  try {
    const rows = await executor.query('SELECT inet_server_port() AS port');
    assert.equal(Number(rows[0].port), Number(real.port || 5432));
    assert.deepEqual(chosen, [`${real.hostname}:${real.port || 5432}`]);
  } finally {
    await executor.close();
  }
});

test('a read-only node is refused for read-write and accepted for read-only targets', async () => {
  const readOnlyUrl = `${DATABASE_URL}${DATABASE_URL.includes('?') ? '&' : '?'}options=${encodeURIComponent('-c default_transaction_read_only=on')}`;
  const writer = PgExecutor.fromUrl(readOnlyUrl, 1);
  try {
    await assert.rejects(writer.query('SELECT 1'), (error: Error & { code?: string }) => {
      assert.equal(error.code, '08001');
      assert.match(
        error.message,
        /no node accepts a read-write connection: .* is read-only \(default_transaction_read_only is on\)/,
      );
      const mapped = toProviderError(error, 'fetch');
      assert.equal(mapped.code, 'unavailable');
      assert.equal(isReadOnlyNodeError(mapped), true);
      return true;
    });
  } finally {
    await writer.close();
  }
  const reader = PgExecutor.fromUrl(`${readOnlyUrl}&target_session_attrs=read-only`, 1);
  try {
    assert.equal((await reader.query("SELECT current_setting('transaction_read_only') AS ro"))[0].ro, 'on');
  } finally {
    await reader.close();
  }
  await assert.rejects(
    PostgresProvider.connectWithSchema(readOnlyUrl, 'public'),
    /Failed to connect to PostgreSQL: no node accepts a read-write connection/,
  );
});
