// npm runs `prepare` on `npm install` in this folder, on `npm pack`, when a git URL is installed,
// and when another project runs `npm install <path of this folder>`. In that last case npm links
// the folder without installing its devDependencies, so the compiler is missing: install them
// here first, then build. A clean clone therefore works as a dependency with no manual step.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function run(args) {
  const result = spawnSync(npm, args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

if (!fs.existsSync(path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'))) {
  console.log('durox: installing the build tools (devDependencies) to compile the package');
  const lock = fs.existsSync(path.join(root, 'package-lock.json'));
  run([lock ? 'ci' : 'install', '--ignore-scripts', '--include=dev', '--no-audit', '--no-fund', '--prefer-offline']);
}
run(['run', 'build', '--silent']);
