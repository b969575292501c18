/**
 * Typed provider errors. Every error names the provider operation and, where there is one,
 * the instance it concerns, and says whether retrying the same call may succeed.
 */

/** Machine-readable reason for a provider error. */
export type ProviderErrorCode =
  /** The lock token is unknown, expired, stolen or already released. */
  | 'lock_lost'
  /** The instance (or execution) does not exist. */
  | 'not_found'
  /** An argument was refused before anything was written (bad name, bad JSON, too large). */
  | 'invalid_argument'
  /** The change conflicts with stored state (duplicate event id, running instance). */
  | 'conflict'
  /** The database could not be reached or the connection broke; retrying may succeed. */
  | 'unavailable'
  /** Deadlock, serialization failure or a concurrent migration; retrying may succeed. */
  | 'transient'
  /** Anything else: a bug or a corrupted store. */
  | 'internal';

const RETRYABLE_CODES: ReadonlySet<ProviderErrorCode> = new Set(['unavailable', 'transient']);

/** An error raised by a provider operation. */
export class ProviderError extends Error {
  /** The provider operation that failed, e.g. `ack_orchestration_item`. */
  readonly operation: string;
  /** The instance concerned, when the operation has one. */
  readonly instanceId: string | undefined;
  readonly code: ProviderErrorCode;
  /** True when the same call may succeed if repeated (connection loss, deadlock). */
  readonly retryable: boolean;

  constructor(
    operation: string,
    code: ProviderErrorCode,
    message: string,
    options: { instanceId?: string; cause?: unknown } = {},
  ) {
    const where = options.instanceId === undefined ? operation : `${operation} (instance '${options.instanceId}')`;
    super(`${where}: ${message}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ProviderError';
    this.operation = operation;
    this.instanceId = options.instanceId;
    this.code = code;
    this.retryable = RETRYABLE_CODES.has(code);
  }
}

/** True when `error` is a provider error that may succeed on retry. */
export function isRetryable(error: unknown): boolean {
  return error instanceof ProviderError && error.retryable;
}

/** True when `error` says the lock token is no longer held (expired, stolen or released). */
export function isLockLost(error: unknown): boolean {
  return error instanceof ProviderError && error.code === 'lock_lost';
}

/**
 * True when `error` says the database node only takes reads: SQLSTATE 25006 (a standby, or a
 * primary that a failover is demoting), or a connection attempt that found only read-only nodes.
 */
export function isReadOnlyNodeError(error: unknown): boolean {
  const cause =
    error instanceof ProviderError
      ? (error.cause as { code?: unknown; onlyReadOnlyNodes?: unknown } | undefined)
      : undefined;
  return cause?.code === '25006' || cause?.onlyReadOnlyNodes === true;
}
