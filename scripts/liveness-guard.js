// Preloaded into every test process by scripts/run-tests.js (NODE_OPTIONS=--require). When the
// process exits, a runtime in it that found work through the idle safety fetch which no wake-up
// had announced (a lost wake-up, see src/runtime/liveness.ts) fails the test file: such work
// costs a user a ten-second stall, and a suite that passes while hiding it proves nothing.
'use strict';
const path = require('node:path');

const livenessModule = path.join(__dirname, '..', 'dist', 'src', 'runtime', 'liveness.js');

process.on('exit', () => {
  if (require.cache[livenessModule] === undefined) return;
  const hits = require(livenessModule).safetyFetchHits();
  const lost = hits.orchestrator.unannounced + hits.worker.unannounced;
  if (lost === 0) return;
  const file = path.relative(process.cwd(), process.argv[1] ?? '?');
  process.stderr.write(
    `liveness-guard: ${file}: ${lost} item(s) reached a worker only through the ` +
      `safety fetch (lost wake-ups): ${JSON.stringify(hits)}\n`,
  );
  process.exitCode = 1;
});
