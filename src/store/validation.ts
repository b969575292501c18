/** Argument checks run before any SQL is sent, so bad input never reaches the database. */
import { MAX_PAYLOAD_BYTES } from '../core/limits';
import { isPriority, priorityProblem } from '../core/priority';
import { describeNonError } from '../core/thrown';
import { ProviderError } from '../provider/errors';

/** Context used in error messages: the operation and, when known, the instance. */
export interface CallContext {
  operation: string;
  instanceId?: string;
}

/** The error for an argument refused before any SQL was sent. */
export function invalidArgument(context: CallContext, message: string): ProviderError {
  return new ProviderError(context.operation, 'invalid_argument', message, { instanceId: context.instanceId });
}

function fail(context: CallContext, message: string): never {
  throw invalidArgument(context, message);
}

/** A string PostgreSQL TEXT can store exactly (no U+0000, no lone UTF-16 surrogate). */
export function requireText(value: unknown, what: string, context: CallContext): string {
  if (typeof value !== 'string') fail(context, `${what} must be a string, got ${typeof value}`);
  if (value.includes('\u0000'))
    fail(context, `${what} contains a NUL character (U+0000), which PostgreSQL text cannot store`);
  if (!isWellFormedUtf16(value)) {
    fail(
      context,
      `${what} contains a lone UTF-16 surrogate, which cannot be stored as UTF-8 text without being altered`,
    );
  }
  return value;
}

/** True when every surrogate of `text` is part of a pair (String.prototype.isWellFormed, Node 20+). */
export function isWellFormedUtf16(text: string): boolean {
  return !/\p{Surrogate}/u.test(text);
}

/** A non-empty identifier (instance id, lock token, name, key). */
export function requireId(value: unknown, what: string, context: CallContext): string {
  const text = requireText(value, what, context);
  if (text.length === 0) fail(context, `${what} must not be empty`);
  return text;
}

/** Null, or a string PostgreSQL TEXT can store. */
export function optionalText(value: unknown, what: string, context: CallContext): string | null {
  return value === null || value === undefined ? null : requireText(value, what, context);
}

/** A safe integer >= min. */
export function requireInteger(value: unknown, what: string, context: CallContext, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    fail(context, `${what} must be an integer >= ${min}, got ${String(value)}`);
  }
  return value;
}

/** A priority level 0..9 (core/priority.ts), or undefined when not given. */
export function optionalPriority(value: unknown, what: string, context: CallContext): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isPriority(value)) fail(context, `${what}: ${priorityProblem(value)}`);
  return value;
}

/** A duration in ms: undefined means 0; fractions are rounded up so a delay never shrinks. */
export function optionalDuration(value: unknown, what: string, context: CallContext): number {
  if (value === undefined || value === null) return 0;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    fail(context, `${what} must be a non-negative number of milliseconds, got ${describeNonError(value)}`);
  }
  return Math.ceil(value);
}

/** A positive duration in ms (lock timeouts and extensions). */
export function requirePositiveDuration(value: unknown, what: string, context: CallContext): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    fail(context, `${what} must be a positive number of milliseconds, got ${String(value)}`);
  }
  return Math.ceil(value);
}

/** JSON text of a value that must be a plain object (work item, event). */
export function toJsonText(value: unknown, what: string, context: CallContext): string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(context, `${what} must be an object`);
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    fail(context, `${what} cannot be encoded as JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (text === undefined) fail(context, `${what} cannot be encoded as JSON`);
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_PAYLOAD_BYTES) {
    fail(
      context,
      `${what} is ${bytes} bytes as JSON; the payload limit MAX_PAYLOAD_BYTES is ${MAX_PAYLOAD_BYTES} bytes (16 MiB)`,
    );
  }
  return text;
}
