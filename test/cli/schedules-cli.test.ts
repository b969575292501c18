/**
 * `durox schedules ...`: the real bin in a child process against a real PostgreSQL schema with a
 * running Runtime (which takes the schedules' turns), checking exit codes, --json and tables.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Client } from '../../src/client/client';
import { PostgresProvider } from '../../src/postgres';
import { Runtime } from '../../src/runtime/runtime';
import type { ScheduleInfo } from '../../src/schedules/model';
import { dropTestSchema } from '../helpers/postgres-harness';
import { until } from '../helpers/sleep';
import { durox } from './run-cli';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/test';

describe('durox schedules', () => {
  const schema = `cli_sched_${randomBytes(4).toString('hex')}`;
  let provider: PostgresProvider;
  let runtime: Runtime;
  let client: Client;
  let s: string[];
  before(async () => {
    provider = await PostgresProvider.connectWithSchema(DATABASE_URL, schema);
    client = new Client(provider);
    runtime = new Runtime(provider, { logLevel: 'error' });
    runtime.registerOrchestration('Report', function* (_ctx, input: unknown) {
      return input;
    });
    await runtime.start();
    s = ['--schema', schema];
  });
  after(async () => {
    await runtime.shutdown(0);
    await provider.close();
    await dropTestSchema(schema);
  });

  const listed = async (): Promise<ScheduleInfo[]> => {
    const run = await durox([...s, '--json', 'schedules', 'list']);
    assert.equal(run.code, 0, run.stderr);
    return JSON.parse(run.stdout) as ScheduleInfo[];
  };

  it('create, list, pause, resume, trigger and delete a schedule', async () => {
    const created = await durox([
      ...s,
      'schedules',
      'create',
      'nightly',
      '--cron',
      '0 2 * * *',
      '--timezone',
      'Europe/Berlin',
      '--orchestration',
      'Report',
      '--overlap',
      'skip',
      '--input',
      '{"kind":"daily"}',
    ]);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /created schedule nightly/);

    const first = await until('the schedule to publish', async () =>
      (await listed()).find((x) => x.scheduleId === 'nightly'),
    );
    assert.deepEqual(
      [first.spec.cron, first.spec.timezone, first.spec.overlap, first.spec.catchUp, first.spec.input],
      ['0 2 * * *', 'Europe/Berlin', 'skip', 'one', { kind: 'daily' }],
    );
    // 02:00 in Berlin is 01:00 or 00:00 UTC depending on daylight saving time.
    assert.ok(
      first.nextFireAtMs !== null && [0, 1].includes(new Date(first.nextFireAtMs).getUTCHours()),
      String(first.nextFireAtMs),
    );

    const table = await durox([...s, 'schedules', 'list']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^SCHEDULE\s+CRON\s+ORCHESTRATION\s+STATE\s+NEXT FIRE/);
    assert.match(table.stdout, /nightly\s+0 2 \* \* \* \(Europe\/Berlin\)\s+Report\s+active\s+\d{4}-/);

    assert.equal((await durox([...s, 'schedules', 'pause', 'nightly'])).code, 0);
    await until('paused', async () => ((await listed())[0].paused ? true : undefined));
    assert.match((await durox([...s, 'schedules', 'list'])).stdout, /nightly.*paused/);

    const trigger = await durox([...s, '--json', 'schedules', 'trigger', 'nightly']);
    assert.deepEqual(JSON.parse(trigger.stdout), { scheduleId: 'nightly', triggered: true });
    const triggered = await until('the triggered run', async () => {
      const schedule = (await listed())[0];
      return schedule.counts.triggered === 1 ? schedule : undefined;
    });
    assert.match(triggered.lastRun?.instanceId ?? '', /^nightly@\d{4}-\d{2}-\d{2}T/);
    const run = await client.waitForOrchestration(triggered.lastRun?.instanceId as string, 20_000);
    assert.deepEqual(run.output, { kind: 'daily' });

    assert.equal((await durox([...s, 'schedules', 'resume', 'nightly'])).code, 0);
    await until('resumed', async () => (!(await listed())[0].paused ? true : undefined));

    assert.equal((await durox([...s, 'schedules', 'delete', 'nightly'])).code, 0);
    assert.deepEqual(await listed(), []);
  });

  it('bad input exits 2, a duplicate 4, an unknown schedule 3, each with the reason', async () => {
    const badCron = await durox([
      ...s,
      'schedules',
      'create',
      'x',
      '--cron',
      '* * *',
      '--orchestration',
      'Report',
      '--overlap',
      'skip',
    ]);
    assert.equal(badCron.code, 2);
    assert.match(badCron.stderr, /createSchedule \(schedule 'x'\): cron must be 5 fields/);
    const badZone = await durox([
      ...s,
      'schedules',
      'create',
      'x',
      '--cron',
      '0 * * * *',
      '--timezone',
      'Nowhere/Land',
      '--orchestration',
      'Report',
      '--overlap',
      'skip',
    ]);
    assert.equal(badZone.code, 2);
    assert.match(badZone.stderr, /unknown timezone "Nowhere\/Land"/);
    const badPolicy = await durox([
      ...s,
      'schedules',
      'create',
      'x',
      '--cron',
      '0 * * * *',
      '--orchestration',
      'Report',
      '--overlap',
      'never',
    ]);
    assert.equal(badPolicy.code, 2);
    assert.match(badPolicy.stderr, /overlap must be one of/);
    const missing = await durox([...s, 'schedules', 'create', 'x', '--cron', '0 * * * *', '--orchestration', 'Report']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--overlap/);

    const createOnce = (): ReturnType<typeof durox> =>
      durox([
        ...s,
        'schedules',
        'create',
        'once',
        '--cron',
        '0 * * * *',
        '--orchestration',
        'Report',
        '--overlap',
        'allow',
      ]);
    assert.equal((await createOnce()).code, 0);
    await until('published', async () => ((await listed()).length === 1 ? true : undefined));
    const duplicate = await createOnce();
    assert.equal(duplicate.code, 4);
    assert.match(duplicate.stderr, /already exists/);
    for (const command of ['pause', 'resume', 'trigger', 'delete']) {
      const unknown = await durox([...s, 'schedules', command, 'ghost']);
      assert.equal(unknown.code, 3, `${command}: ${unknown.stderr}`);
      assert.match(unknown.stderr, /schedule 'ghost'.*no schedule with this id/);
    }
    assert.equal((await durox([...s, 'schedules', 'delete', 'once'])).code, 0);
  });
});
