/**
 * Schedule behaviour on both stores, driven by the test clock (hourly crons, the clock moved an
 * hour or more at a time): catch-up after downtime per policy, each overlap policy,
 * pause/resume/trigger, update, delete, and the errors of bad input.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { OrchestrationContext } from '../../src/core/orchestration-context';
import type { Runtime } from '../../src/runtime/runtime';
import { ScheduleError } from '../../src/schedules/errors';
import { runInstanceId, scheduleInstanceId, type ScheduleInfo } from '../../src/schedules/model';
import {
  alignToHour,
  eventually,
  HOUR_MS,
  openScheduleStore,
  runsOf,
  scheduleWhen,
  STORE_KINDS,
  type ScheduleStore,
} from './stores';

const kinds = STORE_KINDS.filter((k) => (process.env.DUROX_SCHEDULE_STORES ?? k).split(',').includes(k));

function registerTargets(runtime: Runtime): void {
  runtime.registerOrchestration('Tick', function* (_ctx: OrchestrationContext, input: unknown) {
    return input;
  });
  // Runs until released: keeps a run "still running" for the overlap policies.
  runtime.registerOrchestration('Hold', function* (ctx: OrchestrationContext) {
    return yield ctx.waitForEvent('release');
  });
}

async function statusOf(store: ScheduleStore, instanceId: string): Promise<string> {
  return (await store.client.getStatus(instanceId)).status;
}

for (const kind of kinds) {
  describe(`schedules on ${kind}`, () => {
    let store: ScheduleStore;
    before(async () => {
      store = await openScheduleStore(kind);
    });
    after(async () => {
      await store.close();
    });

    it('catches up after downtime per policy: all fires each, one fires the latest, none skips them', async () => {
      const runtime = await store.startRuntime(registerTargets);
      const aligned = await alignToHour(store);
      let offsetMs = aligned.offsetMs;
      const hourMs = aligned.hourMs;
      const { client } = store;
      for (const catchUp of ['all', 'one', 'none'] as const) {
        await client.createSchedule(`catch-${catchUp}`, {
          cron: '0 * * * *',
          orchestration: 'Tick',
          overlap: 'allow',
          catchUp,
        });
      }
      for (const catchUp of ['all', 'one', 'none'])
        await scheduleWhen(store, `catch-${catchUp}`, 'published', () => true);
      await runtime.shutdown(0);

      // Down for 5.5 hours: fires at +1h..+5h are missed, the latest by 30 minutes.
      offsetMs += 5 * HOUR_MS + 30 * 60_000;
      await store.setClockOffset(offsetMs);
      await store.startRuntime(registerTargets);
      const advanced = await store.nowMs();
      const caughtUp = (s: ScheduleInfo): boolean =>
        s.updatedAtMs >= advanced - 1000 && s.nextFireAtMs === hourMs + 6 * HOUR_MS;
      const all = await scheduleWhen(store, 'catch-all', 'caught up', caughtUp);
      const one = await scheduleWhen(store, 'catch-one', 'caught up', caughtUp);
      const none = await scheduleWhen(store, 'catch-none', 'caught up', caughtUp);

      const hours = [1, 2, 3, 4, 5].map((h) => hourMs + h * HOUR_MS);
      assert.deepEqual([all.counts.started, all.counts.missed], [5, 0]);
      assert.deepEqual([one.counts.started, one.counts.missed], [1, 4]);
      assert.deepEqual([none.counts.started, none.counts.missed], [0, 5]);
      await eventually('catch-up runs', async () =>
        (await runsOf(client, 'catch-all')).length === 5 && (await runsOf(client, 'catch-one')).length === 1
          ? true
          : undefined,
      );
      assert.deepEqual(await runsOf(client, 'catch-all'), hours.map((h) => runInstanceId('catch-all', h)).sort());
      assert.deepEqual(await runsOf(client, 'catch-one'), [runInstanceId('catch-one', hours[4])]);
      assert.deepEqual(await runsOf(client, 'catch-none'), []);

      // Back to normal: the next hour fires for every policy (the clock lands on it, within the
      // lateness tolerance that 'none' allows).
      offsetMs += 29 * 60_000;
      await store.setClockOffset(offsetMs);
      for (const [catchUp, before] of [
        ['all', 5],
        ['one', 1],
        ['none', 0],
      ] as const) {
        await scheduleWhen(store, `catch-${catchUp}`, 'fired on time', (s) => s.counts.started === before + 1);
      }
      for (const catchUp of ['all', 'one', 'none']) await client.deleteSchedule(`catch-${catchUp}`);
      await runtime.shutdown(0);
    });

    it('applies each overlap policy when the previous run is still running', async () => {
      await store.startRuntime(registerTargets);
      const aligned = await alignToHour(store);
      let offsetMs = aligned.offsetMs;
      const hourMs = aligned.hourMs;
      const { client } = store;
      const policies = ['skip', 'allow', 'cancelPrevious'] as const;
      for (const overlap of policies) {
        await client.createSchedule(`hold-${overlap}`, { cron: '0 * * * *', orchestration: 'Hold', overlap });
      }
      for (const overlap of policies) await scheduleWhen(store, `hold-${overlap}`, 'published', () => true);
      const run = (overlap: string, hour: number): string => runInstanceId(`hold-${overlap}`, hourMs + hour * HOUR_MS);

      offsetMs += HOUR_MS;
      await store.setClockOffset(offsetMs);
      for (const overlap of policies) {
        await eventually(`first run of ${overlap} running`, async () =>
          (await statusOf(store, run(overlap, 1))) === 'Running' ? true : undefined,
        );
      }

      offsetMs += HOUR_MS;
      await store.setClockOffset(offsetMs);
      const skip = await scheduleWhen(
        store,
        'hold-skip',
        'second fire handled',
        (s) => s.counts.skippedOverlap + s.counts.started >= 2,
      );
      const allow = await scheduleWhen(store, 'hold-allow', 'second fire handled', (s) => s.counts.started >= 2);
      const cancel = await scheduleWhen(
        store,
        'hold-cancelPrevious',
        'second fire handled',
        (s) => s.counts.started >= 2,
      );
      assert.deepEqual(
        [skip.counts.started, skip.counts.skippedOverlap],
        [1, 1],
        'skip: no second run while the first runs',
      );
      assert.deepEqual([allow.counts.started, allow.counts.skippedOverlap, allow.counts.cancelledPrevious], [2, 0, 0]);
      assert.deepEqual([cancel.counts.started, cancel.counts.cancelledPrevious], [2, 1]);
      await eventually('allow: both runs running', async () =>
        (await statusOf(store, run('allow', 2))) === 'Running' ? true : undefined,
      );
      assert.equal(await statusOf(store, run('allow', 1)), 'Running');
      await eventually('cancelPrevious: first run cancelled', async () =>
        (await statusOf(store, run('cancelPrevious', 1))) === 'Failed' ? true : undefined,
      );
      assert.match((await client.getStatus(run('cancelPrevious', 1))).error ?? '', /cancel/i);
      await eventually('cancelPrevious: second run running', async () =>
        (await statusOf(store, run('cancelPrevious', 2))) === 'Running' ? true : undefined,
      );
      assert.deepEqual(await runsOf(client, 'hold-skip'), [run('skip', 1)]);

      // Once the first run of 'skip' has finished, the next fire starts again.
      await client.raiseEvent(run('skip', 1), 'release', 'done');
      await eventually('skip: first run completed', async () =>
        (await statusOf(store, run('skip', 1))) === 'Completed' ? true : undefined,
      );
      offsetMs += HOUR_MS;
      await store.setClockOffset(offsetMs);
      const skipAgain = await scheduleWhen(store, 'hold-skip', 'third fire handled', (s) => s.counts.started === 2);
      assert.equal(skipAgain.counts.skippedOverlap, 1);
      assert.equal(skipAgain.lastRun?.instanceId, run('skip', 3));
      for (const overlap of policies) await client.deleteSchedule(`hold-${overlap}`);
    });

    it('pauses, triggers while paused, resumes, updates and deletes', async () => {
      await store.startRuntime(registerTargets);
      const aligned = await alignToHour(store);
      let offsetMs = aligned.offsetMs;
      const hourMs = aligned.hourMs;
      const { client } = store;
      await client.createSchedule('pausable', {
        cron: '0 * * * *',
        orchestration: 'Tick',
        input: { n: 1 },
        overlap: 'skip',
        catchUp: 'all',
      });
      await scheduleWhen(store, 'pausable', 'published', (s) => s.nextFireAtMs === hourMs + HOUR_MS);

      await client.pauseSchedule('pausable');
      await scheduleWhen(store, 'pausable', 'paused', (s) => s.paused && s.nextFireAtMs === null);
      offsetMs += 2 * HOUR_MS;
      await store.setClockOffset(offsetMs);
      await client.triggerSchedule('pausable');
      const triggered = await scheduleWhen(store, 'pausable', 'triggered', (s) => s.counts.triggered === 1);
      // The trigger's turn came after the clock passed two fire times: while paused they did not fire.
      assert.deepEqual([triggered.counts.started, triggered.paused], [1, true]);
      const triggeredRun = triggered.lastRun?.instanceId as string;
      assert.ok(triggeredRun.startsWith('pausable@'));

      await client.resumeSchedule('pausable');
      const resumed = await scheduleWhen(store, 'pausable', 'resumed', (s) => !s.paused);
      assert.equal(resumed.nextFireAtMs, hourMs + 3 * HOUR_MS, 'fires missed during the pause are not caught up');
      offsetMs += HOUR_MS;
      await store.setClockOffset(offsetMs);
      await scheduleWhen(store, 'pausable', 'fired after resume', (s) => s.counts.started === 2);
      await eventually('both runs', async () => ((await runsOf(client, 'pausable')).length === 2 ? true : undefined));
      assert.deepEqual(
        await runsOf(client, 'pausable'),
        [triggeredRun, runInstanceId('pausable', hourMs + 3 * HOUR_MS)].sort(),
      );

      // Update: every 30 minutes from now on, another input.
      await client.updateSchedule('pausable', {
        cron: '30 * * * *',
        orchestration: 'Tick',
        input: { n: 2 },
        overlap: 'allow',
      });
      const updated = await scheduleWhen(store, 'pausable', 'updated', (s) => s.spec.cron === '30 * * * *');
      assert.equal(updated.nextFireAtMs, hourMs + 3 * HOUR_MS + 30 * 60_000);
      assert.deepEqual([updated.spec.overlap, updated.spec.catchUp, updated.spec.input], ['allow', 'one', { n: 2 }]);

      const got = await client.getSchedule('pausable');
      assert.equal(got.status, 'Running');
      await client.deleteSchedule('pausable');
      assert.ok(!(await client.listSchedules()).some((s) => s.scheduleId === 'pausable'));
      assert.equal((await client.getStatus(scheduleInstanceId('pausable'))).status, 'NotFound');
      assert.equal((await runsOf(client, 'pausable')).length, 2, 'runs outlive their schedule');
    });

    it('a fire whose run id already exists collapses into that run and the schedule goes on', async () => {
      await store.startRuntime(registerTargets);
      const aligned = await alignToHour(store);
      let offsetMs = aligned.offsetMs;
      const hourMs = aligned.hourMs;
      const { client } = store;
      await client.createSchedule('dup', {
        cron: '0 * * * *',
        orchestration: 'Tick',
        input: 'scheduled',
        overlap: 'allow',
      });
      await scheduleWhen(store, 'dup', 'published', () => true);
      const firstRun = runInstanceId('dup', hourMs + HOUR_MS);
      // The same id started beforehand (as a repeated fire would): the schedule's start is discarded.
      await client.startOrchestration(firstRun, 'Tick', 'started by hand');
      assert.equal((await client.waitForOrchestration(firstRun, 20_000)).output, 'started by hand');

      offsetMs += HOUR_MS;
      await store.setClockOffset(offsetMs);
      await scheduleWhen(store, 'dup', 'first fire handled', (s) => s.counts.started === 1);
      offsetMs += HOUR_MS;
      await store.setClockOffset(offsetMs);
      const after = await scheduleWhen(store, 'dup', 'second fire handled', (s) => s.counts.started === 2);
      assert.equal(after.status, 'Running', 'the schedule did not fail');
      const secondRun = runInstanceId('dup', hourMs + 2 * HOUR_MS);
      assert.equal((await client.waitForOrchestration(secondRun, 20_000)).output, 'scheduled');
      assert.equal(
        (await client.getStatus(firstRun)).output,
        '"started by hand"',
        'the first start of the id won (raw JSON output)',
      );
      assert.deepEqual(await runsOf(client, 'dup'), [firstRun, secondRun]);
      await client.deleteSchedule('dup');
    });

    it('refuses bad input with typed errors and writes nothing', async () => {
      const { client } = store;
      const refused = async (
        call: () => Promise<unknown>,
        code: string,
        operation: string,
        scheduleId: string | undefined,
        message: RegExp,
      ): Promise<void> => {
        await assert.rejects(call, (error: unknown) => {
          assert.ok(error instanceof ScheduleError, `a ScheduleError, got ${String(error)}`);
          assert.equal(error.code, code);
          assert.equal(error.operation, operation);
          assert.equal(error.scheduleId, scheduleId);
          assert.match(error.message, message);
          return true;
        });
      };
      const base = { orchestration: 'Tick', overlap: 'skip' } as const;
      await refused(
        () => client.createSchedule('bad', { ...base, cron: '* * *' }),
        'invalid_cron',
        'createSchedule',
        'bad',
        /5 fields .* or 6/,
      );
      await refused(
        () => client.createSchedule('bad', { ...base, cron: '0 0 * * * * *' }),
        'invalid_cron',
        'createSchedule',
        'bad',
        /5 fields/,
      );
      await refused(
        () => client.createSchedule('bad', { ...base, cron: '61 * * * *' }),
        'invalid_cron',
        'createSchedule',
        'bad',
        /minute/,
      );
      await refused(
        () => client.createSchedule('bad', { ...base, cron: '0 0 30 2 *' }),
        'invalid_cron',
        'createSchedule',
        'bad',
        /never|invalid cron/,
      );
      await refused(
        () => client.createSchedule('bad', { ...base, cron: '0 * * * *', timezone: 'Mars/Olympus_Mons' }),
        'unknown_timezone',
        'createSchedule',
        'bad',
        /Mars\/Olympus_Mons/,
      );
      await refused(
        () => client.createSchedule('bad', { ...base, cron: '0 * * * *', overlap: 'sometimes' as never }),
        'invalid_argument',
        'createSchedule',
        'bad',
        /overlap must be one of 'skip', 'allow', 'cancelPrevious'/,
      );
      await refused(
        () => client.createSchedule('bad', { ...base, cron: '0 * * * *', catchUp: 'most' as never }),
        'invalid_argument',
        'createSchedule',
        'bad',
        /catchUp/,
      );
      await refused(
        () => client.createSchedule('bad', { ...base, cron: '0 * * * *', version: 'latest' }),
        'invalid_argument',
        'createSchedule',
        'bad',
        /semver/,
      );
      await refused(
        () => client.createSchedule('bad', { ...base, cron: '0 * * * *', input: 10n }),
        'invalid_argument',
        'createSchedule',
        'bad',
        /JSON/,
      );
      await refused(
        () => client.createSchedule('bad', { ...base, cron: '0 * * * *', input: 'x'.repeat(70_000) }),
        'invalid_argument',
        'createSchedule',
        'bad',
        /at most 65536 bytes/,
      );
      await refused(
        () => client.createSchedule('a@b', { ...base, cron: '0 * * * *' }),
        'invalid_argument',
        'createSchedule',
        'a@b',
        /'@'/,
      );
      await refused(
        () => client.createSchedule('', { ...base, cron: '0 * * * *' }),
        'invalid_argument',
        'createSchedule',
        undefined,
        /non-empty/,
      );
      for (const [operation, call] of [
        ['pauseSchedule', () => client.pauseSchedule('ghost')],
        ['resumeSchedule', () => client.resumeSchedule('ghost')],
        ['triggerSchedule', () => client.triggerSchedule('ghost')],
        ['deleteSchedule', () => client.deleteSchedule('ghost')],
        ['getSchedule', () => client.getSchedule('ghost')],
        ['updateSchedule', () => client.updateSchedule('ghost', { ...base, cron: '0 * * * *' })],
      ] as const) {
        await refused(call, 'schedule_not_found', operation, 'ghost', /no schedule with this id/);
      }
      assert.equal((await client.getStatus(scheduleInstanceId('bad'))).status, 'NotFound', 'nothing was written');

      const runtime = await store.startRuntime(registerTargets);
      await client.createSchedule('twice', { ...base, cron: '0 * * * *' });
      await scheduleWhen(store, 'twice', 'published', () => true);
      await refused(
        () => client.createSchedule('twice', { ...base, cron: '*/5 * * * *' }),
        'duplicate_schedule',
        'createSchedule',
        'twice',
        /already exists/,
      );
      assert.equal((await client.getSchedule('twice')).spec.cron, '0 * * * *', 'the first definition stands');
      await client.deleteSchedule('twice');
      await runtime.shutdown(0);
    });
  });
}
