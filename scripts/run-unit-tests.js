// `npm run test:unit`: the unit tests of the core and of the runtime's pieces, which need no
// database, no browser and no other process's store (under 30 s). Runs the compiled files of
// dist/test with node's test runner; `npm test` runs them again with everything else.
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const compiled = path.join(__dirname, '..', 'dist', 'test');
/** Folders whose every test file is a unit test. */
const UNIT_FOLDERS = ['core', 'runtime'];
/** Unit tests of runtime pieces that live beside the suites they belong to. */
const UNIT_FILES = [path.join('performance', 'queue-gate.test.js'), path.join('liveness', 'safety-fetch.test.js')];

function testsUnder(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) return testsUnder(full);
      return entry.isFile() && entry.name.endsWith('.test.js') ? [full] : [];
    })
    .sort();
}

const files = [
  ...UNIT_FOLDERS.flatMap((folder) => testsUnder(path.join(compiled, folder))),
  ...UNIT_FILES.map((file) => path.join(compiled, file)).filter((file) => fs.existsSync(file)),
];
if (files.length === 0) {
  console.error('run-unit-tests: no compiled unit tests found: run `npm run build` first');
  process.exit(1);
}
const child = spawn(process.execPath, ['--test', ...files], { stdio: 'inherit' });
child.on('exit', (status, signal) => {
  process.exitCode = status ?? (signal ? 1 : 0);
});
