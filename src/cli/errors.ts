/**
 * Exit codes of the durox CLI, part of its interface: scripts may rely on them.
 *
 * | code | meaning                                                             |
 * |------|---------------------------------------------------------------------|
 * | 0    | success                                                             |
 * | 1    | the operation failed (database error, unexpected failure)           |
 * | 2    | usage error: unknown command or option, malformed value or filter   |
 * | 3    | not found: unknown instance or execution                            |
 * | 4    | conflict: refused because of the instance's state (e.g. still running) |
 * | 5    | the store is unavailable: cannot connect or open it                 |
 */
import { ProviderError } from '../provider/errors';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_NOT_FOUND = 3;
export const EXIT_CONFLICT = 4;
export const EXIT_UNAVAILABLE = 5;

/** An error the CLI reports with its own message and exit code. */
export class CliError extends Error {
  readonly exitCode: number;

  constructor(exitCode: number, message: string) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

/** A malformed argument, option or filter (exit code 2). */
export function usageError(message: string): CliError {
  return new CliError(EXIT_USAGE, message);
}

/** An unknown instance or execution (exit code 3). */
export function notFoundError(message: string): CliError {
  return new CliError(EXIT_NOT_FOUND, message);
}

const PROVIDER_EXIT_CODES: Readonly<Record<string, number>> = {
  invalid_argument: EXIT_USAGE,
  not_found: EXIT_NOT_FOUND,
  conflict: EXIT_CONFLICT,
  unavailable: EXIT_UNAVAILABLE,
};

/**
 * The exit code for an error thrown by the Client or a provider. Client validation errors and
 * duroxide's messages (`Instance <id> not found`, `... is still running ...`) are plain
 * Errors, so their well-known texts are recognised as well.
 */
export function exitCodeOf(error: unknown): number {
  if (error instanceof CliError) return error.exitCode;
  if (error instanceof ProviderError) return PROVIDER_EXIT_CODES[error.code] ?? EXIT_FAILURE;
  const message = error instanceof Error ? error.message : String(error);
  if (/\bnot found\b/i.test(message)) return EXIT_NOT_FOUND;
  if (/still running|Cannot delete sub-orchestration|Orphan detected/i.test(message)) return EXIT_CONFLICT;
  if (/^Failed to (connect|open)/.test(message)) return EXIT_UNAVAILABLE;
  if (/ must (be|not)\b/.test(message)) return EXIT_USAGE;
  return EXIT_FAILURE;
}
