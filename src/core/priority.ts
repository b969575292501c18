/**
 * Priority levels of starts, activities and sub-orchestrations (README "Priorities"). A level is
 * an integer from {@link MIN_PRIORITY} (the default) to {@link MAX_PRIORITY}; higher goes first.
 * The stores rank queued work by the time it became fetchable minus {@link PRIORITY_STEP_MS} per
 * level (migration 0103_priorities.sql), so an item is overtaken only by items of a level `d`
 * higher that became fetchable less than `d × PRIORITY_STEP_MS` after it: the starvation bound.
 */

/** The lowest level, and the level of work nobody gave one. */
export const MIN_PRIORITY = 0;

/** The highest level. */
export const MAX_PRIORITY = 9;

/** The head start one level is worth, in ms (the step of the stored rank, migration 0103). */
export const PRIORITY_STEP_MS = 60_000;

/** Whether `value` is a priority level. */
export function isPriority(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= MIN_PRIORITY && (value as number) <= MAX_PRIORITY;
}

/** What is wrong with a value given as a priority level, for error messages. */
export function priorityProblem(value: unknown): string {
  const shown = typeof value === 'number' || typeof value === 'bigint' ? String(value) : JSON.stringify(value);
  return `priority must be an integer from ${MIN_PRIORITY} to ${MAX_PRIORITY}, got ${shown ?? String(value)}`;
}

/**
 * The level of `withPriority(level)`: returned when valid, else a `RangeError` (the orchestration
 * code that called it fails, as with any error it throws).
 */
export function requirePriority(value: unknown, method: string): number {
  if (!isPriority(value)) throw new RangeError(`${method}: ${priorityProblem(value)}`);
  return value;
}
