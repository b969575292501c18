/**
 * Errors of the schedule API. Each names the operation and the schedule and carries a stable
 * machine-readable `code`, so callers (the CLI, the dashboard, user code) can branch on it.
 */

/** Machine-readable reason for a {@link ScheduleError}. */
export type ScheduleErrorCode =
  /** The cron expression is not 5 or 6 valid fields. */
  | 'invalid_cron'
  /** The timezone is not an IANA name this Node.js knows. */
  | 'unknown_timezone'
  /** Another argument was refused (bad id, unknown policy, input that is not JSON). */
  | 'invalid_argument'
  /** A schedule (or another instance) with this id already exists. */
  | 'duplicate_schedule'
  /** No schedule with this id exists. */
  | 'schedule_not_found';

/** A refused schedule operation; nothing was written. */
export class ScheduleError extends Error {
  readonly code: ScheduleErrorCode;
  /** The Client method that failed, e.g. `createSchedule`. */
  readonly operation: string;
  /** The schedule concerned, when the call named one. */
  readonly scheduleId: string | undefined;

  constructor(operation: string, code: ScheduleErrorCode, message: string, scheduleId?: string) {
    const where = scheduleId === undefined ? operation : `${operation} (schedule '${scheduleId}')`;
    super(`${where}: ${message}`);
    this.name = 'ScheduleError';
    this.code = code;
    this.operation = operation;
    this.scheduleId = scheduleId;
  }
}
