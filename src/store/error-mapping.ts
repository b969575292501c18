/**
 * Turns driver errors into {@link ProviderError}s. Our procedures raise their own SQLSTATEs
 * (DX001 lock lost, DX002 not found, DX003 invalid argument, DX004 conflict, DX005 corrupted data), so the mapping
 * never depends on message text except for two well-known driver messages.
 */
import { ProviderError, type ProviderErrorCode } from '../provider/errors';

/**
 * SQLSTATEs that say the node cannot serve this connection's writes any more: a read-only
 * standby (25006, e.g. after a failover demoted the node), an administrator or crash shutdown,
 * a server still starting or in recovery, a session closed for idling. Retryable on a new
 * connection, which may land on another node.
 */
const NODE_UNAVAILABLE_SQLSTATES: ReadonlySet<string> = new Set(['25006', '57P01', '57P02', '57P03', '57P05']);

const SQLSTATE_CODES: Readonly<Record<string, ProviderErrorCode>> = {
  DX001: 'lock_lost',
  DX002: 'not_found',
  DX003: 'invalid_argument',
  DX004: 'conflict',
  DX005: 'internal',
  '23505': 'conflict',
  '40P01': 'transient',
  '40001': 'transient',
  '55P03': 'transient',
  ...Object.fromEntries([...NODE_UNAVAILABLE_SQLSTATES].map((code) => [code, 'unavailable'])),
  '53300': 'unavailable',
};

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

const UNAVAILABLE_MESSAGES = [
  /connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /cannot use a pool after calling end/i,
  /client has encountered a connection error/i,
  /client was closed/i,
  /connection (?:is )?closed/i,
  /terminating connection/i,
];

/** True when `error` says its connection's node is read-only, shutting down or unreachable (SQLSTATE class 08). */
export function isNodeUnavailableError(error: unknown): boolean {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' && (NODE_UNAVAILABLE_SQLSTATES.has(code) || code.startsWith('08'));
}

/** Classifies `error` (thrown by a driver or by our own validation) for `operation`. */
export function toProviderError(error: unknown, operation: string, instanceId?: string): ProviderError {
  if (error instanceof ProviderError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const code = classify(error, message);
  const text =
    code === 'unavailable' && !/postgres/i.test(message)
      ? `database unavailable${readOnlyHint(error)}: ${message}`
      : message;
  return new ProviderError(operation, code, text, { instanceId, cause: error });
}

/** Says plainly when the node went read-only: the usual sign of a failover in progress. */
function readOnlyHint(error: unknown): string {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return code === '25006' ? ' (the node is read-only: a standby, or a primary being demoted by a failover)' : '';
}

function classify(error: unknown, message: string): ProviderErrorCode {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  if (typeof code === 'string') {
    const mapped = SQLSTATE_CODES[code];
    if (mapped !== undefined) return mapped;
    // A concurrent migration replaced a function under a cached plan: re-running re-plans.
    if (code === '0A000' && /cached plan must not change result type/i.test(message)) return 'transient';
    if (code.startsWith('08')) return 'unavailable';
    if (NETWORK_CODES.has(code)) return 'unavailable';
  }
  if (UNAVAILABLE_MESSAGES.some((pattern) => pattern.test(message))) return 'unavailable';
  return 'internal';
}
