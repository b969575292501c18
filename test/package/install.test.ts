/**
 * Durox as another project gets it: a clean copy of this repository (its tracked and untracked,
 * not ignored files: no node_modules, no dist) is installed into new projects as a folder, packed
 * with `npm pack`, and installed from a git URL, with no manual build (the `prepare` script).
 * The tarball must hold what the package needs and nothing pointing at missing files, and a strict
 * TypeScript project (`skipLibCheck: false`) must compile against its declarations.
 *
 * Slow (about one to three minutes: three installs and builds); run it alone with
 * `npm run build && node scripts/run-tests.js dist/test/package/install.test.js`. Dependencies
 * come from the local npm cache when present (`--prefer-offline`), else from the registry.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';

const ROOT = join(__dirname, '..', '..', '..');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const QUIET = ['--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'];
const FIRST_EXAMPLE = `
const { PGliteProvider, Client, Runtime } = require('durox');
(async () => {
  const provider = await PGliteProvider.inMemory();
  const runtime = new Runtime(provider, { logLevel: 'warn' });
  runtime.registerActivity('Greet', async (ctx, name) => \`Hello, \${name}!\`);
  runtime.registerOrchestration('HelloWorld', function* (ctx, name) { return yield ctx.scheduleActivity('Greet', name); });
  await runtime.start();
  const client = new Client(provider);
  await client.startOrchestration('hello-1', 'HelloWorld', 'World');
  console.log((await client.waitForOrchestration('hello-1', 30000)).output);
  await runtime.shutdown();
  await provider.close();
})().catch((e) => { console.error(e); process.exit(1); });
`;
const STRICT_TS = `
import { Client, PGliteProvider, Runtime, type OrchestrationContext } from 'durox';
import { DuroxMetrics } from 'durox/observability';

export async function main(): Promise<string> {
  const provider = await PGliteProvider.inMemory();
  const runtime = new Runtime(provider);
  runtime.registerActivity('Greet', async (_ctx, name: string) => \`Hello, \${name}!\`);
  runtime.registerOrchestration('HelloWorld', function* (ctx: OrchestrationContext, name: string) {
    return yield ctx.scheduleActivity('Greet', name);
  });
  await runtime.start();
  const status = await new Client(provider).waitForOrchestration('x', 1000).catch(() => null);
  new DuroxMetrics();
  await runtime.shutdown();
  await provider.close();
  return String(status?.output ?? '');
}
`;

function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): string {
  const result = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 300_000 });
  assert.equal(
    result.status,
    0,
    `${cmd} ${args.join(' ')} in ${cwd} failed (${result.status}):\n${result.stdout}\n${result.stderr}`,
  );
  return result.stdout;
}

function newProject(parent: string, name: string): string {
  const dir = join(parent, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true }, null, 2));
  return dir;
}

/** Every file under `dir`, relative. */
function walk(dir: string, base = dir): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = join(dir, name);
    return statSync(full).isDirectory() ? walk(full, base) : [full.slice(base.length + 1)];
  });
}

/** Problems of an installed package folder: source maps or map comments pointing at missing files. */
function danglingReferences(pkg: string): string[] {
  const problems: string[] = [];
  for (const file of walk(pkg)) {
    const full = join(pkg, file);
    if (file.endsWith('.js')) {
      const url = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(readFileSync(full, 'utf8'))?.[1];
      if (url !== undefined && !url.startsWith('data:') && !existsSync(resolve(dirname(full), url)))
        problems.push(`${file} -> ${url}`);
    }
    if (file.endsWith('.map')) {
      const map = JSON.parse(readFileSync(full, 'utf8')) as { sources: string[]; sourceRoot?: string };
      for (const source of map.sources) {
        const target = resolve(dirname(full), map.sourceRoot ?? '', source);
        if (!existsSync(target)) problems.push(`${file} -> ${source}`);
      }
    }
  }
  return problems;
}

describe('installing Durox into another project', { timeout: 600_000 }, () => {
  let work: string;
  let clone: string;
  let tarball: string;
  const timings: string[] = [];
  const timed = <T>(what: string, f: () => T): T => {
    const started = Date.now();
    try {
      return f();
    } finally {
      timings.push(`${what}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
  };

  before(() => {
    work = mkdtempSync(join(tmpdir(), 'durox-install-'));
    clone = join(work, 'durox');
    // A clean clone of the working tree: what git would check out, with uncommitted changes.
    const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: ROOT, encoding: 'utf8' })
      .split('\0')
      .filter((f) => f !== '' && existsSync(join(ROOT, f)));
    for (const file of files) cpSync(join(ROOT, file), join(clone, file), { recursive: true });
    assert.equal(existsSync(join(clone, 'node_modules')), false);
    assert.equal(existsSync(join(clone, 'dist')), false);
    const git = ['-c', 'user.name=durox-test', '-c', 'user.email=durox-test@example.invalid'];
    sh('git', ['init', '-q', '-b', 'main'], clone);
    sh('git', ['add', '-A'], clone);
    sh('git', [...git, 'commit', '-qm', 'clean copy'], clone);
  });

  after(() => {
    console.log(`timings: ${timings.join('; ')}`);
    rmSync(work, { recursive: true, force: true });
  });

  it('npm install <folder of a clean clone> builds it and the package works', () => {
    const app = newProject(work, 'app-folder');
    timed('npm install <folder>', () => sh(NPM, ['install', ...QUIET, clone], app));
    assert.ok(existsSync(join(clone, 'dist', 'src', 'index.js')), 'prepare built the clone');
    writeFileSync(join(app, 'first.js'), FIRST_EXAMPLE);
    assert.equal(timed('node first.js', () => sh(process.execPath, ['first.js'], app)).trim(), 'Hello, World!');
    assert.match(sh(join(app, 'node_modules', '.bin', 'durox'), ['--version'], app), /^\d+\.\d+\.\d+/);
  });

  it('npm pack makes a tarball with the compiled code, LICENSE, and no dangling references', () => {
    const out = timed('npm pack', () => sh(NPM, ['pack', ...QUIET, '--pack-destination', work], clone));
    tarball = join(work, out.trim().split('\n').pop()!.trim());
    assert.ok(existsSync(tarball), out);
    const listing = execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' }).split('\n').filter(Boolean);
    for (const needed of [
      'package/LICENSE',
      'package/README.md',
      'package/package.json',
      'package/dist/src/index.js',
      'package/dist/src/index.d.ts',
      'package/dist/src/bin/durox.js',
      'package/esm/index.mjs',
    ]) {
      assert.ok(listing.includes(needed), `${needed} is in the tarball`);
    }
    assert.ok(
      listing.some((f) => f.startsWith('package/dist/src/') && f.endsWith('.sql')),
      'the SQL migrations are in the tarball',
    );
    assert.equal(
      listing.filter(
        (f) => f.startsWith('package/dist/test/') || f.startsWith('package/test/') || f.includes('node_modules'),
      ).length,
      0,
    );
    const unpacked = join(work, 'unpacked');
    mkdirSync(unpacked);
    execFileSync('tar', ['xzf', tarball, '-C', unpacked]);
    assert.deepEqual(danglingReferences(join(unpacked, 'package')), []);
  });

  it('the tarball installs, runs, and a strict TypeScript project (skipLibCheck: false) compiles against it', () => {
    assert.ok(tarball, 'the pack test ran');
    const app = newProject(work, 'app-tarball');
    timed('npm install <tarball>', () => sh(NPM, ['install', ...QUIET, tarball, '@types/node@^20'], app));
    writeFileSync(join(app, 'first.js'), FIRST_EXAMPLE);
    assert.equal(sh(process.execPath, ['first.js'], app).trim(), 'Hello, World!');
    writeFileSync(join(app, 'main.ts'), STRICT_TS);
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          skipLibCheck: false,
          noEmit: true,
          target: 'ES2022',
          module: 'commonjs',
          moduleResolution: 'node',
          esModuleInterop: true,
          types: ['node'],
        },
        files: ['main.ts'],
      }),
    );
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    timed('tsc (strict, skipLibCheck false)', () => sh(process.execPath, [tsc, '-p', 'tsconfig.json'], app));
    // And with the package's exports map read by module resolution "node16".
    writeFileSync(
      join(app, 'tsconfig.node16.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          skipLibCheck: false,
          noEmit: true,
          target: 'ES2022',
          module: 'node16',
          moduleResolution: 'node16',
          types: ['node'],
        },
        files: ['main.ts'],
      }),
    );
    sh(process.execPath, [tsc, '-p', 'tsconfig.node16.json'], app);
  });

  it('npm install git+file://<clean clone> builds and installs it', () => {
    const app = newProject(work, 'app-git');
    timed('npm install git+file://', () => sh(NPM, ['install', ...QUIET, `git+file://${clone}#main`], app));
    writeFileSync(join(app, 'first.js'), FIRST_EXAMPLE);
    assert.equal(sh(process.execPath, ['first.js'], app).trim(), 'Hello, World!');
  });
});
