/** Parsing of CLI argument values; every failure is a usage error (exit code 2) naming the option. */
import { usageError } from './errors';

const EXECUTION_STATUSES = ['Running', 'Completed', 'Failed', 'ContinuedAsNew'] as const;
const UNIT_MS: Readonly<Record<string, number>> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A status name, accepted case-insensitively and returned in its canonical spelling. */
export function parseStatus(option: string, text: string): string {
  const match = EXECUTION_STATUSES.find((s) => s.toLowerCase() === text.toLowerCase());
  if (match === undefined)
    throw usageError(`${option} must be one of ${EXECUTION_STATUSES.join(', ')}, got ${JSON.stringify(text)}`);
  return match;
}

/**
 * A point in time: an ISO-8601 date, epoch milliseconds, or a duration ago (`30s`, `15m`, `2h`, `7d`).
 */
export function parseTime(option: string, text: string, now: number = Date.now()): number {
  const trimmed = text.trim();
  const relative = /^(\d{1,9})([smhd])$/.exec(trimmed);
  if (relative !== null) return now - Number(relative[1]) * UNIT_MS[relative[2]];
  if (/^\d{1,15}$/.test(trimmed)) return Number(trimmed);
  if (/^\d{4}-\d{2}-\d{2}/.test(trimmed)) {
    const parsed = Date.parse(trimmed);
    if (Number.isFinite(parsed) && parsed >= 0) return parsed;
  }
  throw usageError(
    `${option} must be an ISO date, epoch milliseconds or a duration ago like 15m, 2h, 7d; got ${JSON.stringify(text)}`,
  );
}

/** An integer within [min, max]. */
export function parseInteger(option: string, text: string, min: number, max: number): number {
  if (!/^-?\d{1,16}$/.test(text.trim())) throw usageError(`${option} must be an integer, got ${JSON.stringify(text)}`);
  const value = Number(text);
  if (value < min || value > max) throw usageError(`${option} must be between ${min} and ${max}, got ${value}`);
  return value;
}

/** A JSON value given on the command line (`--input '{"a":1}'`). */
export function parseJson(option: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw usageError(`${option} must be valid JSON (quote strings: '"text"'): ${(error as Error).message}`);
  }
}
