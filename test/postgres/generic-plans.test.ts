/**
 * The procedures on the per-orchestration path run with generic plans: PostgreSQL's default
 * (`plan_cache_mode = auto`) kept re-planning some of their statements on every call (a custom plan
 * costs less to run than the generic one when the planner can see a json argument's elements, so it
 * never switched), and planning was about a quarter of the procedures' time
 * (`node dist/bench/call-profile.js` against a server with pg_stat_statements; README, Performance).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { databaseUrl, dropTestSchema, migrateTestSchema, uniqueSchemaName } from '../helpers/postgres-harness';

const GENERIC = /(^|,)plan_cache_mode=force_generic_plan(,|$)/;
const PROCEDURES_DIR = join(__dirname, '..', '..', 'src', 'store', 'sql', 'procedures');

/** The public procedures a file defines (internal_* helpers run inside them and inherit the setting). */
function publicProcedures(file: string): string[] {
  const sql = readFileSync(join(PROCEDURES_DIR, file), 'utf8');
  return [...sql.matchAll(/CREATE OR REPLACE FUNCTION (\w+)\(/g)]
    .map((match) => match[1])
    .filter((name) => !name.startsWith('internal_'));
}

describe('postgres: generic plans on the hot path', () => {
  const schema = uniqueSchemaName('generic_plans');
  after(() => dropTestSchema(schema));

  it('every procedure of a turn, an activity or a status read forces generic plans; management reads do not', async () => {
    await migrateTestSchema(schema);
    const executor = PgExecutor.fromUrl(databaseUrl(), 1);
    try {
      const rows = await executor.query(
        `SELECT p.proname AS name, COALESCE(array_to_string(p.proconfig, ','), '') AS config
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1`,
        [schema],
      );
      const config = new Map(rows.map((row) => [String(row.name), String(row.config)]));
      const hot = [
        ...publicProcedures('orchestration.sql'),
        ...publicProcedures('worker.sql'),
        ...publicProcedures('sessions.sql'),
        'get_instance_status',
      ];
      assert.ok(hot.includes('ack_orchestration_item') && hot.includes('fetch_work_item'));
      for (const name of hot) {
        assert.match(config.get(name) ?? '', GENERIC, `${name} forces generic plans`);
      }
      // Listing with optional filters is where a custom plan pays: those keep the default.
      assert.doesNotMatch(config.get('list_instances_page') ?? '', GENERIC);
      // The helpers inherit the setting from the procedure that calls them.
      for (const [name, setting] of config) {
        if (name.startsWith('internal_')) assert.doesNotMatch(setting, GENERIC, `${name} inherits it`);
      }
    } finally {
      await executor.close();
    }
  });
});
