/**
 * What the CLI prints: aligned tables and key/value blocks for people, one JSON document for
 * scripts (`--json`). Colours only when stdout is a terminal and NO_COLOR is unset.
 */

/** Where and how a command prints. */
export interface Output {
  readonly json: boolean;
  readonly color: boolean;
  /** Prints one line to stdout. */
  line(text?: string): void;
  /** Prints `value` as JSON (the whole stdout of a `--json` run is this one document). */
  data(value: unknown): void;
}

/** Output on process.stdout, deciding on colours from the terminal and the environment. */
export function consoleOutput(
  json: boolean,
  colorOption: boolean,
  stream: NodeJS.WriteStream = process.stdout,
): Output {
  const color =
    colorOption && !json && stream.isTTY === true && process.env.NO_COLOR === undefined && process.env.TERM !== 'dumb';
  return {
    json,
    color,
    line: (text = '') => void stream.write(`${text}\n`),
    data: (value) => void stream.write(`${JSON.stringify(value, null, 2)}\n`),
  };
}

const CODES = { red: 31, green: 32, yellow: 33, blue: 34, gray: 90, bold: 1 } as const;
export type Colour = keyof typeof CODES;

/** `text` in `colour` when the output has colours. */
export function paint(out: Output, colour: Colour, text: string): string {
  return out.color ? `\u001b[${CODES[colour]}m${text}\u001b[0m` : text;
}

/** Colour of an execution status. */
export function statusColour(status: string): Colour {
  if (status === 'Completed') return 'green';
  if (status === 'Failed') return 'red';
  if (status === 'Running') return 'yellow';
  return 'blue';
}

/** Removes control characters so stored text cannot move the cursor or recolour a terminal. */
export function printable(text: string): string {
  return text.replace(
    // eslint-disable-next-line no-control-regex -- matching control characters is the point
    /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** Column of {@link table}: a header and how to render a row (plain text, colour applied after padding). */
export interface Column<T> {
  header: string;
  value(row: T): string;
  colour?(row: T): Colour | undefined;
  /** Truncate longer values to this many characters. */
  max?: number;
}

/** Prints rows as an aligned table with a header line. */
export function table<T>(out: Output, rows: T[], columns: Array<Column<T>>): void {
  const cells = rows.map((row) =>
    columns.map((c) => {
      const text = printable(c.value(row)).replace(/\n/g, ' ');
      return c.max !== undefined && text.length > c.max ? `${text.slice(0, c.max - 1)}…` : text;
    }),
  );
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((r) => r[i].length)));
  out.line(
    columns
      .map((c, i) => paint(out, 'bold', c.header.padEnd(widths[i])))
      .join('  ')
      .trimEnd(),
  );
  rows.forEach((row, r) => {
    const line = columns.map((c, i) => {
      const padded = cells[r][i].padEnd(widths[i]);
      const colour = c.colour?.(row);
      return colour === undefined ? padded : paint(out, colour, padded);
    });
    out.line(line.join('  ').trimEnd());
  });
}

/** Prints `label: value` lines with aligned labels; undefined values are skipped, a colour paints the value. */
export function fields(out: Output, pairs: Array<[string, string | undefined, Colour?]>): void {
  const shown = pairs.filter((p): p is [string, string, Colour?] => p[1] !== undefined);
  const width = Math.max(0, ...shown.map(([k]) => k.length));
  for (const [label, value, colour] of shown) {
    const text = printable(value).replace(/\n/g, `\n${' '.repeat(width + 2)}`);
    out.line(
      `${paint(out, 'gray', `${label}:`.padEnd(width + 1))} ${colour === undefined ? text : paint(out, colour, text)}`,
    );
  }
}

/** ISO-8601 text of epoch ms. */
export function isoTime(ms: number | undefined | null): string {
  return ms === undefined || ms === null ? '' : new Date(ms).toISOString();
}
