import { ProviderError } from '../provider/errors';

/** Names we accept for a schema: lower-case SQL identifiers that never need escaping. */
const SCHEMA_NAME_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Checks a schema name before it reaches any SQL text and returns it double-quoted, ready to
 * prefix a procedure call (`"<schema>".fetch_orchestration_item(...)`).
 *
 * @throws ProviderError with code `invalid_argument` for anything outside `^[a-z_][a-z0-9_]{0,62}$`.
 */
export function quoteSchemaName(schema: string, operation: string): string {
  if (typeof schema !== 'string' || !SCHEMA_NAME_PATTERN.test(schema)) {
    throw new ProviderError(
      operation,
      'invalid_argument',
      `invalid schema name ${JSON.stringify(schema)}: use 1-63 characters from a-z, ` +
        `0-9 and _, not starting with a digit`,
    );
  }
  return `"${schema}"`;
}
