/**
 * Cron expressions of schedules, evaluated with the `croner` library (pinned exactly in
 * package.json: the schedule orchestration computes fire times while replaying, so a different
 * evaluation between versions could change the ids of future runs, never past ones).
 *
 * Accepted: 5 fields (`minute hour day-of-month month day-of-week`) or 6 with seconds first, in
 * UTC or an IANA timezone. Day-of-month and day-of-week combine with OR, as in Vixie cron.
 */
import { Cron } from 'croner';
import { ScheduleError } from './errors';

/** A parsed cron expression in its timezone. */
export class CronExpression {
  readonly #cron: Cron;

  private constructor(cron: Cron) {
    this.#cron = cron;
  }

  /**
   * Parses `expression` in `timezone` (null: UTC).
   * @throws ScheduleError `invalid_cron` or `unknown_timezone`, naming `operation` and `scheduleId`.
   */
  static parse(expression: string, timezone: string | null, operation: string, scheduleId?: string): CronExpression {
    if (timezone !== null) requireTimezone(timezone, operation, scheduleId);
    const fields = typeof expression === 'string' ? expression.trim().split(/\s+/) : [];
    if (typeof expression !== 'string' || (fields.length !== 5 && fields.length !== 6)) {
      throw new ScheduleError(
        operation,
        'invalid_cron',
        `cron must be 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), got ${JSON.stringify(expression)}`,
        scheduleId,
      );
    }
    try {
      const cron = new Cron(fields.join(' '), { paused: true, timezone: timezone ?? 'UTC', mode: '5-or-6-parts' });
      // Some impossible patterns (e.g. 30 February) only show when searched.
      if (cron.nextRun(new Date(0)) === null) throw new Error('the pattern never matches');
      return new CronExpression(cron);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new ScheduleError(
        operation,
        'invalid_cron',
        `invalid cron ${JSON.stringify(expression)}: ${reason}`,
        scheduleId,
      );
    }
  }

  /** The first fire time strictly after `afterMs` (epoch ms, whole seconds), or null when none. */
  nextAfter(afterMs: number): number | null {
    return this.#cron.nextRun(new Date(afterMs))?.getTime() ?? null;
  }

  /** The latest fire time at or before `atMs`, or null when none. */
  previousUpTo(atMs: number): number | null {
    // previousRuns includes a run earlier in the same second as the reference, so +1 includes atMs.
    return this.#cron.previousRuns(1, new Date(atMs + 1))[0]?.getTime() ?? null;
  }

  /** Fire times in (`afterMs`, `upToMs`], ascending, at most `max` of them. */
  between(afterMs: number, upToMs: number, max: number): number[] {
    const times: number[] = [];
    let next = this.nextAfter(afterMs);
    while (next !== null && next <= upToMs && times.length < max) {
      times.push(next);
      next = this.nextAfter(next);
    }
    return times;
  }
}

/** @throws ScheduleError `unknown_timezone` unless `timezone` is an IANA name Node.js knows. */
export function requireTimezone(timezone: unknown, operation: string, scheduleId?: string): string {
  if (typeof timezone === 'string' && timezone !== '') {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: timezone });
      return timezone;
    } catch {
      // Reported below.
    }
  }
  throw new ScheduleError(
    operation,
    'unknown_timezone',
    `unknown timezone ${JSON.stringify(timezone)}; use an IANA name such as 'Europe/Berlin' or 'UTC'`,
    scheduleId,
  );
}
