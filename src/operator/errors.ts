/**
 * How an operator sees a failure: every error the Client, a provider or the operator views throw
 * carries a stable `code`, and the CLI's exit code and the dashboard's HTTP status are both
 * derived from it (never from message text).
 *
 * | code               | exit code | HTTP | meaning                                                   |
 * |--------------------|-----------|------|-----------------------------------------------------------|
 * | (success)          | 0         | 200  |                                                           |
 * | anything else      | 1         | 500  | the operation failed (database error, unexpected failure) |
 * | `invalid_argument` | 2         | 400  | usage error: unknown command or option, malformed value or filter |
 * | `not_found`        | 3         | 404  | unknown instance or execution                             |
 * | `conflict`         | 4         | 409  | refused because of the instance's state (e.g. still running) |
 * | `unavailable`      | 5         | 503  | the store is unavailable: cannot connect or open it       |
 *
 * The exit codes are part of the CLI's interface: scripts may rely on them.
 */

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_NOT_FOUND = 3;
export const EXIT_CONFLICT = 4;
export const EXIT_UNAVAILABLE = 5;

/** Codes of the failures the operator views raise themselves (a subset of the provider's codes). */
export type OperatorErrorCode = 'invalid_argument' | 'not_found' | 'conflict' | 'unavailable';

/** A failure found by the operator views (bad option, unknown instance, unreachable store). */
export class OperatorError extends Error {
  readonly code: OperatorErrorCode;

  constructor(code: OperatorErrorCode, message: string) {
    super(message);
    this.name = 'OperatorError';
    this.code = code;
  }
}

/** A malformed argument, option or filter (exit code 2, HTTP 400). */
export function usageError(message: string): OperatorError {
  return new OperatorError('invalid_argument', message);
}

/** An unknown instance or execution (exit code 3, HTTP 404). */
export function notFoundError(message: string): OperatorError {
  return new OperatorError('not_found', message);
}

/** Refused because of the instance's state (exit code 4, HTTP 409). */
export function conflictError(message: string): OperatorError {
  return new OperatorError('conflict', message);
}

/** The store cannot be reached or opened (exit code 5, HTTP 503). */
export function unavailableError(message: string): OperatorError {
  return new OperatorError('unavailable', message);
}

// Schedule errors (src/schedules/errors.ts) carry codes of their own: a bad cron text or
// timezone is bad input, a duplicate schedule a conflict, an unknown one not found.
const EXIT_CODES: Readonly<Record<string, number>> = {
  invalid_argument: EXIT_USAGE,
  invalid_cron: EXIT_USAGE,
  unknown_timezone: EXIT_USAGE,
  not_found: EXIT_NOT_FOUND,
  schedule_not_found: EXIT_NOT_FOUND,
  conflict: EXIT_CONFLICT,
  duplicate_schedule: EXIT_CONFLICT,
  unavailable: EXIT_UNAVAILABLE,
};

const HTTP_STATUSES: Readonly<Record<string, number>> = {
  invalid_argument: 400,
  invalid_cron: 400,
  unknown_timezone: 400,
  not_found: 404,
  schedule_not_found: 404,
  conflict: 409,
  duplicate_schedule: 409,
  unavailable: 503,
};

/** The stable `code` of an error (ClientError, ProviderError, OperatorError), if it has one. */
export function errorCodeOf(error: unknown): string | undefined {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

/** The CLI exit code for an error thrown by the Client, a provider or the operator views. */
export function exitCodeOf(error: unknown): number {
  return EXIT_CODES[errorCodeOf(error) ?? ''] ?? EXIT_FAILURE;
}

/** The dashboard's HTTP status for an error thrown by the Client, a provider or the operator views. */
export function httpStatusOf(error: unknown): number {
  return HTTP_STATUSES[errorCodeOf(error) ?? ''] ?? 500;
}
