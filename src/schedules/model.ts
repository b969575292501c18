/**
 * The vocabulary of schedules shared by the Client (which validates and sends), the schedule
 * orchestration (which runs them) and the operator tools (which show them): names, options,
 * the state carried across continue-as-new, control commands and the published view.
 */
import * as semver from 'semver';
import { MAX_NAME_BYTES } from '../core/limits';
import { CronExpression, requireTimezone } from './cron';
import { ScheduleError } from './errors';

/**
 * Registered name of the built-in schedule orchestration (every Runtime runs it). It uses the
 * reserved system prefix, so no user orchestration can take the name.
 */
export const SCHEDULE_ORCHESTRATION = '__duroxide_syscall:durox_schedule';

/** Version of the schedule orchestration's behaviour; a change in behaviour registers a new one. */
export const SCHEDULE_ORCHESTRATION_VERSION = '1.0.0';

/** Persistent queue of the schedule instance that carries {@link ScheduleCommand}s. */
export const SCHEDULE_CONTROL_QUEUE = 'durox.schedule.control';

const SCHEDULE_INSTANCE_PREFIX = 'schedule:';

/** The instance that runs schedule `scheduleId`. */
export function scheduleInstanceId(scheduleId: string): string {
  return `${SCHEDULE_INSTANCE_PREFIX}${scheduleId}`;
}

/** The schedule id of a schedule instance id. */
export function scheduleIdOf(instanceId: string): string {
  return instanceId.startsWith(SCHEDULE_INSTANCE_PREFIX)
    ? instanceId.slice(SCHEDULE_INSTANCE_PREFIX.length)
    : instanceId;
}

/** The id of the run fired at `fireAtMs`: `<scheduleId>@<ISO time>`, so a repeated fire collapses. */
export function runInstanceId(scheduleId: string, fireAtMs: number): string {
  return `${scheduleId}@${new Date(fireAtMs).toISOString()}`;
}

/** What to do when a fire comes while the previous run is still running. */
export type OverlapPolicy = 'skip' | 'allow' | 'cancelPrevious';

/**
 * What to do with fires missed while no runtime ran the schedule (or a turn was late by more
 * than {@link LATE_FIRE_TOLERANCE_MS}): skip them, fire once for all of them, or fire each.
 */
export type CatchUpPolicy = 'none' | 'one' | 'all';

/**
 * Largest run input, in UTF-8 bytes of its JSON: the input is part of the schedule's published
 * view (its custom status, at most 256 KiB). Larger inputs belong in a store the run reads.
 */
export const MAX_SCHEDULE_INPUT_BYTES = 65_536;

/** A fire at most this late still counts as on time (`catchUp: 'none'` runs it). */
export const LATE_FIRE_TOLERANCE_MS = 60_000;

/** Options of `client.createSchedule`. */
export interface ScheduleOptions {
  /** 5 fields (`m h dom mon dow`) or 6 (seconds first), e.g. `0 2 * * *` or `*\/10 * * * * *`. */
  cron: string;
  /** Orchestration each fire starts (as a detached instance `<scheduleId>@<ISO fire time>`). */
  orchestration: string;
  /** Input of every run (any JSON value). */
  input?: unknown;
  /** Exact version of the orchestration to start; default: the latest registered. */
  version?: string;
  overlap: OverlapPolicy;
  /** Default `one`. */
  catchUp?: CatchUpPolicy;
  /** IANA timezone the cron fields are read in; default UTC. */
  timezone?: string;
}

/** A validated schedule definition, as the schedule orchestration keeps it. */
export interface ScheduleSpec {
  cron: string;
  timezone: string | null;
  orchestration: string;
  version: string | null;
  input: unknown;
  overlap: OverlapPolicy;
  catchUp: CatchUpPolicy;
}

/** Counters of a schedule since it was created. */
export interface ScheduleCounts {
  /** Runs started (cron fires and triggers). */
  started: number;
  /** Of those, started by `triggerSchedule`. */
  triggered: number;
  /** Fires not started because the previous run was still running (`overlap: 'skip'`). */
  skippedOverlap: number;
  /** Previous runs cancelled before a start (`overlap: 'cancelPrevious'`). */
  cancelledPrevious: number;
  /** Fires skipped by the catch-up policy after downtime (counted up to 1000 per catch-up). */
  missed: number;
}

/** The latest run a schedule started. */
export interface ScheduleRun {
  instanceId: string;
  fireAtMs: number;
  /** Store-clock time of the turn that started it. */
  startedAtMs: number;
}

/** Input of the schedule orchestration: everything it carries across continue-as-new. */
export interface ScheduleState {
  scheduleId: string;
  spec: ScheduleSpec;
  paused: boolean;
  /** Fire times up to here are handled (started, skipped or missed); null: from the next turn's time. */
  cursorMs: number | null;
  lastRun: ScheduleRun | null;
  counts: ScheduleCounts;
}

/** A control message on {@link SCHEDULE_CONTROL_QUEUE}. */
export type ScheduleCommand =
  { command: 'pause' } | { command: 'resume' } | { command: 'trigger' } | { command: 'update'; spec: ScheduleSpec };

/** What a schedule publishes as its custom status after every change (JSON). */
export interface ScheduleView {
  scheduleId: string;
  spec: ScheduleSpec;
  paused: boolean;
  /** Next cron fire (epoch ms), null while paused or when the cron never fires again. */
  nextFireAtMs: number | null;
  lastRun: ScheduleRun | null;
  counts: ScheduleCounts;
  /** Store-clock time of the turn that published this view. */
  updatedAtMs: number;
}

/** A schedule as `listSchedules`/`getSchedule` return it. */
export interface ScheduleInfo extends ScheduleView {
  /** Status of the schedule's own instance (`Running` unless it failed or was stopped). */
  status: string;
  /** Error of a failed schedule instance, else null. */
  error: string | null;
}

const OVERLAP_POLICIES: readonly OverlapPolicy[] = ['skip', 'allow', 'cancelPrevious'];
const CATCH_UP_POLICIES: readonly CatchUpPolicy[] = ['none', 'one', 'all'];

/** @throws ScheduleError `invalid_argument` unless `scheduleId` is usable in instance ids. */
export function requireScheduleId(operation: string, scheduleId: unknown): string {
  const problem =
    typeof scheduleId !== 'string' || scheduleId.length === 0
      ? 'schedule id must be a non-empty string'
      : scheduleId.includes('\u0000') || /\p{Surrogate}/u.test(scheduleId)
        ? 'schedule id must not contain NUL characters or lone UTF-16 surrogates'
        : scheduleId.includes('@')
          ? "schedule id must not contain '@' (run ids are '<schedule id>@<fire time>')"
          : Buffer.byteLength(scheduleInstanceId(scheduleId), 'utf8') > MAX_NAME_BYTES - 32
            ? `schedule id is too long (at most ${MAX_NAME_BYTES - 32 - SCHEDULE_INSTANCE_PREFIX.length} UTF-8 bytes)`
            : null;
  if (problem !== null) {
    throw new ScheduleError(
      operation,
      'invalid_argument',
      problem,
      typeof scheduleId === 'string' && scheduleId !== '' ? scheduleId : undefined,
    );
  }
  return scheduleId as string;
}

function requireChoice<T extends string>(
  operation: string,
  scheduleId: string,
  field: string,
  value: unknown,
  choices: readonly T[],
): T {
  if (typeof value === 'string' && (choices as readonly string[]).includes(value)) return value as T;
  throw new ScheduleError(
    operation,
    'invalid_argument',
    `${field} must be one of ${choices.map((c) => `'${c}'`).join(', ')}, got ${JSON.stringify(value)}`,
    scheduleId,
  );
}

function requireText(operation: string, scheduleId: string, field: string, value: unknown): string {
  if (
    typeof value !== 'string' ||
    value.length === 0 ||
    value.includes('\u0000') ||
    Buffer.byteLength(value, 'utf8') > MAX_NAME_BYTES
  ) {
    throw new ScheduleError(
      operation,
      'invalid_argument',
      `${field} must be a non-empty string of at most ${MAX_NAME_BYTES} bytes, got ${JSON.stringify(value)}`,
      scheduleId,
    );
  }
  return value;
}

function requireSemver(operation: string, scheduleId: string, value: unknown): string {
  const version = requireText(operation, scheduleId, 'version', value);
  if (semver.valid(version) === null) {
    throw new ScheduleError(
      operation,
      'invalid_argument',
      `version '${version}' is not a valid semver version (e.g. 1.2.0)`,
      scheduleId,
    );
  }
  return version;
}

/**
 * Checks every option and returns the definition the schedule orchestration runs.
 * @throws ScheduleError with code `invalid_cron`, `unknown_timezone` or `invalid_argument`.
 */
export function toScheduleSpec(operation: string, scheduleId: string, options: unknown): ScheduleSpec {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new ScheduleError(
      operation,
      'invalid_argument',
      'options must be an object { cron, orchestration, overlap, ... }',
      scheduleId,
    );
  }
  const o = options as Record<string, unknown>;
  const timezone =
    o.timezone === undefined || o.timezone === null ? null : requireTimezone(o.timezone, operation, scheduleId);
  if (typeof o.cron !== 'string') {
    throw new ScheduleError(operation, 'invalid_cron', `cron must be a string, got ${typeof o.cron}`, scheduleId);
  }
  CronExpression.parse(o.cron, timezone, operation, scheduleId);
  const orchestration = requireText(operation, scheduleId, 'orchestration', o.orchestration);
  if (orchestration === SCHEDULE_ORCHESTRATION) {
    throw new ScheduleError(operation, 'invalid_argument', 'a schedule cannot start schedules', scheduleId);
  }
  const version =
    o.version === undefined || o.version === null ? null : requireSemver(operation, scheduleId, o.version);
  let encoded: string;
  try {
    encoded = JSON.stringify(o.input === undefined ? null : o.input) ?? 'null';
  } catch (error) {
    throw new ScheduleError(
      operation,
      'invalid_argument',
      `input cannot be encoded as JSON: ${(error as Error).message}`,
      scheduleId,
    );
  }
  const inputBytes = Buffer.byteLength(encoded, 'utf8');
  if (inputBytes > MAX_SCHEDULE_INPUT_BYTES) {
    throw new ScheduleError(
      operation,
      'invalid_argument',
      `input is ${inputBytes} bytes as JSON; a schedule's input may be at most ${MAX_SCHEDULE_INPUT_BYTES} bytes`,
      scheduleId,
    );
  }
  const input: unknown = JSON.parse(encoded);
  return {
    cron: o.cron.trim().split(/\s+/).join(' '),
    timezone,
    orchestration,
    version,
    input,
    overlap: requireChoice(operation, scheduleId, 'overlap', o.overlap, OVERLAP_POLICIES),
    catchUp:
      o.catchUp === undefined ? 'one' : requireChoice(operation, scheduleId, 'catchUp', o.catchUp, CATCH_UP_POLICIES),
  };
}

/** The view in a schedule instance's custom status, or null when it has not published one yet. */
export function parseScheduleView(customStatus: string | null): ScheduleView | null {
  if (customStatus === null) return null;
  try {
    const view = JSON.parse(customStatus) as ScheduleView;
    return typeof view === 'object' && view !== null && typeof view.scheduleId === 'string' ? view : null;
  } catch {
    return null;
  }
}
