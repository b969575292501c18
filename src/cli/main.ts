/**
 * The durox command line: operate a Durox store (PostgreSQL schema or embedded data directory).
 * Exit codes are listed in src/operator/errors.ts. Run `durox --help` for the commands. The
 * executable (src/bin/durox.ts) adds the commands of other modules, such as the dashboard's.
 */
import { Command, CommanderError } from 'commander';
import { registerCommands } from './commands';
import { EXIT_OK, EXIT_USAGE, exitCodeOf } from '../operator/errors';
import { registerScheduleCommands } from './schedules-command';
import { registerLimitCommands } from './limits-command';
import { printable } from './output';

function packageVersion(): string {
  // dist/src/cli/main.js -> the package root; require keeps it working from the installed package.
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a JSON file outside rootDir
  return (require('../../../package.json') as { version: string }).version;
}

/** Adds commands to the program. */
export type CommandRegistration = (program: Command) => void;

/**
 * The program with the CLI's commands and `more`; `exitOverride` keeps commander from exiting on
 * its own.
 */
export function buildProgram(more: readonly CommandRegistration[] = []): Command {
  const program = new Command('durox')
    .description('Operate Durox durable orchestrations stored in PostgreSQL')
    .version(packageVersion(), '-V, --version', 'print the version of Durox')
    .option('--database <url>', 'PostgreSQL URL (default: $DATABASE_URL, or its alias $DUROX_DATABASE_URL)')
    .option('--schema <name>', 'schema holding the Durox tables (default: $DUROX_SCHEMA or public)')
    .option('--data-dir <dir>', 'embedded store directory instead of a PostgreSQL server')
    .option('--json', 'print JSON for scripts instead of tables', false)
    .option('--no-color', 'never colour the output')
    .showHelpAfterError()
    .exitOverride();
  registerCommands(program);
  registerScheduleCommands(program);
  registerLimitCommands(program);
  for (const register of more) register(program);
  for (const command of program.commands) command.exitOverride();
  return program;
}

/** Runs the CLI (with the commands of `more`) on `argv` and returns the exit code. */
export async function main(argv: string[], more: readonly CommandRegistration[] = []): Promise<number> {
  try {
    await buildProgram(more).parseAsync(argv, { from: 'user' });
    return EXIT_OK;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander already printed the message (or the help / version text).
      return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    const message = error instanceof Error ? error.message : String(error);
    const code = exitCodeOf(error);
    // Scripts asking for --json get the failure as JSON too (on stderr, so stdout stays empty).
    if (argv.includes('--json')) process.stderr.write(`${JSON.stringify({ error: message, exitCode: code })}\n`);
    else process.stderr.write(`durox: ${printable(message)}\n`);
    return code;
  }
}
