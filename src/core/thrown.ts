/**
 * How a thrown value becomes failure text: the user's message and the user's own stack frames,
 * without Durox's internal frames (they say nothing about the user's code and fill error columns),
 * and non-Error values written readably instead of `[object Object]`.
 */

/** The compiled `src` directory of this package (…/dist/src): frames under it are Durox's own. */
const OWN_DIR = __dirname.replace(/[\\/]core$/, '');

function isInternalFrame(line: string): boolean {
  if (!/^\s+at /.test(line)) return false;
  return (
    line.includes(OWN_DIR) ||
    line.includes('node:internal') ||
    /^\s+at (?:Generator\.(?:next|throw|return)|new Promise|Promise\.then|process\.processTicksAndRejections) \(<anonymous>\)$/.test(
      line,
    )
  );
}

/** `stack` with Durox's and Node's internal frames removed (the message lines stay). */
export function withoutInternalFrames(stack: string): string {
  return stack
    .split('\n')
    .filter((line) => !isInternalFrame(line))
    .join('\n');
}

/** A non-Error thrown value as text: strings as they are, plain objects and arrays as JSON. */
export function describeNonError(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === null || value === undefined) return `${String(value)} was thrown (not an Error)`;
  if (typeof value === 'object') {
    try {
      const json = JSON.stringify(value);
      if (json !== undefined && json !== '{}') return json;
    } catch {
      // Circular or BigInt inside: fall through to String().
    }
    // A class's own toString() is the best text when it has one; '[object Object]' is replaced below.
    // eslint-disable-next-line @typescript-eslint/no-base-to-string
    const text = String(value);
    return text === '[object Object]'
      ? `${value.constructor?.name ?? 'Object'} ${JSON.stringify(Object.keys(value))}`
      : text;
  }
  // A number, boolean, bigint, symbol or function: String() writes each readably.
  // eslint-disable-next-line @typescript-eslint/no-base-to-string
  return String(value);
}

/** The message of a thrown value (an activity failure): `error.message`, or the value described. */
export function thrownMessage(error: unknown): string {
  return error instanceof Error ? error.message : describeNonError(error);
}

/**
 * An orchestration's uncaught throw as its failure text: `String(e.stack || e)` as duroxide does
 * (so it contains the stack), with Durox's internal frames removed.
 */
export function thrownDescription(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    const stack = (error as { stack?: unknown }).stack;
    if (typeof stack === 'string' && stack !== '') return withoutInternalFrames(stack);
    if (error instanceof Error) return String(error);
  }
  return describeNonError(error);
}

/**
 * The error a failed task throws into orchestration code. Its stack would only show where Durox
 * created it, so it holds the message alone.
 */
export function taskFailure(message: string): Error {
  const error = new Error(message);
  error.stack = `Error: ${message}`;
  return error;
}
