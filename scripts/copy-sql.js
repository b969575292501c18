// tsc copies no .sql files: mirror src/store/sql (migrations, procedures, schema dump) next to the
// compiled store engine.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const from = path.join(__dirname, '..', 'src', 'store', 'sql');
const to = path.join(__dirname, '..', 'dist', 'src', 'store', 'sql');
fs.rmSync(to, { recursive: true, force: true });
fs.rmSync(path.join(__dirname, '..', 'dist', 'src', 'postgres', 'migrations'), { recursive: true, force: true });
fs.cpSync(from, to, {
  recursive: true,
  filter: (source) => fs.statSync(source).isDirectory() || source.endsWith('.sql'),
});
