// tsc copies no .sql files: mirror the migrations next to the compiled provider.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const from = path.join(__dirname, '..', 'src', 'postgres', 'migrations');
const to = path.join(__dirname, '..', 'dist', 'src', 'postgres', 'migrations');
fs.rmSync(to, { recursive: true, force: true });
fs.mkdirSync(to, { recursive: true });
for (const file of fs.readdirSync(from)) {
  if (file.endsWith('.sql')) fs.copyFileSync(path.join(from, file), path.join(to, file));
}
