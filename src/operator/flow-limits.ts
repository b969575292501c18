/**
 * Flow limits as operators see them, shared by `durox limits` and the dashboard's Limits page:
 * one line of text per setting, and the parsing of the numbers an operator types.
 */
import type { FlowLimitInfo } from '../provider/contract';
import { usageError } from './errors';

/** `maxActive` in words: a number, `paused` for 0, or `—` without a concurrency limit. */
export function capacityText(limit: FlowLimitInfo): string {
  if (limit.maxActive === null) return '—';
  return limit.maxActive === 0 ? 'paused (0)' : String(limit.maxActive);
}

/** The rate limit in words, e.g. `20/s, burst 5`, or `—`. */
export function rateText(limit: FlowLimitInfo): string {
  if (limit.perSecond === null) return '—';
  return `${limit.perSecond}/s, burst ${limit.burst ?? 1}`;
}

/** True when activities of the key are waiting for a permit. */
export function isSaturated(limit: FlowLimitInfo): boolean {
  return limit.parked > 0 || (limit.maxActive !== null && limit.active >= limit.maxActive);
}

/** A number an operator typed for `what` (`none` clears the setting); throws a usage error. */
export function parseLimitNumber(what: string, text: string | undefined, integer: boolean): number | null | undefined {
  if (text === undefined) return undefined;
  if (text === 'none') return null;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < 0 || (integer && !Number.isSafeInteger(value))) {
    throw usageError(
      `${what} must be a ${integer ? 'non-negative integer' : 'non-negative number'} or none, got ${text}`,
    );
  }
  return value;
}
