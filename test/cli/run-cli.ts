/** Runs the built `durox` CLI as a child process against the test database, as a user would. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';

/** The built CLI entry point. */
export const BIN = join(__dirname, '..', '..', 'src', 'bin', 'durox.js');
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/test';

/** What one CLI run printed, and its exit code. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `durox <args>` with only PATH, the database URL and `env` in its environment. */
export function durox(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { PATH: process.env.PATH, DUROX_DATABASE_URL: DATABASE_URL, ...env }, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
