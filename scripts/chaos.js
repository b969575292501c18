// Runs the long reliability tests (dist/test/chaos/*.chaos.js: process crashes, database restarts,
// the xmin-horizon measurement) one file after another, so that they do not compete for the CPU
// and disturb each other's timings. Each file goes through scripts/run-tests.js, which finds or
// starts the database exactly as `npm test` does. Build first (`npm run test:chaos` does).
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const dir = path.join(root, 'dist', 'test', 'chaos');
const files = fs.existsSync(dir)
  ? fs
      .readdirSync(dir)
      .filter((name) => name.endsWith('.chaos.js'))
      .sort()
  : [];
if (files.length === 0) {
  console.error('chaos: no compiled chaos tests found: run `npm run build` first');
  process.exit(1);
}
const started = Date.now();
let failed = 0;
for (const file of files) {
  const t0 = Date.now();
  const result = spawnSync(process.execPath, [path.join(__dirname, 'run-tests.js'), path.join(dir, file)], {
    stdio: 'inherit',
    cwd: root,
  });
  const ok = result.status === 0;
  if (!ok) failed += 1;
  console.log(`chaos: ${file} ${ok ? 'passed' : 'FAILED'} in ${Math.round((Date.now() - t0) / 1000)} s`);
}
console.log(`chaos: ${files.length - failed}/${files.length} passed in ${Math.round((Date.now() - started) / 1000)} s`);
process.exitCode = failed === 0 ? 0 : 1;
