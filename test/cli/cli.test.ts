/**
 * The durox CLI as scripts use it: the real bin (dist/src/bin/durox.js) in a child process against a
 * real PostgreSQL schema, checking exit codes, --json documents and what changed in the store.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client as PgClient } from 'pg';
import { createOperatorsFixture, DATABASE_URL, HOSTILE, type OperatorsFixture } from '../dashboard/fixture';
import { BIN, durox } from './run-cli';

describe('durox CLI', () => {
  let f: OperatorsFixture;
  let s: string[];
  before(async () => {
    f = await createOperatorsFixture('cli');
    s = ['--schema', f.schema];
  });
  after(async () => f.close());

  it('list --json pages through every instance with the cursor and filters by status and name', async () => {
    const first = await durox([...s, '--json', 'list', '--limit', '2']);
    assert.equal(first.code, 0, first.stderr);
    const page1 = JSON.parse(first.stdout) as { items: Array<{ instanceId: string }>; nextCursor: string | null };
    assert.equal(page1.items.length, 2);
    assert.ok(page1.nextCursor !== null);
    const seen = new Set(page1.items.map((i) => i.instanceId));
    let cursor: string | null = page1.nextCursor;
    while (cursor !== null) {
      const next = JSON.parse((await durox([...s, '--json', 'list', '--limit', '2', '--cursor', cursor])).stdout);
      for (const item of next.items) {
        assert.ok(!seen.has(item.instanceId), `duplicate ${item.instanceId}`);
        seen.add(item.instanceId);
      }
      cursor = next.nextCursor;
    }
    assert.deepEqual([...seen].sort(), Object.values(f.ids).sort());

    const failed = JSON.parse((await durox([...s, '--json', 'list', '--status', 'failed'])).stdout);
    assert.deepEqual(
      failed.items.map((i: { instanceId: string }) => i.instanceId).sort(),
      [f.ids.failed, f.ids.hostile].sort(),
    );
    assert.match(failed.items[0].error, /exploded|<script>/);
    const hello = JSON.parse((await durox([...s, '--json', 'list', '--name', 'Hello'])).stdout);
    assert.deepEqual(
      hello.items.map((i: { instanceId: string }) => i.instanceId).sort(),
      [f.ids.completed, f.ids.child].sort(),
    );
    const future = JSON.parse((await durox([...s, '--json', 'list', '--since', '2999-01-01'])).stdout);
    assert.deepEqual(future.items, []);
  });

  it('list shows each instance priority level (a child inherits its parent level)', async () => {
    const listed = JSON.parse((await durox([...s, '--json', 'list'])).stdout) as {
      items: Array<{ instanceId: string; priority: number }>;
    };
    const levels = new Map(listed.items.map((i) => [i.instanceId, i.priority]));
    assert.equal(levels.get(f.ids.parent), 3);
    assert.equal(levels.get(f.ids.child), 3);
    assert.equal(levels.get(f.ids.completed), 0);
    const table = await durox([...s, 'list', '--name', 'Parent']);
    assert.equal(table.code, 0, table.stderr);
    const [header, row] = table.stdout.split('\n');
    assert.equal(row.slice(header.indexOf('PRIORITY')).split(/\s+/)[0], '3');
  });

  it('list prints a table without colours when stdout is not a terminal', async () => {
    const run = await durox([...s, 'list', '--status', 'Completed']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^INSTANCE\s+ORCHESTRATION\s+VERSION\s+STATUS\s+PRIORITY\s+EXEC/);
    assert.ok(run.stdout.includes(f.ids.completed));
    assert.ok(!run.stdout.includes('\u001b['), 'no ANSI escapes in piped output');
  });

  it('malformed filters and absurd page sizes exit 2 with a message naming the option', async () => {
    for (const [args, pattern] of [
      [['list', '--limit', '100000'], /--limit must be between 1 and 1000/],
      [['list', '--limit', 'ten'], /--limit must be an integer/],
      [['list', '--status', 'Sleeping'], /--status must be one of/],
      [['list', '--since', 'yesterday'], /--since must be an ISO date/],
      [['list', '--cursor', 'not-a-cursor'], /cursor must be a nextCursor/],
      [['start', 'Hello', '--input', '{bad'], /--input must be valid JSON/],
      [['frobnicate'], /unknown command/],
    ] as Array<[string[], RegExp]>) {
      const run = await durox([...s, ...args]);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, pattern);
      assert.equal(run.stdout, '');
    }
  });

  it('show and history report status, input, output, error, custom status and the timeline', async () => {
    const shown = JSON.parse((await durox([...s, '--json', 'show', f.ids.completed])).stdout);
    assert.equal(shown.status.status, 'Completed');
    assert.equal(shown.input, '{"name":"Ada"}');
    assert.equal(shown.status.output, '{"greeting":"hello Ada"}');
    assert.equal(shown.status.customStatus, 'greeted Ada');
    assert.equal(shown.executions.length, 1);

    const failed = await durox([...s, 'show', f.ids.failed]);
    assert.equal(failed.code, 0, failed.stderr);
    assert.match(failed.stdout, /status:\s+Failed/);
    assert.ok(failed.stdout.includes(`exploded ${HOSTILE}`));

    const parent = JSON.parse((await durox([...s, '--json', 'show', f.ids.parent])).stdout);
    assert.deepEqual(parent.children, [f.ids.child]);
    assert.equal(parent.info.priority, 3, 'the priority level the parent was started with');
    assert.match((await durox([...s, 'show', f.ids.child])).stdout, /priority:\s+3/, 'inherited by the child');
    assert.doesNotMatch(failed.stdout, /priority/, 'the default level is not shown');

    const history = await durox([...s, 'history', f.ids.completed]);
    assert.equal(history.code, 0, history.stderr);
    const lines = history.stdout.trim().split('\n');
    assert.match(lines[0], new RegExp(`${f.ids.completed} execution 1`));
    assert.match(lines[1], /#1\s+OrchestrationStarted Hello/);
    assert.ok(lines.some((l) => /ActivityScheduled Echo\("Ada"\)/.test(l)));
    assert.match(lines[lines.length - 1], /OrchestrationCompleted/);
    const json = JSON.parse((await durox([...s, '--json', 'history', f.ids.completed])).stdout);
    assert.equal(json.executionId, 1);
    assert.equal(json.events[0].kind, 'OrchestrationStarted');
  });

  it('unknown ids exit 3 and change nothing', async () => {
    const before = JSON.parse((await durox([...s, '--json', 'metrics'])).stdout);
    for (const args of [
      ['show', 'no-such'],
      ['history', 'no-such'],
      ['cancel', 'no-such'],
      ['raise', 'no-such', 'go'],
      ['delete', 'no-such'],
      ['history', f.ids.completed, '--execution', '9'],
    ]) {
      const run = await durox([...s, ...args]);
      assert.equal(run.code, 3, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, /not found/);
    }
    const afterwards = JSON.parse((await durox([...s, '--json', 'metrics'])).stdout);
    assert.deepEqual(afterwards, before);
  });

  it('start, raise and cancel drive instances; delete refuses a running instance with exit 4', async () => {
    const started = JSON.parse((await durox([...s, '--json', 'start', 'Waiter', '--id', 'cli-started'])).stdout);
    assert.equal(started.instanceId, 'cli-started');
    const again = await durox([...s, 'start', 'Waiter', '--id', 'cli-started']);
    assert.equal(again.code, 4);
    const status = await f.client.waitForStatusChange('cli-started', 0, 20, 10_000);
    assert.equal(status.customStatus, 'waiting for go');

    const raised = await durox([...s, 'raise', 'cli-started', 'go', '--data', '{"ok":true}']);
    assert.equal(raised.code, 0, raised.stderr);
    const done = await f.client.waitForOrchestration('cli-started', 10_000);
    assert.deepEqual(done.output, { ok: true });

    const waiter = await f.startWaiter('cli-cancel');
    const refused = await durox([...s, 'delete', waiter]);
    assert.equal(refused.code, 4, refused.stderr);
    assert.match(refused.stderr, /still running/);
    const cancelled = await durox([...s, 'cancel', waiter, '--reason', 'operator']);
    assert.equal(cancelled.code, 0, cancelled.stderr);
    const failed = await f.client.waitForOrchestration(waiter, 10_000);
    assert.equal(failed.status, 'Failed');
    assert.match(failed.error ?? '', /canceled: operator/);

    const deleted = JSON.parse((await durox([...s, '--json', 'delete', waiter])).stdout);
    assert.equal(deleted.instancesDeleted, 1);
    assert.equal((await f.client.getStatus(waiter)).status, 'NotFound');
  });

  it('metrics and prune work and bulk delete needs a filter', async () => {
    const metrics = JSON.parse((await durox([...s, '--json', 'metrics'])).stdout);
    assert.ok(metrics.system.totalInstances >= 5);
    assert.equal(typeof metrics.queues.workerQueue, 'number');
    const pruned = JSON.parse((await durox([...s, '--json', 'prune', f.ids.completed, '--keep-last', '1'])).stdout);
    assert.deepEqual(pruned, { instancesProcessed: 1, executionsDeleted: 0, eventsDeleted: 0 });
    const noFilter = await durox([...s, 'delete']);
    assert.equal(noFilter.code, 2);
    const both = await durox([...s, 'prune']);
    assert.equal(both.code, 2);
  });

  it('connection problems: no store exits 2, an unreachable server or bad schema name exits 5 or 2', async () => {
    const none = await durox(['list'], { DUROX_DATABASE_URL: '' });
    assert.equal(none.code, 2);
    assert.match(none.stderr, /--database/);
    const badSchema = await durox(['--schema', 'Robert"); DROP', 'list']);
    assert.equal(badSchema.code, 2);
    const down = await durox(['--database', 'postgres://nobody@127.0.0.1:1/none', 'list']);
    assert.equal(down.code, 5, down.stderr);
  });

  it('read-only commands on a store that does not exist exit 3 and create nothing; migrate creates it', async () => {
    const schema = `cli_typo_${process.pid}`;
    const pg = new PgClient({ connectionString: DATABASE_URL });
    await pg.connect();
    const schemaExists = async () =>
      (await pg.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).rowCount === 1;
    const dir = join(mkdtempSync(join(tmpdir(), 'durox-cli-')), 'typo-dir');
    try {
      for (const command of [['list'], ['show', 'x'], ['history', 'x'], ['metrics']]) {
        const run = await durox(['--schema', schema, ...command]);
        assert.equal(run.code, 3, `${command.join(' ')}: ${run.stderr}`);
        assert.match(run.stderr, new RegExp(`no Durox store at .*schema ${schema}`));
      }
      assert.equal(await schemaExists(), false);
      const embedded = await durox(['--data-dir', dir, 'list']);
      assert.equal(embedded.code, 3, embedded.stderr);
      assert.match(embedded.stderr, /no Durox store at .*typo-dir.*durox --data-dir .* migrate/);
      assert.equal(existsSync(dir), false);
      const init = await durox(['--schema', schema, 'init']);
      assert.equal(init.code, 0, init.stderr);
      const listed = await durox(['--schema', schema, '--json', 'list']);
      assert.equal(listed.code, 0, listed.stderr);
    } finally {
      await pg.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await pg.end();
      rmSync(join(dir, '..'), { recursive: true, force: true });
    }
  });

  it('reads the database URL from DATABASE_URL, with DUROX_DATABASE_URL as an alias', async () => {
    const primary = await durox([...s, '--json', 'metrics'], { DUROX_DATABASE_URL: '', DATABASE_URL });
    assert.equal(primary.code, 0, primary.stderr);
    const alias = await durox([...s, '--json', 'metrics'], { DUROX_DATABASE_URL: DATABASE_URL });
    assert.equal(alias.code, 0, alias.stderr);
    const version = await durox(['--version']);
    assert.match(version.stdout, /^\d+\.\d+\.\d+/);
  });

  it('reports failures as JSON on stderr under --json', async () => {
    const run = await durox([...s, '--json', 'show', 'no-such']);
    assert.equal(run.code, 3);
    assert.equal(run.stdout, '');
    assert.deepEqual(JSON.parse(run.stderr), { error: 'Instance no-such not found', exitCode: 3 });
  });

  it('dashboard serves until SIGTERM and exits 0', async () => {
    const child = spawn(process.execPath, [BIN, ...s, '--json', 'dashboard', '--port', '0', '--read-only'], {
      env: { PATH: process.env.PATH, DUROX_DATABASE_URL: DATABASE_URL },
    });
    try {
      const started = await new Promise<{ url: string; readOnly: boolean }>((resolve, reject) => {
        let buffered = '';
        child.stdout.on('data', (chunk: Buffer) => {
          buffered += chunk.toString('utf8');
          try {
            resolve(JSON.parse(buffered));
          } catch {
            // The JSON document is not complete yet.
          }
        });
        child.once('exit', (code) => reject(new Error(`dashboard exited early with ${code}`)));
      });
      assert.match(started.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(started.readOnly, true);
      assert.equal((await fetch(`${started.url}/healthz`)).status, 200);
      assert.match(
        await (await fetch(`${started.url}/metrics`)).text(),
        /durox_instances\{status="completed"\} [1-9]\d*/,
      );
    } finally {
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    }
  });

  it('dashboard on 0.0.0.0 without a token warns and shows the real address', async () => {
    const child = spawn(process.execPath, [BIN, ...s, 'dashboard', '--host', '0.0.0.0', '--port', '0', '--read-only'], {
      env: { PATH: process.env.PATH, DUROX_DATABASE_URL: DATABASE_URL },
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    try {
      const banner = await new Promise<string>((resolve, reject) => {
        let buffered = '';
        child.stdout.on('data', (chunk: Buffer) => {
          buffered += chunk.toString('utf8');
          if (buffered.includes('\n')) resolve(buffered);
        });
        child.once('exit', (code) => reject(new Error(`dashboard exited early with ${code}`)));
      });
      assert.match(banner, /listening on http:\/\/0\.0\.0\.0:\d+ \(from this machine: http:\/\/127\.0\.0\.1:\d+\)/);
      assert.match(
        stderr,
        /WARNING: the dashboard listens on http:\/\/0\.0\.0\.0:\d+, beyond this machine, without a token/,
      );
    } finally {
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      assert.equal(await exited, 0, `the dashboard stops cleanly on SIGTERM; its stderr: ${stderr}`);
    }
  });

  it('works on an embedded data directory with --data-dir', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'durox-cli-'));
    try {
      const migrated = await durox(['--data-dir', dir, '--json', 'migrate']);
      assert.equal(migrated.code, 0, migrated.stderr);
      assert.ok(JSON.parse(migrated.stdout).schemaVersion >= 6);
      const listed = JSON.parse((await durox(['--data-dir', dir, '--json', 'list'])).stdout);
      assert.deepEqual(listed, { items: [], nextCursor: null });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
