/**
 * Argument checks and value encoding done by the Client before any provider call, so that bad
 * input fails with a clear error naming the operation and the instance, and nothing is enqueued.
 *
 * Limits: instance ids and names (orchestration, event, queue, key, version) are non-empty
 * strings of at most {@link MAX_NAME_BYTES} UTF-8 bytes without NUL characters or lone UTF-16
 * surrogates (PostgreSQL stores text as UTF-8, so neither could be read back exactly). Values
 * (inputs, event data) are encoded as JSON of at most {@link MAX_PAYLOAD_BYTES} UTF-8 bytes.
 */

import * as semver from 'semver';
import { describeNonError } from '../core/thrown';

/** Longest accepted instance id or name, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 512;

/** Largest accepted encoded value (input, event data), in UTF-8 bytes of its JSON text: 16 MiB. */
export const MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;

function where(operation: string, instanceId: unknown): string {
  return typeof instanceId === 'string' && instanceId !== '' ? `${operation} (instance '${instanceId}')` : operation;
}

/** Checks a pinned orchestration version: a name that is also a valid semver version. */
export function requireVersion(operation: string, value: unknown, instanceId: string): string {
  const version = requireName(operation, 'version', value, instanceId);
  if (semver.valid(version) === null) {
    throw new Error(`${where(operation, instanceId)}: version '${version}' is not a valid semver version (e.g. 1.2.0)`);
  }
  return version;
}

/** Throws unless `value` is a usable identifier; `field` names it in the error. */
export function requireName(operation: string, field: string, value: unknown, instanceId?: unknown): string {
  const at = where(operation, instanceId);
  if (typeof value !== 'string') throw new Error(`${at}: ${field} must be a string, got ${typeof value}`);
  if (value.length === 0) throw new Error(`${at}: ${field} must not be empty`);
  if (value.includes('\u0000')) throw new Error(`${at}: ${field} must not contain NUL characters`);
  if (/\p{Surrogate}/u.test(value)) {
    throw new Error(`${at}: ${field} must not contain lone UTF-16 surrogates (they cannot be stored as UTF-8)`);
  }
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > MAX_NAME_BYTES) {
    throw new Error(`${at}: ${field} is ${bytes} bytes long; the limit is ${MAX_NAME_BYTES} bytes`);
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
    throw new Error(`${where(operation, instanceId)}: ${field} cannot be encoded as JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (encoded === undefined) {
    throw new Error(`${where(operation, instanceId)}: ${field} cannot be encoded as JSON (got a ${typeof value})`);
  }
  const bytes = Buffer.byteLength(encoded, 'utf8');
  if (bytes > MAX_PAYLOAD_BYTES) {
    throw new Error(
      (`${where(operation, instanceId)}: ${field} is ${bytes} bytes as JSON; the ` + `payload limit MAX_PAYLOAD_BYTES is ${MAX_PAYLOAD_BYTES} bytes (16 MiB)`),
    );
  }
  return encoded;
}

/** Checks an optional non-negative integer (timeouts, versions); returns the default when undefined. */
export function requireCount(operation: string, field: string, value: unknown, fallback: number, instanceId?: string): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new Error(`${where(operation, instanceId)}: ${field} must be a non-negative number, got ${describeNonError(value)}`);
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
