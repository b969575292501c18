/** Cron expressions of schedules: field counts, seconds, timezones (daylight saving), bounds. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CronExpression } from '../../src/schedules/cron';
import { ScheduleError } from '../../src/schedules/errors';

const at = (iso: string): number => Date.parse(iso);
const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

test('5 fields fire on whole minutes, 6 fields read seconds first', () => {
  const minutes = CronExpression.parse('*/15 * * * *', null, 'test');
  assert.equal(iso(minutes.nextAfter(at('2026-01-01T10:07:30.123Z'))), '2026-01-01T10:15:00.000Z');
  const seconds = CronExpression.parse('*/20 * * * * *', null, 'test');
  assert.equal(iso(seconds.nextAfter(at('2026-01-01T10:07:30.123Z'))), '2026-01-01T10:07:40.000Z');
  // Strictly after: a fire time is not its own successor.
  assert.equal(iso(seconds.nextAfter(at('2026-01-01T10:07:40.000Z'))), '2026-01-01T10:08:00.000Z');
});

test('between lists the fires in (after, upTo], capped', () => {
  const hourly = CronExpression.parse('0 * * * *', null, 'test');
  const fires = hourly.between(at('2026-01-01T00:00:00Z'), at('2026-01-01T03:00:00Z'), 10).map(iso);
  assert.deepEqual(fires, ['2026-01-01T01:00:00.000Z', '2026-01-01T02:00:00.000Z', '2026-01-01T03:00:00.000Z']);
  assert.equal(hourly.between(at('2026-01-01T00:00:00Z'), at('2026-01-02T00:00:00Z'), 5).length, 5);
  assert.equal(iso(hourly.previousUpTo(at('2026-01-01T03:00:00Z'))), '2026-01-01T03:00:00.000Z');
  assert.equal(iso(hourly.previousUpTo(at('2026-01-01T02:59:59.999Z'))), '2026-01-01T02:00:00.000Z');
});

test('timezones follow daylight saving time', () => {
  const berlin = CronExpression.parse('0 2 * * *', 'Europe/Berlin', 'test');
  assert.equal(iso(berlin.nextAfter(at('2026-01-10T12:00:00Z'))), '2026-01-11T01:00:00.000Z', 'CET is UTC+1');
  assert.equal(iso(berlin.nextAfter(at('2026-07-10T12:00:00Z'))), '2026-07-11T00:00:00.000Z', 'CEST is UTC+2');
});

test('bad expressions and timezones are ScheduleErrors with their code', () => {
  for (const [cron, pattern] of [
    ['* * *', /5 fields/],
    ['0 0 0 * * * *', /5 fields/],
    ['61 * * * *', /minute/],
    ['a b c d e', /invalid cron/],
    ['0 0 30 2 *', /invalid cron/],
  ] as const) {
    assert.throws(
      () => CronExpression.parse(cron, null, 'op', 'sched'),
      (error: unknown) => {
        assert.ok(error instanceof ScheduleError);
        assert.equal(error.code, 'invalid_cron');
        assert.equal(error.operation, 'op');
        assert.equal(error.scheduleId, 'sched');
        assert.match(error.message, pattern);
        return true;
      },
      cron,
    );
  }
  assert.throws(
    () => CronExpression.parse('0 * * * *', 'Europe/Atlantis', 'op'),
    (error: unknown) => error instanceof ScheduleError && error.code === 'unknown_timezone',
  );
});
