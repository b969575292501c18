/**
 * The committed schema dump (src/store/sql/schema.sql) is what the migrations plus the procedures
 * of this build produce. When this fails after a change to a migration or a procedure, run
 * `npm run schema:dump` and commit the result (review the diff: it is the schema change).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { applyMigrations } from '../../src/store/migrations';
import { dumpSchema } from '../../src/store/schema-dump';
import { databaseUrl, uniqueSchemaName } from '../helpers/postgres-harness';

const COMMITTED = join(__dirname, '..', '..', '..', 'src', 'store', 'sql', 'schema.sql');

describe('postgres: committed schema dump', () => {
  it('equals the schema that the migrations and procedures produce', async () => {
    const schema = uniqueSchemaName('dump');
    const admin = PgExecutor.fromUrl(databaseUrl(), 2);
    try {
      await applyMigrations(admin, schema);
      const actual = await dumpSchema(admin, schema);
      const committed = readFileSync(COMMITTED, 'utf8');
      assert.equal(
        actual,
        committed,
        'src/store/sql/schema.sql is out of date: run `npm run schema:dump` and commit the result',
      );
    } finally {
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await admin.close();
    }
  });
});
