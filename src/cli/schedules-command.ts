/**
 * `durox schedules list|create|pause|resume|trigger|delete`: operate cron schedules
 * (Client.createSchedule and friends). A schedule fires only while some Runtime runs on the
 * store; these commands only write its definition and commands.
 */
import type { Command } from 'commander';
import type { CatchUpPolicy, OverlapPolicy, ScheduleInfo } from '../schedules/model';
import { openStore, type ConnectionOptions, type Store } from '../operator/connection';
import { consoleOutput, isoTime, paint, table, type Output } from './output';
import { parseJson } from '../operator/parsing';

type Action = (store: Store, out: Output, args: string[], options: Record<string, unknown>) => Promise<void>;

/** Wires `action` to `command` with the global options and the store's lifetime (exit codes come from error codes). */
function run(command: Command, action: Action): Command {
  return command.action(async (...received: unknown[]) => {
    const self = received[received.length - 1] as Command;
    const globals = self.optsWithGlobals<ConnectionOptions & { json: boolean; color: boolean }>();
    const out = consoleOutput(globals.json === true, globals.color !== false);
    const store = await openStore({ ...globals, create: false });
    try {
      await action(store, out, self.args, self.opts());
    } finally {
      await store.close();
    }
  });
}

/** A schedule's state in one word: paused, active, or the status of a stopped schedule instance. */
export function scheduleState(schedule: ScheduleInfo): string {
  if (schedule.status !== 'Running') return schedule.status;
  return schedule.paused ? 'paused' : 'active';
}

function printSchedules(out: Output, schedules: ScheduleInfo[]): void {
  table<ScheduleInfo>(out, schedules, [
    { header: 'SCHEDULE', value: (s) => s.scheduleId, max: 40 },
    { header: 'CRON', value: (s) => s.spec.cron + (s.spec.timezone === null ? '' : ` (${s.spec.timezone})`) },
    { header: 'ORCHESTRATION', value: (s) => s.spec.orchestration, max: 32 },
    {
      header: 'STATE',
      value: scheduleState,
      colour: (s) => (s.status === 'Failed' ? 'red' : s.paused ? 'yellow' : 'green'),
    },
    { header: 'NEXT FIRE', value: (s) => isoTime(s.nextFireAtMs) },
    { header: 'LAST RUN', value: (s) => s.lastRun?.instanceId ?? '', max: 60 },
    { header: 'STARTED', value: (s) => String(s.counts.started) },
    { header: 'SKIPPED', value: (s) => String(s.counts.skippedOverlap + s.counts.missed) },
    { header: 'POLICY', value: (s) => `overlap=${s.spec.overlap} catchUp=${s.spec.catchUp}` },
  ]);
  out.line(paint(out, 'gray', `${schedules.length} schedule(s)`));
}

/** Registers `durox schedules ...` on `program`. */
export function registerScheduleCommands(program: Command): void {
  const schedules = program
    .command('schedules')
    .description('cron schedules: list, create, pause, resume, trigger, delete');

  run(
    schedules.command('list').description('every schedule with its next fire time, last run and counters'),
    async (store, out) => {
      const list = await store.client.listSchedules();
      if (out.json) return out.data(list);
      printSchedules(out, list);
    },
  );

  run(
    schedules
      .command('create <scheduleId>')
      .description('create a schedule: each fire starts <orchestration> as instance <scheduleId>@<ISO fire time>')
      .requiredOption('--cron <expression>', 'cron: 5 fields (m h dom mon dow) or 6 (seconds first)')
      .requiredOption('--orchestration <name>', 'orchestration each fire starts')
      .requiredOption('--overlap <policy>', 'when the previous run still runs: skip, allow or cancelPrevious')
      .option('--catch-up <policy>', 'fires missed during downtime: none, one or all', 'one')
      .option('--timezone <iana>', 'timezone of the cron fields (default UTC)')
      .option('--input <json>', 'input of every run, as JSON', 'null')
      .option('--version <version>', 'pin the orchestration version'),
    async (store, out, [id], o) => {
      await store.client.createSchedule(id, {
        cron: String(o.cron),
        orchestration: String(o.orchestration),
        overlap: String(o.overlap) as OverlapPolicy,
        catchUp: String(o.catchUp) as CatchUpPolicy,
        timezone: typeof o.timezone === 'string' ? o.timezone : undefined,
        input: parseJson('--input', String(o.input)),
        version: typeof o.version === 'string' ? o.version : undefined,
      });
      if (out.json) out.data({ scheduleId: id, created: true });
      else out.line(`created schedule ${id} (it fires while a runtime runs on this store)`);
    },
  );

  const commands = [
    ['pause', 'stop firing until resumed', 'paused', (store: Store, id: string) => store.client.pauseSchedule(id)],
    ['resume', 'fire again from now on', 'resumed', (store: Store, id: string) => store.client.resumeSchedule(id)],
    [
      'trigger',
      'start a run now (overlap policy applies)',
      'triggered',
      (store: Store, id: string) => store.client.triggerSchedule(id),
    ],
    [
      'delete',
      'delete the schedule (its runs stay)',
      'deleted',
      (store: Store, id: string) => store.client.deleteSchedule(id),
    ],
  ] as const;
  for (const [name, description, done, call] of commands) {
    run(schedules.command(`${name} <scheduleId>`).description(description), async (store, out, [id]) => {
      await call(store, id);
      if (out.json) out.data({ scheduleId: id, [done]: true });
      else out.line(`${done} schedule ${id}`);
    });
  }
}
