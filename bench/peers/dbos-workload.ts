/**
 * The peer scenario's DBOS Transact side (`npm run bench -- --peer dbos`). DBOS is not a
 * dependency of Durox: the first run installs `@dbos-inc/dbos-sdk@5` into a cache folder outside
 * the package's dependencies and loads it from there, typed loosely, so that `tsc` builds without
 * it. The workloads are the three of the peer scenario, written as the DBOS docs show them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { PeerSystem } from '../peer';

/** The npm version range installed on first use. */
export const DBOS_RANGE = '@dbos-inc/dbos-sdk@5';

/**
 * Where DBOS is installed: DUROX_BENCH_PEERS_DIR/dbos, else `node_modules/.cache/durox-bench-peers/dbos`
 * in the package (gone with node_modules, like any cache there).
 */
export function dbosCacheDir(): string {
  const base =
    process.env.DUROX_BENCH_PEERS_DIR ??
    join(__dirname, '..', '..', '..', 'node_modules', '.cache', 'durox-bench-peers');
  return join(base, 'dbos');
}

/** The loaded SDK (loosely typed: no compile-time dependency on DBOS). */
export interface LoadedDbos {
  DBOS: any;
  version: string;
  pgVersion: string;
  dir: string;
  /** True when this run installed it. */
  installedNow: boolean;
}

/** Installs DBOS into its cache folder if it is not there yet, then loads it from there. */
export function loadDbos(): LoadedDbos {
  const dir = dbosCacheDir();
  const manifest = join(dir, 'node_modules', '@dbos-inc', 'dbos-sdk', 'package.json');
  let installedNow = false;
  if (!existsSync(manifest)) {
    mkdirSync(dir, { recursive: true });
    const own = join(dir, 'package.json');
    if (!existsSync(own))
      writeFileSync(
        own,
        `${JSON.stringify({ name: 'durox-bench-peer-dbos', private: true, description: 'Cache of the bench peer DBOS Transact; not a dependency of durox' }, null, 2)}\n`,
      );
    process.stdout.write(`installing ${DBOS_RANGE} into ${dir} (first use)\n`);
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const result = spawnSync(
      npm,
      ['install', '--prefix', dir, '--no-save', '--no-audit', '--no-fund', '--loglevel=error', DBOS_RANGE],
      { stdio: 'inherit' },
    );
    if (result.status !== 0 || !existsSync(manifest))
      throw new Error(
        `npm install ${DBOS_RANGE} into ${dir} failed (exit ` +
          `${String(result.status)}${result.error ? `: ${result.error.message}` : ''})`,
      );
    installedNow = true;
  }
  const load = createRequire(join(dir, 'package.json'));
  const version = (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version;
  const pgVersion = (load('pg/package.json') as { version: string }).version;
  const sdk = load('@dbos-inc/dbos-sdk') as { DBOS: any };
  return { DBOS: sdk.DBOS, version, pgVersion, dir, installedNow };
}

/** Workflows are registered once per process, before the first launch. */
let workflows: { one: any; seq5: any; fan: any } | null = null;

function register(DBOS: any): NonNullable<typeof workflows> {
  if (workflows !== null) return workflows;
  const noop = async (value: number): Promise<number> => value;
  workflows = {
    one: DBOS.registerWorkflow(async (input: number) => DBOS.runStep(() => noop(input), { name: 'noop' }), {
      name: 'durox_bench_one',
    }),
    seq5: DBOS.registerWorkflow(
      async (input: number) => {
        let value = input;
        for (let i = 0; i < 5; i += 1) value = await DBOS.runStep(() => noop(value), { name: 'noop' });
        return value;
      },
      { name: 'durox_bench_seq5' },
    ),
    // Steps started in order (promises created in a loop), gathered with Promise.allSettled.
    fan: DBOS.registerWorkflow(
      async (width: number) => {
        const steps: Array<Promise<number>> = [];
        for (let i = 0; i < width; i += 1) steps.push(DBOS.runStep(() => noop(i), { name: 'noop' }));
        const settled = await Promise.allSettled(steps);
        const failed = settled.find((s) => s.status === 'rejected');
        if (failed !== undefined) throw failed.reason;
        return settled.length;
      },
      { name: 'durox_bench_fan' },
    ),
  };
  return workflows;
}

/**
 * DBOS with its defaults, one fresh system schema per `open` on the database it is given (its
 * migrations run at launch, before anything is measured).
 */
export function dbosSystem(dbos: LoadedDbos): PeerSystem {
  const { DBOS } = dbos;
  const wf = register(DBOS);
  let opened = 0;
  const start = async (workflow: any, input: number): Promise<{ getResult(): Promise<unknown> }> =>
    DBOS.startWorkflow(workflow)(input);
  return {
    name: 'DBOS',
    async open(systemDatabaseUrl) {
      opened += 1;
      DBOS.setConfig({
        name: 'durox-bench',
        systemDatabaseUrl,
        systemDatabaseSchemaName: `dbos_${process.pid}_${opened}`,
        logLevel: 'warn',
      });
      await DBOS.launch();
    },
    async close() {
      await DBOS.shutdown();
    },
    async oneActivity(i) {
      const result = await (await start(wf.one, i)).getResult();
      if (result !== i) throw new Error(`DBOS one-step workflow returned ${String(result)}`);
    },
    async sequential5(count) {
      const handles = await Promise.all(Array.from({ length: count }, (_, i) => start(wf.seq5, i)));
      const results = await Promise.all(handles.map((h) => h.getResult()));
      if (results.some((r, i) => r !== i)) throw new Error('a DBOS 5-step workflow returned a wrong value');
    },
    async fanOut(width) {
      const result = await (await start(wf.fan, width)).getResult();
      if (result !== width) throw new Error(`DBOS fan-out returned ${String(result)}`);
    },
    calls: () => null,
  };
}
