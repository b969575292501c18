/**
 * Exactly one run per cron fire: four runtimes race for the turns of one hourly schedule while
 * the test clock advances one hour per tick. Every tick must give exactly one start (the
 * schedule's history chains each fire time once), no fire time may be missing, and every run
 * must complete. DUROX_SCHEDULE_TICKS sets the tick count (default below; the 1,000 with
 * DUROX_SCHEDULE_TICKS=1000); DUROX_SCHEDULE_STORES=postgres or pglite runs one store only.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Runtime } from '../../src/runtime/runtime';
import { runInstanceId, scheduleInstanceId } from '../../src/schedules/model';
import { STEPS_PER_EXECUTION } from '../../src/schedules/schedule-orchestration';
import { alignToHour, eventually, HOUR_MS, openScheduleStore, runsOf, STORE_KINDS, type ScheduleStore } from './stores';

const TICKS = Number(process.env.DUROX_SCHEDULE_TICKS ?? 200);
const RUNTIMES = 4;
const kinds = STORE_KINDS.filter((k) => (process.env.DUROX_SCHEDULE_STORES ?? k).split(',').includes(k));

for (const kind of kinds) {
  describe(`schedule exactness on ${kind}`, () => {
    let store: ScheduleStore;
    const runtimes: Runtime[] = [];
    before(async () => {
      store = await openScheduleStore(kind);
    });
    after(async () => {
      await store.close();
    });

    it(
      `${RUNTIMES} runtimes and ${TICKS} ticks give exactly ${TICKS} starts, no duplicate, no gap`,
      { timeout: 30 * 60_000 },
      async () => {
        for (let i = 0; i < RUNTIMES; i++) {
          runtimes.push(
            await store.startRuntime((r) =>
              r.registerOrchestration('Tick', function* (_ctx, input: unknown) {
                return input;
              }),
            ),
          );
        }
        const aligned = await alignToHour(store);
        let offsetMs = aligned.offsetMs;
        const hourMs = aligned.hourMs;
        const { client } = store;
        await client.createSchedule('hourly', {
          cron: '0 * * * *',
          orchestration: 'Tick',
          input: 'tick',
          overlap: 'allow',
          catchUp: 'all',
        });
        const first = await eventually('the schedule to publish', async () => (await client.listSchedules())[0]);
        assert.equal(first.nextFireAtMs, hourMs + HOUR_MS);

        const started = Date.now();
        const tickMs: number[] = [];
        for (let tick = 1; tick <= TICKS; tick++) {
          const tickStart = Date.now();
          offsetMs += HOUR_MS;
          await store.setClockOffset(offsetMs);
          await eventually(
            `tick ${tick}`,
            async () => {
              const schedule = await client.getSchedule('hourly');
              assert.ok(schedule.counts.started <= tick, `tick ${tick}: ${schedule.counts.started} runs started`);
              return schedule.counts.started === tick ? schedule : undefined;
            },
            30_000,
            2,
          );
          tickMs.push(Date.now() - tickStart);
        }
        const tickPhaseMs = Date.now() - started;

        // A run's instance exists once its first turn ran: wait for all of them before listing.
        const completed = await eventually(
          'every run to complete',
          async () => {
            const done = (await client.listInstancesByStatus('Completed')).filter((id) => id.startsWith('hourly@'));
            return done.length >= TICKS ? done.length : undefined;
          },
          120_000,
          50,
        );

        const expected = Array.from({ length: TICKS }, (_, i) =>
          runInstanceId('hourly', hourMs + (i + 1) * HOUR_MS),
        ).sort();
        const runs = await runsOf(client, 'hourly');
        const missing = expected.filter((id) => !runs.includes(id));
        const unexpected = runs.filter((id) => !expected.includes(id));

        // Starts as the schedule recorded them: one OrchestrationChained per start, over every execution.
        const scheduleInstance = scheduleInstanceId('hourly');
        const executions = await client.listExecutions(scheduleInstance);
        const chained = new Map<string, number>();
        const reader = store.openProvider();
        for (const execution of executions) {
          for (const event of await reader.readHistory(scheduleInstance, execution)) {
            if (event.kind === 'OrchestrationChained')
              chained.set(event.instance, (chained.get(event.instance) ?? 0) + 1);
          }
        }
        const starts = [...chained.values()].reduce((a, b) => a + b, 0);
        const duplicates = [...chained.values()].filter((n) => n > 1).length;

        const sorted = [...tickMs].sort((a, b) => a - b);
        const turns = runtimes.map((r) => r.metricsSnapshot()?.orchStarts ?? 0);
        console.log(
          `schedule exactness (${kind}): ticks=${TICKS} runtimes=${RUNTIMES} starts=${starts} runs=${runs.length} ` +
            `duplicates=${duplicates} missing=${missing.length} unexpected=${unexpected.length} completed=${completed} ` +
            `executions=${executions.length} tickPhase=${tickPhaseMs}ms tick p50=${sorted[Math.floor(TICKS / 2)]}ms ` +
            `p99=${sorted[Math.floor(TICKS * 0.99)]}ms max=${sorted[TICKS - 1]}ms turnsPerRuntime=${turns.join('/')}`,
        );
        assert.deepEqual(missing, [], 'no gap');
        assert.deepEqual(unexpected, [], 'no run outside the fire times');
        assert.equal(starts, TICKS, 'exactly one start per tick');
        assert.equal(duplicates, 0, 'no fire started twice');
        assert.equal(completed, TICKS);
        assert.ok(
          executions.length >= Math.ceil(TICKS / STEPS_PER_EXECUTION),
          `continued as new (${executions.length} executions)`,
        );
      },
    );
  });
}
