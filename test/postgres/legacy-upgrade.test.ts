/**
 * A store of the earlier SQL layout (migrations 0001-0010 or 0001-0011 defining and renaming
 * functions, as today's deployments have) is upgraded in place: filled with work in every state by a runtime
 * on the old procedures, upgraded, then run to completion by a runtime on the new ones; its
 * schema then equals a fresh store's.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { ProcedureProvider } from '../../src/store/procedure-provider';
import { applyMigrations, loadMigrations } from '../../src/store/migrations';
import { dumpSchema } from '../../src/store/schema-dump';
import { DATABASE_URL, durox, type Runtime } from '../e2e/helpers';
import { createLegacyStore } from '../helpers/legacy-store';
import { uniqueSchemaName } from '../helpers/postgres-harness';
import { PGliteExecutor } from '../../src/pglite/pglite-executor';
import { createPGlite } from '../../src/pglite/pglite-factory';
import { LOCK_MS, startItem } from '../conformance/fixtures';

function register(runtime: Runtime): void {
  runtime.registerActivity('Echo', async (ctx, value: string) => `${value}@${ctx.sessionId ?? 'none'}`);
  runtime.registerOrchestration('Done', function* (ctx, input: string) {
    ctx.setValue('done', input);
    return yield ctx.scheduleActivity('Echo', input);
  });
  runtime.registerOrchestration('Looper', function* (ctx, n: number) {
    ctx.setValue(`loop-${n}`, String(ctx.executionId));
    if (n < 2) return yield ctx.continueAsNew(n + 1);
    const go: string = yield ctx.waitForEvent('go');
    return `looped ${n} ${go}`;
  });
  runtime.registerOrchestration('Parent', function* (ctx) {
    const child: string = yield ctx.scheduleSubOrchestrationWithId('Child', `${ctx.instanceId}-child`, 'c');
    return `parent of ${child}`;
  });
  runtime.registerOrchestration('Child', function* (ctx) {
    const go: string = yield ctx.waitForEvent('go');
    return `child ${go}`;
  });
  runtime.registerOrchestration('Sleeper', function* (ctx) {
    yield ctx.scheduleTimer(60_000);
    ctx.setValue('woke', 'yes');
    return 'slept';
  });
  runtime.registerOrchestration('Sessioned', function* (ctx) {
    const first: string = yield ctx.scheduleActivityOnSession('Echo', 'one', 'sess-1');
    const go: string = yield ctx.waitForEvent('go');
    const second: string = yield ctx.scheduleActivityOnSession('Echo', go, 'sess-1');
    return `${first} ${second}`;
  });
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('postgres: upgrade from the earlier SQL layout', () => {
  it(
    'upgrades a version-11 store holding work in every state, then runs it to ' +
      'completion; its schema equals a fresh one',
    async () => {
      const schema = uniqueSchemaName('legacy_up');
      const fresh = uniqueSchemaName('legacy_fresh');
      const admin = PgExecutor.fromUrl(DATABASE_URL, 3);
      // Shut down in `finally` even when an assertion fails: a runtime left running keeps its timers
      // and the test process alive.
      let before: Runtime | null = null;
      try {
        assert.equal(await createLegacyStore(admin, schema), 11);
        // A runtime of today's TypeScript on the old procedures (same public signatures).
        const old = new ProcedureProvider(admin, schema, 'postgres');
        before = new durox.Runtime(old, { dispatcherPollIntervalMs: 20, logLevel: 'error' });
        register(before);
        await before.start();
        // The Client on a provider object of its own: the old layout has no start_orchestration_claimed,
        // so it must not start eagerly into the runtime above (it enqueues as the old one did).
        const client = new durox.Client(new ProcedureProvider(admin, schema, 'postgres'));
        await client.startOrchestration('done', 'Done', 'd');
        await client.startOrchestration('loop', 'Looper', 0);
        await client.startOrchestration('parent', 'Parent', null);
        await client.startOrchestration('sleeper', 'Sleeper', null);
        await client.startOrchestration('sess', 'Sessioned', null);
        assert.equal((await client.waitForOrchestration('done', 10_000)).status, 'Completed');
        const rows = async (sql: string): Promise<number> => Number((await admin.query(sql))[0].n);
        await waitFor(
          'the loop to reach its third execution',
          async () => (await rows(`SELECT count(*) AS n FROM "${schema}".executions WHERE instance_id = 'loop'`)) === 3,
        );
        await waitFor(
          'the child to start',
          async () =>
            (await rows(`SELECT count(*) AS n FROM "${schema}".instances WHERE instance_id = 'parent-child'`)) === 1,
        );
        await waitFor(
          'the timer to be queued',
          async () =>
            (await rows(
              `SELECT count(*) AS n FROM "${schema}".orchestrator_queue WHERE instance_id = ` +
                `'sleeper' AND kind = 'TimerFired'`,
            )) === 1,
        );
        await waitFor(
          'the session to exist',
          async () => (await rows(`SELECT count(*) AS n FROM "${schema}".sessions`)) === 1,
        );
        await waitFor(
          'the waiting instances to be idle',
          async () => (await rows(`SELECT count(*) AS n FROM "${schema}".instance_locks`)) === 0,
        );
        await before.shutdown(100);
        before = null;

        await applyMigrations(admin, schema);
        const versions = await admin.query(`SELECT version, name FROM "${schema}".schema_migrations`);
        assert.deepEqual(
          versions.map((row) => [Number(row.version), row.name]),
          // The baseline's row, then the migrations of this layout added after it.
          loadMigrations().map((m) => [m.version, m.name]),
        );
        await applyMigrations(admin, fresh);
        assert.equal(
          await dumpSchema(admin, schema),
          await dumpSchema(admin, fresh),
          'the upgraded schema equals a fresh one',
        );
        const leftovers = await admin.query(
          `SELECT proname FROM pg_proc WHERE pronamespace = $1::regnamespace
           AND proname IN ('commit_orchestration_turn', 'release_orchestration_item', 'insert_orchestrator_message',
                           'finish_work_item', 'remove_instances', 'rename_function_once', 'current_time_ms', 'wall_clock_ms')`,
          [schema],
        );
        assert.deepEqual(leftovers, [], 'the renamed bodies are gone');

        // Jump past the timer and the old runtime's session lease, then finish everything.
        await admin.query(`SELECT "${schema}".set_test_clock_offset(600000)`);
        const provider = await durox.PostgresProvider.connectWithSchema(DATABASE_URL, schema);
        const after: Runtime = new durox.Runtime(provider, { dispatcherPollIntervalMs: 20, logLevel: 'error' });
        register(after);
        await after.start();
        try {
          const client2 = new durox.Client(provider);
          await client2.raiseEvent('loop', 'go', 'now');
          await client2.raiseEvent('parent-child', 'go', 'now');
          await client2.raiseEvent('sess', 'go', 'two');
          const expected: Record<string, string> = {
            done: 'd@none',
            loop: 'looped 2 now',
            parent: 'parent of child now',
            'parent-child': 'child now',
            sleeper: 'slept',
            sess: 'one@sess-1 two@sess-1',
          };
          for (const [id, output] of Object.entries(expected)) {
            const status = await client2.waitForOrchestration(id, 20_000);
            assert.equal(status.status, 'Completed', `${id} completed`);
            assert.equal(status.output, output, `${id} output`);
          }
          assert.equal(await client2.getValue('done', 'done'), 'd');
          assert.equal(await client2.getValue('sleeper', 'woke'), 'yes');
          assert.equal(await client2.getValue('loop', 'loop-2'), '3');
          const executions = await admin.query(
            `SELECT status FROM "${schema}".executions WHERE instance_id = 'loop' ORDER BY execution_id`,
          );
          assert.deepEqual(
            executions.map((row) => row.status),
            ['ContinuedAsNew', 'ContinuedAsNew', 'Completed'],
          );
        } finally {
          await after.shutdown(100);
          await provider.close();
        }
      } finally {
        await before?.shutdown(100);
        await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await admin.query(`DROP SCHEMA IF EXISTS "${fresh}" CASCADE`);
        await admin.close();
      }
    },
  );

  it('refuses a store of the earlier layout too old to upgrade in place, changing nothing', async () => {
    const schema = uniqueSchemaName('legacy_old');
    const admin = PgExecutor.fromUrl(DATABASE_URL, 2);
    try {
      await createLegacyStore(admin, schema, 8);
      await assert.rejects(applyMigrations(admin, schema), /is at migration 8 of the earlier layout/);
      const versions = await admin.query(`SELECT max(version) AS v FROM "${schema}".schema_migrations`);
      assert.equal(Number(versions[0].v), 8);
    } finally {
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await admin.close();
    }
  });

  it('upgrades an embedded (PGlite) store of the earlier layout at version 10 the same way', async () => {
    const executor = new PGliteExecutor(await createPGlite());
    try {
      assert.equal(await createLegacyStore(executor, 'durox', 10), 10);
      const old = new ProcedureProvider(executor, 'durox', 'pglite');
      await old.enqueueOrchestratorWork(startItem('queued-before'));
      await applyMigrations(executor, 'durox');
      await applyMigrations(executor, 'fresh');
      assert.equal(await dumpSchema(executor, 'durox'), await dumpSchema(executor, 'fresh'));
      const provider = new ProcedureProvider(executor, 'durox', 'pglite');
      assert.equal((await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS }))?.instanceId, 'queued-before');
    } finally {
      await executor.close();
    }
  });
});
