// Runs every compiled test (dist/test/**/*.test.js) with node's test runner against a real
// PostgreSQL: DATABASE_URL (default: the local server). If that server is not reachable it starts
// the local PostgreSQL cluster with pg_ctlcluster when available, otherwise an embedded
// PostgreSQL 18 for the duration of the run. Node 20's --test has no glob, so files are listed here.
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { Client } = require('pg');

const root = path.join(__dirname, '..');
const DEFAULT_URL = 'postgres://root@127.0.0.1:5432/test';
/** Test files that assert latency bounds: run one at a time with nothing else (see main). */
const ALONE = [path.join('liveness', 'burst-stress.test.js')];

function findTests(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) return findTests(full);
      return entry.isFile() && entry.name.endsWith('.test.js') ? [full] : [];
    })
    .sort();
}

async function reachable(url) {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

function startClusters() {
  const probe = spawnSync('sh', ['-c', 'command -v pg_ctlcluster'], { encoding: 'utf8' });
  if (probe.status !== 0 || !fs.existsSync('/etc/postgresql')) return false;
  for (const version of fs.readdirSync('/etc/postgresql')) {
    spawnSync('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'start'], { stdio: 'inherit' });
  }
  return true;
}

async function main() {
  const args = process.argv.slice(2);
  const files = args.length > 0 ? args : findTests(path.join(root, 'dist', 'test'));
  if (files.length === 0) throw new Error('no compiled tests found: run `npm run build` first');
  const guard = `--require ${JSON.stringify(path.join(__dirname, 'liveness-guard.js'))}`;
  const env = {
    ...process.env,
    DATABASE_URL: process.env.DATABASE_URL || DEFAULT_URL,
    NODE_OPTIONS: [process.env.NODE_OPTIONS, guard].filter(Boolean).join(' '),
  };
  let embedded;
  if (!(await reachable(env.DATABASE_URL))) {
    if (!(startClusters() && (await reachable(env.DATABASE_URL)))) {
      const { startEmbeddedPostgres } = require(path.join(root, 'dist', 'test', 'helpers', 'embedded-postgres.js'));
      embedded = await startEmbeddedPostgres();
      env.DATABASE_URL = embedded.url;
      console.log(`run-tests: ${process.env.DATABASE_URL || DEFAULT_URL} unreachable, using an embedded PostgreSQL 18`);
    }
  }
  // Timing-bound tests run alone after the others, so that no other test file shares the two
  // cores with them (their bound is about this machine, not about a machine also running tests).
  const alone = args.length > 0 ? [] : files.filter((f) => ALONE.some((name) => f.endsWith(name)));
  let code = await runNodeTests(
    files.filter((f) => !alone.includes(f)),
    env,
  );
  for (const file of alone) {
    console.log(`run-tests: ${path.relative(root, file)} alone`);
    code = Math.max(code, await runNodeTests([file], env));
  }
  if (args.length === 0) {
    // The end-to-end suite once more on the embedded store (test/e2e/helpers.ts reads
    // DUROX_E2E_STORE). Two files need one store shared by several processes or providers,
    // which an in-memory PGlite cannot be: they run on the server only.
    const serverOnly = new Set(['crash-recovery.test.js', 'multi-runtime.test.js']);
    const e2e = findTests(path.join(root, 'dist', 'test', 'e2e')).filter((f) => !serverOnly.has(path.basename(f)));
    console.log(`run-tests: the end-to-end suite on PGlite (${e2e.length} files)`);
    code = Math.max(code, await runNodeTests(e2e, { ...env, DUROX_E2E_STORE: 'pglite' }));
  }
  if (embedded) await embedded.stop();
  const missing = missingRequirements(files);
  if (missing.length > 0) {
    // Said last, so it is what a newcomer sees: the failing test above is explained here.
    console.error(`\nrun-tests: some tests cannot pass on this machine because something is missing:`);
    for (const line of missing) console.error(`  - ${line}`);
    code = code || 1;
  }
  process.exitCode = code;
}

/** What the selected tests need that this machine lacks, each with how to install it. */
function missingRequirements(files) {
  const missing = [];
  const browser = files.some((f) => path.basename(f) === 'browser.test.js');
  const chromium = process.env.DUROX_CHROMIUM || '/usr/bin/chromium';
  if (browser && !fs.existsSync(chromium)) {
    missing.push(
      `chromium (${chromium}), for the dashboard's browser test (test/dashboard/browser.test.ts): ` +
        'install it with `sudo apt-get install -y chromium` (Debian/Ubuntu; .ci/run does this), ' +
        'or point DUROX_CHROMIUM at a Chromium binary',
    );
  }
  return missing;
}

// A test that awaits forever (a lost wake-up, a leaked runtime) fails after this instead of
// holding the whole run; the longest test (a chaos measurement) takes about two minutes.
const TEST_TIMEOUT_MS = 10 * 60_000;

function runNodeTests(files, env) {
  const args = ['--test', `--test-timeout=${TEST_TIMEOUT_MS}`, ...files];
  const child = spawn(process.execPath, args, { stdio: 'inherit', env, cwd: root });
  return new Promise((resolve) => child.on('exit', (status, signal) => resolve(status ?? (signal ? 1 : 0))));
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
