/**
 * A private pg_auto_failover formation for tests: a monitor and two data nodes on free loopback
 * ports, in a temporary directory, created and run as the OS user `postgres` (pg_autoctl refuses
 * root) with `--auth trust --no-ssl`. Debian's packages `postgresql-15-auto-failover` and
 * `pg-auto-failover-cli` provide it (.ci/run installs them); {@link autoFailoverMissing} says why a
 * test must be skipped where they are absent.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmdirSync, rmSync, chownSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const PG_BIN = '/usr/lib/postgresql/15/bin';
const PG_AUTOCTL = '/usr/bin/pg_autoctl';
/** Where pg_autoctl keeps its runtime state (pid and state files) without an XDG runtime directory. */
const AUTOCTL_RUNTIME_ROOT = '/tmp/pg_autoctl';

/** Removes `directory` and its parents up to `root` (included) while they are empty. */
function removeEmptyParents(directory: string, root: string): void {
  for (let current = directory; current.startsWith(root); current = dirname(current)) {
    if (!existsSync(current) || readdirSync(current).length > 0) return;
    rmdirSync(current);
  }
}

/** Why the formation cannot run here, or null when it can. */
export function autoFailoverMissing(): string | null {
  if (!existsSync(PG_AUTOCTL))
    return 'pg_autoctl is not installed (apt-get install -y postgresql-15-auto-failover pg-auto-failover-cli)';
  if (!existsSync(join(PG_BIN, 'pg_ctl'))) return `PostgreSQL 15 binaries are missing (${PG_BIN})`;
  if (process.getuid?.() !== 0) return 'the formation runs as user postgres, which needs root to switch to';
  return null;
}

/** One data node of the formation. */
export interface FormationNode {
  name: string;
  port: number;
  pgdata: string;
}

/** A node's state as the monitor reports it. */
export interface NodeState {
  name: string;
  port: number;
  reportedState: string;
  assignedState: string;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export class AutoFailoverFormation {
  readonly nodes: FormationNode[];
  private readonly services = new Map<string, ChildProcess>();

  private constructor(
    readonly directory: string,
    readonly monitorPort: number,
    nodePorts: number[],
  ) {
    this.nodes = nodePorts.map((port, index) => ({
      name: `node_${index + 1}`,
      port,
      pgdata: join(directory, `node${index + 1}`),
    }));
  }

  /** The multi-host URI of the formation's database, libpq style. */
  get url(): string {
    return `postgres://postgres@${this.nodes.map((node) => `127.0.0.1:${node.port}`).join(',')}/durox?target_session_attrs=read-write`;
  }

  /** A single-node URL (for probes that must not follow the primary). */
  nodeUrl(node: FormationNode): string {
    return `postgres://postgres@127.0.0.1:${node.port}/durox`;
  }

  private get monitorUri(): string {
    return `postgres://autoctl_node@127.0.0.1:${this.monitorPort}/pg_auto_failover?sslmode=disable`;
  }

  /** Creates and starts the monitor and two data nodes, and waits for primary + secondary. */
  static async start(log: (line: string) => void = () => undefined): Promise<AutoFailoverFormation> {
    const directory = mkdtempSync(join(tmpdir(), 'durox-failover-'));
    chownSync(
      directory,
      Number((await run('id', ['-u', 'postgres'])).stdout.trim()),
      Number((await run('id', ['-g', 'postgres'])).stdout.trim()),
    );
    const formation = new AutoFailoverFormation(directory, await freePort(), [await freePort(), await freePort()]);
    try {
      const monitor = join(directory, 'monitor');
      await formation.pgAutoctl([
        'create',
        'monitor',
        '--pgdata',
        monitor,
        '--pgport',
        String(formation.monitorPort),
        '--hostname',
        '127.0.0.1',
        '--auth',
        'trust',
        '--no-ssl',
      ]);
      formation.runService('monitor', monitor);
      await formation.until(
        async () => {
          await formation.pgAutoctl(['show', 'state', '--pgdata', monitor]);
          return true;
        },
        30_000,
        'the monitor to answer',
      );
      for (const node of formation.nodes) {
        await formation.pgAutoctl([
          'create',
          'postgres',
          '--pgdata',
          node.pgdata,
          '--pgport',
          String(node.port),
          '--hostname',
          '127.0.0.1',
          '--auth',
          'trust',
          '--no-ssl',
          '--monitor',
          formation.monitorUri,
          '--dbname',
          'durox',
          '--name',
          node.name,
        ]);
        formation.runService(node.name, node.pgdata);
        log(`formation: ${node.name} created on port ${node.port}`);
      }
      await formation.until(
        async () => {
          const states = await formation.states();
          return (
            states.length === 2 &&
            states.some((s) => s.reportedState === 'primary' && s.assignedState === 'primary') &&
            states.some((s) => s.reportedState === 'secondary' && s.assignedState === 'secondary')
          );
        },
        120_000,
        'a primary and a secondary',
      );
      return formation;
    } catch (error) {
      await formation.destroy();
      throw error;
    }
  }

  /** The data nodes' states, read from the monitor. */
  async states(): Promise<NodeState[]> {
    const { stdout } = await this.pgAutoctl(['show', 'state', '--json', '--pgdata', join(this.directory, 'monitor')]);
    const rows = JSON.parse(stdout) as Array<{
      nodename: string;
      nodeport: number;
      current_group_state: string;
      assigned_group_state: string;
    }>;
    return rows.map((row) => ({
      name: row.nodename,
      port: row.nodeport,
      reportedState: row.current_group_state,
      assignedState: row.assigned_group_state,
    }));
  }

  /** The node the monitor has as primary (reported and assigned), or null during a failover. */
  async primary(): Promise<FormationNode | null> {
    const states = await this.states();
    const primary = states.find(
      (s) => ['primary', 'wait_primary', 'single'].includes(s.reportedState) && s.reportedState === s.assignedState,
    );
    return primary === undefined ? null : (this.nodes.find((node) => node.port === primary.port) ?? null);
  }

  /** A planned failover (`pg_autoctl perform failover`), which waits until it is done. */
  async performFailover(): Promise<void> {
    await this.pgAutoctl(['perform', 'failover', '--pgdata', join(this.directory, 'monitor'), '--wait', '120']);
  }

  /** Kills a node's pg_autoctl (so nothing restarts it) and its postmaster with SIGKILL. */
  killNode(node: FormationNode): void {
    const service = this.services.get(node.name);
    if (service?.pid !== undefined) {
      try {
        process.kill(-service.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    const pidFile = join(node.pgdata, 'postmaster.pid');
    if (existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
      try {
        if (pid > 0) process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  /** Stops every service and removes the directory. */
  async destroy(): Promise<void> {
    for (const node of this.nodes) this.killNode(node);
    const monitor = this.services.get('monitor');
    if (monitor?.pid !== undefined) {
      try {
        process.kill(-monitor.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    const monitorPid = join(this.directory, 'monitor', 'postmaster.pid');
    if (existsSync(monitorPid)) {
      try {
        process.kill(Number(readFileSync(monitorPid, 'utf8').split('\n')[0]), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    // Postgres children die with their postmaster; give them a moment before removing the files.
    await new Promise((resolve) => setTimeout(resolve, 500));
    rmSync(this.directory, { recursive: true, force: true });
    // pg_autoctl keeps each node's runtime state under /tmp/pg_autoctl/<the node's pgdata path>.
    rmSync(join(AUTOCTL_RUNTIME_ROOT, this.directory), { recursive: true, force: true });
    removeEmptyParents(dirname(join(AUTOCTL_RUNTIME_ROOT, this.directory)), AUTOCTL_RUNTIME_ROOT);
  }

  private environment(): NodeJS.ProcessEnv {
    return {
      PATH: `${PG_BIN}:/usr/bin:/bin`,
      PG_CONFIG: `${PG_BIN.replace(/\/bin$/, '')}/bin/pg_config`,
      PG_CTL: join(PG_BIN, 'pg_ctl'),
      XDG_CONFIG_HOME: join(this.directory, 'config'),
      XDG_DATA_HOME: join(this.directory, 'data'),
      HOME: this.directory,
    };
  }

  private pgAutoctl(args: string[]): Promise<{ stdout: string; stderr: string }> {
    return run('runuser', ['-u', 'postgres', '--', 'env', ...envArgs(this.environment()), PG_AUTOCTL, ...args], {
      cwd: this.directory,
      maxBuffer: 16 * 1024 * 1024,
    });
  }

  private runService(name: string, pgdata: string): void {
    const child = spawn(
      'runuser',
      ['-u', 'postgres', '--', 'env', ...envArgs(this.environment()), PG_AUTOCTL, 'run', '--pgdata', pgdata],
      {
        cwd: this.directory,
        detached: true,
        stdio: 'ignore',
      },
    );
    child.unref();
    this.services.set(name, child);
  }

  private async until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      try {
        if (await check()) return;
      } catch (error) {
        last = error;
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    throw new Error(
      `formation: timed out waiting for ${what}${last === undefined ? '' : `: ${last instanceof Error ? last.message : JSON.stringify(last)}`}`,
    );
  }
}

function envArgs(env: NodeJS.ProcessEnv): string[] {
  return Object.entries(env).map(([key, value]) => `${key}=${value ?? ''}`);
}
