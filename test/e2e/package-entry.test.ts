import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { durox } from './helpers';

test("require('durox') exposes the duroxide module exports", () => {
  for (const name of [
    'Runtime',
    'Client',
    'PostgresProvider',
    'OrchestrationContext',
    'ActivityContext',
    'initTracing',
  ]) {
    assert.equal(typeof (durox as unknown as Record<string, unknown>)[name], 'function', name);
  }
  assert.equal(durox.MAX_WORKER_TAGS, 5);
  assert.equal(durox.MAX_TAG_NAME_BYTES, 256);
  assert.equal(durox.MAX_KV_KEYS, 150);
  assert.equal(durox.MAX_KV_VALUE_BYTES, 65536);
});

test("import { Runtime } from 'durox' works from ESM", () => {
  const fixture = join(__dirname, '..', '..', '..', 'test', 'e2e', 'fixtures', 'esm-import.mjs');
  const output = JSON.parse(execFileSync(process.execPath, [fixture], { encoding: 'utf8' }));
  assert.deepEqual(output, {
    kinds: {
      Client: 'function',
      Runtime: 'function',
      PostgresProvider: 'function',
      OrchestrationContext: 'function',
      ActivityContext: 'function',
      initTracing: 'function',
    },
    MAX_KV_KEYS: 150,
    sameAsDefault: true,
  });
});
