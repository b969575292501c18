/**
 * Errors the Client throws itself. Each has a stable `code` to branch on; the message texts are
 * the reference's (`Instance <id> not found`, `Operation timed out: …`), which existing programs
 * match on, so they never change. Errors of the store pass through as {@link ProviderError}s,
 * whose codes are a superset of these: `code` alone classifies any error the Client throws.
 * Their `name` stays `Error`, so `String(error)` reads exactly as the reference's (`Error: …`);
 * tell them apart with `instanceof` or `code`.
 */

/** Machine-readable reason of a {@link ClientError}. */
export type ClientErrorCode =
  /** An argument was refused before the provider was called; nothing was written. */
  | 'invalid_argument'
  /** The instance or execution does not exist. */
  | 'not_found'
  /** A wait gave up after its timeout. */
  | 'timeout'
  /** The awaited orchestration failed (`waitForOrchestrationTyped`). */
  | 'orchestration_failed'
  /** The provider does not offer the operation. */
  | 'unsupported';

/** Base class of the errors the Client throws itself. */
export class ClientError extends Error {
  readonly code: ClientErrorCode;
  /** The Client method that failed, e.g. `startOrchestration`. */
  readonly operation: string;
  /** The instance concerned, when the operation has one. */
  readonly instanceId: string | undefined;

  constructor(code: ClientErrorCode, operation: string, message: string, instanceId?: string) {
    super(message);
    this.code = code;
    this.operation = operation;
    this.instanceId = instanceId;
  }
}

/** A refused argument (`<operation> (instance '<id>'): <field> must …`); nothing was written. */
export class InvalidArgumentError extends ClientError {
  constructor(operation: string, message: string, instanceId?: string) {
    super('invalid_argument', operation, message, instanceId);
  }
}

/** `Instance <id> not found` or `Execution <n> of instance <id> not found`. */
export class NotFoundError extends ClientError {
  constructor(operation: string, message: string, instanceId: string) {
    super('not_found', operation, message, instanceId);
  }
}

/** `Operation timed out: …` or `Timed out waiting for value …`; carries what was last seen. */
export class TimeoutError extends ClientError {
  readonly timeoutMs: number;
  /** The instance's status at the last read (`waitForOrchestration`, `waitForStatusChange`). */
  readonly lastStatus: string | undefined;

  constructor(operation: string, message: string, instanceId: string, timeoutMs: number, lastStatus?: string) {
    super('timeout', operation, message, instanceId);
    this.timeoutMs = timeoutMs;
    this.lastStatus = lastStatus;
  }
}

/** The awaited orchestration failed; the message is its error (or `Orchestration failed`). */
export class OrchestrationFailedError extends ClientError {
  constructor(operation: string, message: string, instanceId: string) {
    super('orchestration_failed', operation, message, instanceId);
  }
}

/** The provider does not offer the operation (e.g. paging on a provider without it). */
export class UnsupportedError extends ClientError {
  constructor(operation: string, message: string) {
    super('unsupported', operation, message);
  }
}
