// Regenerates src/store/sql/schema.sql: applies the migrations and procedures of this build to a
// scratch schema of DATABASE_URL (default: the local test server), dumps it normalised
// (src/store/schema-dump.ts) and drops the scratch schema. Run `npm run schema:dump` (it builds
// first) after changing a migration or a procedure's signature or attributes.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const { applyMigrations } = require(path.join(root, 'dist', 'src', 'store', 'migrations'));
const { dumpSchema } = require(path.join(root, 'dist', 'src', 'store', 'schema-dump'));
const { PgExecutor } = require(path.join(root, 'dist', 'src', 'postgres', 'pg-executor'));

async function main() {
  const url = process.env.DATABASE_URL || 'postgres://root@127.0.0.1:5432/test';
  const executor = PgExecutor.fromUrl(url, 2);
  const schema = `schema_dump_${process.pid}`;
  try {
    await applyMigrations(executor, schema);
    const text = await dumpSchema(executor, schema);
    const target = path.join(root, 'src', 'store', 'sql', 'schema.sql');
    fs.writeFileSync(target, text);
    console.log(`wrote ${path.relative(root, target)} (${text.split('\n').length - 1} lines)`);
  } finally {
    await executor.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await executor.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
