import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { connect, durox, startRuntime, uid, type Client, type Provider, type Runtime } from './helpers';

// initTracing is process-global; node --test runs each file in its own process.
const logDir = mkdtempSync(join(tmpdir(), 'durox-log-'));
const logFile = join(logDir, 'durox.log');
let provider: Provider;
let runtime: Runtime;
let client: Client;

before(async () => {
  assert.throws(
    () => durox.initTracing({ logFile: '/dev/null/cannot/durox.log' }),
    /^Error: Failed to open log file '\/dev\/null\/cannot\/durox.log': /,
  );
  // A directory that does not exist is refused, as duroxide does, and not created.
  const missing = join(logDir, 'nested', 'durox.log');
  assert.throws(
    () => durox.initTracing({ logFile: missing }),
    /^Error: Failed to open log file '.*nested\/durox\.log': .*ENOENT/,
  );
  assert.equal(existsSync(join(logDir, 'nested')), false);
  durox.initTracing({ logFile, logFormat: 'json', logLevel: 'info' });
  provider = await connect('logging');
  client = new durox.Client(provider);
  runtime = await startRuntime(
    provider,
    (rt) => {
      rt.registerActivity('Speak', (ctx, word: string) => {
        ctx.traceInfo(`activity says ${word}`);
        ctx.traceDebug('activity debug is filtered out');
        return word;
      });
      rt.registerOrchestration('Chatty', function* (ctx) {
        ctx.traceInfo('orchestration begins');
        yield ctx.scheduleActivity('Speak', 'hi');
        ctx.traceWarn('orchestration middle');
        yield ctx.scheduleTimer(1);
        return 'done';
      });
    },
    { logLevel: 'info' },
  );
});

after(async () => {
  await runtime.shutdown(100);
  await provider.close();
  rmSync(logDir, { recursive: true, force: true });
});

test('a second logger cannot be installed (first writer wins)', () => {
  assert.throws(() => durox.initTracing({ logFile: `${logFile}.2` }), /^Error: Failed to init tracing: /);
});

test('orchestration and activity traces go to the file once, with their fields', async () => {
  const id = uid('chatty');
  await client.startOrchestration(id, 'Chatty');
  assert.equal((await client.waitForOrchestration(id, 10_000)).output, 'done');
  const lines = readFileSync(logFile, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { level: string; target: string; fields: Record<string, unknown> });
  const mine = lines.filter((l) => l.fields.instance_id === id);
  const messages = mine.map((l) => l.fields.message);
  assert.equal(messages.filter((m) => m === 'orchestration begins').length, 1, 'replayed traces are suppressed');
  assert.equal(messages.filter((m) => m === 'orchestration middle').length, 1);
  assert.ok(!messages.includes('activity debug is filtered out'));
  const activity = mine.find((l) => l.fields.message === 'activity says hi');
  assert.ok(activity);
  assert.equal(activity.target, 'duroxide::activity');
  assert.equal(activity.level, 'INFO');
  assert.equal(activity.fields.activity_name, 'Speak');
  const orchestration = mine.find((l) => l.fields.message === 'orchestration middle');
  assert.equal(orchestration?.target, 'duroxide::orchestration');
  assert.equal(orchestration?.level, 'WARN');
  assert.equal(orchestration?.fields.orchestration_name, 'Chatty');
});
