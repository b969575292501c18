/**
 * Argument checks and value encoding done by the Client before any provider call, so that bad
 * input fails with a clear error naming the operation and the instance, and nothing is enqueued.
 *
 * Limits: instance ids and names (orchestration, event, queue, key, version) are non-empty
 * strings of at most {@link MAX_NAME_BYTES} UTF-8 bytes without NUL characters or lone UTF-16
 * surrogates (PostgreSQL stores text as UTF-8, so neither could be read back exactly). Values
 * (inputs, event data) are encoded as JSON of at most {@link MAX_PAYLOAD_BYTES} UTF-8 bytes.
 */

import { describeNonError } from '../core/thrown';
import * as semver from 'semver';
import { MAX_NAME_BYTES, MAX_PAYLOAD_BYTES } from '../core/limits';
import { InvalidArgumentError } from './errors';

function where(operation: string, instanceId: unknown): string {
  return typeof instanceId === 'string' && instanceId !== '' ? `${operation} (instance '${instanceId}')` : operation;
}

/** The error for a refused argument: `<operation> (instance '<id>'): <problem>`. */
export function invalidArgument(operation: string, problem: string, instanceId?: unknown): InvalidArgumentError {
  const instance = typeof instanceId === 'string' && instanceId !== '' ? instanceId : undefined;
  return new InvalidArgumentError(operation, `${where(operation, instanceId)}: ${problem}`, instance);
}

/** Checks a pinned orchestration version: a name that is also a valid semver version. */
export function requireVersion(operation: string, value: unknown, instanceId: string): string {
  const version = requireName(operation, 'version', value, instanceId);
  if (semver.valid(version) === null) {
    throw invalidArgument(operation, `version '${version}' is not a valid semver version (e.g. 1.2.0)`, instanceId);
  }
  return version;
}

/** Throws unless `value` is a usable identifier; `field` names it in the error. */
export function requireName(operation: string, field: string, value: unknown, instanceId?: unknown): string {
  const refuse = (problem: string): InvalidArgumentError => invalidArgument(operation, problem, instanceId);
  if (typeof value !== 'string') throw refuse(`${field} must be a string, got ${typeof value}`);
  if (value.length === 0) throw refuse(`${field} must not be empty`);
  if (value.includes('\u0000')) throw refuse(`${field} must not contain NUL characters`);
  if (/\p{Surrogate}/u.test(value)) {
    throw refuse(`${field} must not contain lone UTF-16 surrogates (they cannot be stored as UTF-8)`);
  }
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > MAX_NAME_BYTES) {
    throw refuse(`${field} is ${bytes} bytes long; the limit is ${MAX_NAME_BYTES} bytes`);
  }
  return value;
}

/** Checks the instance id argument of an operation. */
export function requireInstanceId(operation: string, instanceId: unknown): string {
  return requireName(operation, 'instance id', instanceId);
}

/**
 * Encodes a user value as duroxide does: `JSON.stringify(v === undefined ? null : v)`.
 * Values JSON cannot represent (circular structures, BigInt) are refused with a clear error.
 */
export function encodeValue(operation: string, field: string, value: unknown, instanceId: string): string {
  let encoded: string | undefined;
  try {
    encoded = JSON.stringify(value === undefined ? null : value);
  } catch (error) {
    throw invalidArgument(operation, `${field} cannot be encoded as JSON: ${(error as Error).message}`, instanceId);
  }
  if (encoded === undefined) {
    throw invalidArgument(operation, `${field} cannot be encoded as JSON (got a ${typeof value})`, instanceId);
  }
  const bytes = Buffer.byteLength(encoded, 'utf8');
  if (bytes > MAX_PAYLOAD_BYTES) {
    throw invalidArgument(
      operation,
      `${field} is ${bytes} bytes as JSON; the payload limit MAX_PAYLOAD_BYTES is ${MAX_PAYLOAD_BYTES} bytes (16 MiB)`,
      instanceId,
    );
  }
  return encoded;
}

/** Checks an optional non-negative integer (timeouts, versions); returns the default when undefined. */
export function requireCount(
  operation: string,
  field: string,
  value: unknown,
  fallback: number,
  instanceId?: string,
): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw invalidArgument(
      operation,
      `${field} must be a non-negative number, got ${describeNonError(value)}`,
      instanceId,
    );
  }
  return Math.floor(value);
}

/** JSON.parse that keeps the raw text when it is not JSON (duroxide's post-processing). */
export function parseLenient(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
