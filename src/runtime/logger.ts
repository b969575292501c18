/**
 * Process-global logging (docs/runtime.md, "Logging, tracing and metrics").
 *
 * One logger per process, first writer wins: `initTracing` installs a file logger, and a Runtime
 * that starts while none is installed installs a stdout logger. Filtering follows duroxide:
 * `warn` globally and `<logLevel>` for orchestration and activity traces, unless `RUST_LOG` (the
 * variable duroxide reads, honoured for drop-in compatibility) says otherwise.
 */
import { closeSync, openSync, writeSync } from 'node:fs';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug' | 'trace';
export type LogFormat = 'json' | 'pretty' | 'compact';
export type LogFields = Record<string, string | number | boolean | null | undefined>;

/** Target of traces emitted by orchestration code. */
export const ORCHESTRATION_TARGET = 'duroxide::orchestration';
/** Target of traces emitted by activity code. */
export const ACTIVITY_TARGET = 'duroxide::activity';
/** Target of the runtime's own diagnostics. */
export const RUNTIME_TARGET = 'durox::runtime';

const SEVERITY: Record<LogLevel | 'off', number> = { off: 0, error: 1, warn: 2, info: 3, debug: 4, trace: 5 };

function levelOf(text: string): LogLevel | 'off' | null {
  const lower = text.trim().toLowerCase();
  return lower in SEVERITY ? (lower as LogLevel | 'off') : null;
}

/** A parsed `RUST_LOG`-style filter: a default level and per-target-prefix levels. */
class LogFilter {
  private readonly defaultLevel: number;
  private readonly targets: Array<[string, number]>;

  constructor(spec: string) {
    let defaultLevel = SEVERITY.error;
    const targets: Array<[string, number]> = [];
    for (const directive of spec
      .split(',')
      .map((d) => d.trim())
      .filter((d) => d !== '')) {
      const eq = directive.indexOf('=');
      if (eq < 0) {
        const level = levelOf(directive);
        if (level !== null) defaultLevel = SEVERITY[level];
        else targets.push([directive, SEVERITY.trace]);
      } else {
        const level = levelOf(directive.slice(eq + 1));
        if (level !== null) targets.push([directive.slice(0, eq), SEVERITY[level]]);
      }
    }
    targets.sort((a, b) => b[0].length - a[0].length);
    this.defaultLevel = defaultLevel;
    this.targets = targets;
  }

  enabled(level: LogLevel, target: string): boolean {
    const match = this.targets.find(([prefix]) => target === prefix || target.startsWith(`${prefix}::`));
    return SEVERITY[level] <= (match ? match[1] : this.defaultLevel);
  }
}

/** The filter duroxide installs for a given trace level, unless RUST_LOG overrides it. */
function filterSpec(logLevel: string): string {
  const fromEnv = process.env.RUST_LOG;
  if (fromEnv !== undefined && fromEnv.trim() !== '') return fromEnv;
  return `warn,${ORCHESTRATION_TARGET}=${logLevel},${ACTIVITY_TARGET}=${logLevel}`;
}

function formatFields(fields: LogFields): string {
  return Object.entries(fields)
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');
}

function formatLine(format: LogFormat, level: LogLevel, target: string, message: string, fields: LogFields): string {
  const timestamp = new Date().toISOString();
  if (format === 'json') {
    const clean: Record<string, unknown> = { message };
    for (const [k, v] of Object.entries(fields)) if (v !== undefined && v !== null) clean[k] = v;
    return `${JSON.stringify({ timestamp, level: level.toUpperCase(), target, fields: clean })}\n`;
  }
  const rendered = formatFields(fields);
  const head = `${timestamp} ${level.toUpperCase().padStart(5)} ${target}: ${message}`;
  if (format === 'compact') return `${head}${rendered === '' ? '' : ` ${rendered}`}\n`;
  return `${head}\n${rendered === '' ? '' : `    with ${rendered}\n`}`;
}

interface Logger {
  filter: LogFilter;
  format: LogFormat;
  write(line: string): void;
}

let installed: Logger | null = null;

/** Options of {@link initTracing}. */
export interface TracingOptions {
  /** File that log lines are appended to; its directory must exist. */
  logFile: string;
  /** Level of orchestration and activity traces. Default `info`. */
  logLevel?: string;
  /** `json`, `pretty` or `compact` (default `compact` for unknown strings, `pretty` when omitted). */
  logFormat?: 'json' | 'pretty' | 'compact';
}

function formatOf(value: unknown): LogFormat {
  if (value === undefined || value === null) return 'pretty';
  return value === 'json' || value === 'pretty' ? value : 'compact';
}

/**
 * Installs a process-global file logger. Call it before `runtime.start()`: the first logger
 * installed in a process stays (a started Runtime installs a stdout logger).
 *
 * @throws `Failed to open log file '<path>': …` when the file cannot be opened, and
 * `Failed to init tracing: …` when a global logger is already installed.
 */
export function initTracing(options: TracingOptions): void {
  if (options === null || typeof options !== 'object' || typeof options.logFile !== 'string') {
    throw new Error('Failed to init tracing: options.logFile must be a string');
  }
  if (installed !== null) {
    throw new Error('Failed to init tracing: a global logger has already been installed in this process');
  }
  let fd: number;
  try {
    // Like duroxide, a missing directory is an error: creating it would hide a mistyped path.
    fd = openSync(options.logFile, 'a');
  } catch (error) {
    throw new Error(`Failed to open log file '${options.logFile}': ${(error as Error).message}`, { cause: error });
  }
  process.once('exit', () => closeSync(fd));
  installed = {
    filter: new LogFilter(filterSpec(options.logLevel ?? 'info')),
    format: formatOf(options.logFormat),
    write: (line) => writeSync(fd, line),
  };
}

/** Installs the stdout logger unless a logger is already installed (first writer wins). */
export function installDefaultLogger(format: LogFormat, logLevel: string): void {
  if (installed !== null) return;
  installed = {
    filter: new LogFilter(filterSpec(logLevel)),
    format,
    write: (line) => void process.stdout.write(line),
  };
}

/** Writes one log record through the process-global logger, if its filter lets it through. */
export function log(level: LogLevel, target: string, message: string, fields: LogFields = {}): void {
  if (installed === null) installDefaultLogger('pretty', 'info');
  const logger = installed as Logger;
  if (!logger.filter.enabled(level, target)) return;
  logger.write(formatLine(logger.format, level, target, message, fields));
}
