/**
 * Value encoding at the JavaScript boundary (docs/replay.md, "Values at the boundary"). Every payload in
 * the durable vocabulary is a string; user values cross into it as JSON and come back out with
 * a forgiving parse, because activities and clients may have stored raw text.
 */

/** Encodes a user value as the payload string: `undefined` becomes `"null"`. */
export function encodeValue(value: unknown): string {
  return JSON.stringify(value === undefined ? null : value);
}

/** Parses a payload as JSON, keeping the raw string when it is not JSON. */
export function decodeResult(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

/**
 * The typed variants' decoding: after the normal parse, a value that is still a string is
 * parsed once more (a value that was JSON-encoded twice comes back as the original value).
 */
export function decodeTypedValue(value: unknown): unknown {
  return typeof value === 'string' ? decodeResult(value) : value;
}

/** Orchestration input: empty string means no input; anything else must be JSON (throws otherwise). */
export function decodeOrchestrationInput(raw: string): unknown {
  return raw === '' ? undefined : (JSON.parse(raw) as unknown);
}

/** Activity input: JSON when it parses, else the raw string. */
export function decodeActivityInput(raw: string): unknown {
  return decodeResult(raw);
}

/**
 * The message of the Error thrown into a generator for a failed task: the error string, or,
 * when it parses as a non-string JSON value, that value re-stringified.
 */
export function errorMessageForGenerator(error: string): string {
  const parsed = decodeResult(error);
  return typeof parsed === 'string' ? parsed : JSON.stringify(parsed);
}

/** Size of a string in UTF-8 bytes (limits are expressed in bytes). */
export function utf8ByteLength(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}
