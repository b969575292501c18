/**
 * The built-in orchestration behind every schedule: one instance `schedule:<id>` per schedule.
 *
 * Each step reads the turn's time from the store clock (deterministically, see {@link turnTime}),
 * handles the cron fires that are due since the previous step (catch-up policy, overlap policy,
 * detached start of `<scheduleId>@<ISO fire time>`), publishes its view as custom status, then
 * waits for the next fire on a durable timer or for a control command on its persistent queue,
 * whichever comes first. Every fire time is computed from the cursor recorded in history, never
 * from a wall clock, so replay is exact and a fire that two turns handle twice (it cannot, the
 * instance is locked per turn) would still collapse into one run. After {@link STEPS_PER_EXECUTION}
 * steps it continues as new, so its history stays bounded.
 */
import { SYSCALL_CANCEL_INSTANCE, SYSCALL_INSTANCE_STATUS, type CancelInstanceInput } from '../core/system-activities';
import type { OrchestrationContext } from '../core/orchestration-context';
import type { ScheduledTask } from '../core/descriptors';
import { CronExpression } from './cron';
import {
  LATE_FIRE_TOLERANCE_MS,
  runInstanceId,
  SCHEDULE_CONTROL_QUEUE,
  type ScheduleCommand,
  type ScheduleState,
  type ScheduleView,
} from './model';

/** Steps (fires or commands handled) per execution before continuing as new. */
export const STEPS_PER_EXECUTION = 100;
/** Most due fires one step handles; more (a long catch-up) are handled in the next steps. */
const MAX_FIRES_PER_STEP = 100;
/** Most due fires counted when a catch-up policy skips them. */
const MAX_COUNTED_MISSES = 1000;
/** A run not found this long after its start was deleted (or never ran), so it is not running. */
const START_GRACE_MS = 60_000;
/** The KV key written to read the turn's time. */
const CLOCK_KEY = 'schedule.clock';
/** Yields between two forced turn boundaries (the engine allows 100 rounds of new actions per turn). */
const PACE_YIELDS = 50;

type Step = Generator<ScheduledTask, void, unknown>;

/**
 * Yields tasks, ending the turn every {@link PACE_YIELDS} yields. The replay engine fails a turn
 * whose code keeps emitting actions for more than 100 rounds, and a task that resolves at once
 * (a detached start, a buffered command) costs a round: a long catch-up or a pile of commands
 * would exceed it. A zero-delay durable timer ends the turn; the next turn goes on.
 */
class Pacer {
  private yields = 0;

  constructor(private readonly ctx: OrchestrationContext) {}

  *wait(task: ScheduledTask): Generator<ScheduledTask, unknown, unknown> {
    const result = yield task;
    if (++this.yields >= PACE_YIELDS) {
      this.yields = 0;
      yield this.ctx.scheduleTimer(0);
    }
    return result;
  }
}

/**
 * The time of the current turn on the store clock: write a KV key, read back when it was
 * written. The timestamp is recorded in the KeyValueSet event, so replay reads the same time.
 * (ctx.utcNow() would read a worker's wall clock, which timers, set on the store clock, ignore.)
 */
function turnTime(ctx: OrchestrationContext, tick: number): number {
  ctx.setValue(CLOCK_KEY, `${ctx.executionId}.${tick}`);
  return ctx.getValueUpdatedAt(CLOCK_KEY) as number;
}

/** The fires a catch-up policy keeps among `due` (ascending), the latest being on time or late. */
function chooseFires(due: number[], nowMs: number, state: ScheduleState): number[] {
  if (due.length === 0 || state.spec.catchUp === 'all') return due;
  const latest = due[due.length - 1];
  if (state.spec.catchUp === 'one') return [latest];
  return nowMs - latest <= LATE_FIRE_TOLERANCE_MS ? [latest] : [];
}

function publish(ctx: OrchestrationContext, state: ScheduleState, nextFireAtMs: number | null, nowMs: number): void {
  const view: ScheduleView = {
    scheduleId: state.scheduleId,
    spec: state.spec,
    paused: state.paused,
    nextFireAtMs,
    lastRun: state.lastRun,
    counts: state.counts,
    updatedAtMs: nowMs,
  };
  ctx.setCustomStatus(JSON.stringify(view));
}

/** Starts the run of `fireAtMs` unless the overlap policy says otherwise. */
function* fire(ctx: OrchestrationContext, pacer: Pacer, state: ScheduleState, fireAtMs: number, nowMs: number): Step {
  const { spec, lastRun, counts } = state;
  const instanceId = runInstanceId(state.scheduleId, fireAtMs);
  // Two triggers handled in one turn share its time, hence the id: the second is the same run.
  if (lastRun?.instanceId === instanceId) return;
  if (lastRun !== null && spec.overlap !== 'allow') {
    const status = (yield* pacer.wait(ctx.scheduleActivity(SYSCALL_INSTANCE_STATUS, lastRun.instanceId))) as string;
    const starting = status === 'NotFound' && nowMs - lastRun.startedAtMs < START_GRACE_MS;
    if (status === 'Running' || starting) {
      if (spec.overlap === 'skip') {
        counts.skippedOverlap += 1;
        return;
      }
      const cancel: CancelInstanceInput = {
        instanceId: lastRun.instanceId,
        reason: `schedule ${state.scheduleId}: next run is due`,
      };
      yield* pacer.wait(ctx.scheduleActivity(SYSCALL_CANCEL_INSTANCE, cancel));
      counts.cancelledPrevious += 1;
    }
  }
  // A start of an id that already exists is discarded by the store: a repeated fire collapses.
  yield* pacer.wait(ctx.startOrchestrationVersioned(spec.orchestration, spec.version, instanceId, spec.input));
  state.lastRun = { instanceId, fireAtMs, startedAtMs: nowMs };
  counts.started += 1;
}

function* applyCommand(
  ctx: OrchestrationContext,
  pacer: Pacer,
  state: ScheduleState,
  command: ScheduleCommand,
  nowMs: number,
): Step {
  switch (command.command) {
    case 'pause':
      state.paused = true;
      return;
    case 'resume':
      // Fires that fell into the pause are not caught up: the cursor restarts at the resume.
      if (state.paused) state.cursorMs = null;
      state.paused = false;
      return;
    case 'trigger': {
      const startedBefore = state.counts.started;
      yield* fire(ctx, pacer, state, nowMs, nowMs);
      if (state.counts.started > startedBefore) state.counts.triggered += 1;
      return;
    }
    case 'update':
      state.spec = command.spec;
      state.cursorMs = null;
      return;
  }
}

/** The schedule orchestration (a generator; registered by every Runtime under SCHEDULE_ORCHESTRATION). */
export function* scheduleOrchestration(
  ctx: OrchestrationContext,
  input: ScheduleState,
): Generator<ScheduledTask, void, unknown> {
  const state: ScheduleState = structuredClone(input);
  const pacer = new Pacer(ctx);
  // Parsed once per definition: every turn replays every step of the execution.
  let cron: CronExpression | null = null;
  let cronOf: ScheduleState['spec'] | null = null;
  let tick = 0;
  for (let step = 0; step < STEPS_PER_EXECUTION; step++) {
    let nowMs = turnTime(ctx, tick++);
    if (cron === null || cronOf !== state.spec) {
      cron = CronExpression.parse(state.spec.cron, state.spec.timezone, 'schedule', state.scheduleId);
      cronOf = state.spec;
    }
    if (state.cursorMs === null) state.cursorMs = nowMs;
    if (!state.paused) {
      const handledBefore = state.counts.started + state.counts.skippedOverlap;
      const complete = yield* handleDueFires(ctx, pacer, state, cron, nowMs);
      if (!complete) continue;
      // Overlap checks and pacing may have ended turns: the timer below counts from the time after them.
      if (state.counts.started + state.counts.skippedOverlap !== handledBefore) nowMs = turnTime(ctx, tick++);
    }
    const nextFireAtMs = state.paused ? null : cron.nextAfter(state.cursorMs);
    publish(ctx, state, nextFireAtMs, nowMs);
    const control = ctx.dequeueEvent<ScheduleCommand>(SCHEDULE_CONTROL_QUEUE);
    let command: ScheduleCommand;
    if (nextFireAtMs === null) {
      command = (yield* pacer.wait(control)) as ScheduleCommand;
    } else {
      const raced = (yield* pacer.wait(ctx.race(ctx.scheduleTimer(Math.max(0, nextFireAtMs - nowMs)), control))) as {
        index: number;
        value: unknown;
      };
      if (raced.index === 0) continue;
      command = raced.value as ScheduleCommand;
    }
    yield* applyCommand(ctx, pacer, state, command, turnTime(ctx, tick++));
  }
  yield ctx.continueAsNew(state);
}

/**
 * Handles the fires due in (cursor, now]. Returns false when more are due than one step takes
 * (catch-up `all` after a long downtime): the caller goes on without waiting.
 */
function* handleDueFires(
  ctx: OrchestrationContext,
  pacer: Pacer,
  state: ScheduleState,
  cron: CronExpression,
  nowMs: number,
): Generator<ScheduledTask, boolean, unknown> {
  const cursorMs = state.cursorMs as number;
  if (state.spec.catchUp === 'all') {
    const due = cron.between(cursorMs, nowMs, MAX_FIRES_PER_STEP);
    const complete = due.length < MAX_FIRES_PER_STEP;
    state.cursorMs = complete ? nowMs : due[due.length - 1];
    for (const fireAtMs of due) yield* fire(ctx, pacer, state, fireAtMs, nowMs);
    return complete;
  }
  const due = cron.between(cursorMs, nowMs, MAX_COUNTED_MISSES);
  if (due.length === MAX_COUNTED_MISSES) {
    // Too many to count: the latest due fire is the one before now.
    const latest = cron.previousUpTo(nowMs);
    if (latest !== null && latest > due[due.length - 1]) due[due.length - 1] = latest;
  }
  state.cursorMs = nowMs;
  const chosen = chooseFires(due, nowMs, state);
  state.counts.missed += due.length - chosen.length;
  for (const fireAtMs of chosen) yield* fire(ctx, pacer, state, fireAtMs, nowMs);
  return true;
}
