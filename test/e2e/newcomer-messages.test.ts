/**
 * What a newcomer reads when something goes wrong: failure texts that keep the user's message and
 * frames without Durox's internals, readable non-Error throws, a WARN for duplicate registrations,
 * and a WARN plus a timeline mark for an external event that arrived before anyone waited for it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DROPPED_EVENT_NOTE, timeline } from '../../src/operator/timeline';
import {
  connect,
  durox,
  eventually,
  historyKinds,
  startRuntime,
  uid,
  type Client,
  type Provider,
  type Runtime,
} from './helpers';

// initTracing is process-global; node --test runs each file in its own process.
const logDir = mkdtempSync(join(tmpdir(), 'durox-newcomer-'));
const logFile = join(logDir, 'durox.log');
const DUROX_FRAMES = /[\\/]dist[\\/]src[\\/]|node:internal/;
let provider: Provider;
let runtime: Runtime;
let client: Client;

function logLines(): Array<{ level: string; fields: Record<string, unknown> }> {
  return readFileSync(logFile, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { level: string; fields: Record<string, unknown> });
}

before(async () => {
  durox.initTracing({ logFile, logFormat: 'json', logLevel: 'warn' });
  provider = await connect('newcomer');
  client = new durox.Client(provider);
  runtime = await startRuntime(provider, (rt) => {
    rt.registerActivity('Reserve', async () => {
      throw new Error('warehouse offline');
    });
    rt.registerActivity('ThrowsObject', () => {
      throw { code: 42, reason: 'no stock' };
    });
    rt.registerActivity('ThrowsNull', () => {
      throw null;
    });
    rt.registerActivity('Dup', () => 'first');
    rt.registerActivity('Dup', () => 'second');
    rt.registerOrchestration('Order', function* (ctx) {
      return yield ctx.scheduleActivity('Reserve', null);
    });
    rt.registerOrchestration('CatchActivity', function* (ctx, name: string) {
      try {
        return yield ctx.scheduleActivity(name, null);
      } catch (e) {
        return (e as Error).message;
      }
    });
    rt.registerOrchestration('OwnThrow', function* (ctx) {
      yield ctx.scheduleTimer(1);
      throw new Error('bad input from the user');
    });
    rt.registerOrchestration('ThrowValue', function* (ctx, value: unknown) {
      yield ctx.scheduleTimer(1);
      throw value;
    });
    rt.registerOrchestration('UsesDup', function* (ctx) {
      return yield ctx.scheduleActivity('Dup', null);
    });
    rt.registerOrchestration('LateWaiter', function* (ctx) {
      yield ctx.scheduleTimer(400);
      const r = yield ctx.race(ctx.waitForEvent('go'), ctx.scheduleTimer(200));
      return r.index === 0 ? 'got it' : 'never saw it';
    });
  });
});

after(async () => {
  await runtime.shutdown(100);
  await provider.close();
  rmSync(logDir, { recursive: true, force: true });
});

test("an activity's failure keeps its message, without Durox's frames", async () => {
  const id = uid('order');
  await client.startOrchestration(id, 'Order');
  const status = await client.waitForOrchestration(id, 10_000);
  assert.equal(status.status, 'Failed');
  assert.equal(status.error, 'Error: warehouse offline');
  // The user's own frames of the activity go to the WARN log line of the failure.
  const line = logLines().find(
    (l) => l.fields.instance_id === id && String(l.fields.message).includes('warehouse offline'),
  );
  assert.ok(line, 'a WARN line for the failed activity');
  assert.equal(line.level, 'WARN');
  assert.match(String(line.fields.message), /newcomer-messages\.test\.js/);
  assert.doesNotMatch(String(line.fields.message), DUROX_FRAMES);
});

test("an orchestration's own throw keeps its message and the user's frames, not Durox's", async () => {
  const id = uid('own');
  await client.startOrchestration(id, 'OwnThrow');
  const status = await client.waitForOrchestration(id, 10_000);
  assert.equal(status.status, 'Failed');
  assert.match(String(status.error), /^Error: bad input from the user\n\s+at .*newcomer-messages\.test\.js/);
  assert.doesNotMatch(String(status.error), DUROX_FRAMES);
});

test('non-Error throws are written readably: JSON for plain objects', async () => {
  const cases: Array<[unknown, string]> = [
    [{ code: 42 }, '{"code":42}'],
    [null, 'null was thrown (not an Error)'],
    ['plain text', 'plain text'],
  ];
  for (const [value, expected] of cases) {
    const id = uid('value');
    await client.startOrchestration(id, 'ThrowValue', value);
    const status = await client.waitForOrchestration(id, 10_000);
    assert.equal(status.error, expected);
  }
  const object = uid('activity-object');
  await client.startOrchestration(object, 'CatchActivity', 'ThrowsObject');
  assert.equal((await client.waitForOrchestration(object, 10_000)).output, '{"code":42,"reason":"no stock"}');
  const nothing = uid('activity-null');
  await client.startOrchestration(nothing, 'CatchActivity', 'ThrowsNull');
  assert.equal((await client.waitForOrchestration(nothing, 10_000)).output, 'null was thrown (not an Error)');
});

test('registering a name twice is accepted, the last one is used, and a WARN says so', async () => {
  const id = uid('dup');
  await client.startOrchestration(id, 'UsesDup');
  assert.equal((await client.waitForOrchestration(id, 10_000)).output, 'second');
  const warned = logLines().filter(
    (l) =>
      l.level === 'WARN' &&
      String(l.fields.message).includes("activity 'Dup' is registered twice; the last registration is used"),
  );
  assert.equal(warned.length, 1);
});

test('an event raised before the orchestration waits for it: a WARN and a mark in the timeline', async () => {
  const id = uid('early');
  await client.startOrchestration(id, 'LateWaiter');
  await eventually(
    async () => ((await historyKinds(client, id)).includes('TimerCreated') ? true : undefined),
    10_000,
    'first timer',
  );
  await client.raiseEvent(id, 'go', { ok: true });
  assert.equal((await client.waitForOrchestration(id, 10_000)).output, 'never saw it');
  const warned = logLines().find(
    (l) =>
      l.level === 'WARN' &&
      l.fields.instance_id === id &&
      String(l.fields.message).includes("event 'go' arrived before"),
  );
  assert.ok(warned, 'a WARN line naming the instance and the event');
  assert.match(String(warned.fields.message), /enqueueEvent/);
  const rows = timeline(await client.readExecutionHistory(id, 1));
  const event = rows.find((r) => r.kind === 'ExternalEvent');
  assert.ok(event);
  assert.equal(event.dropped, true);
  assert.ok(event.summary.endsWith(DROPPED_EVENT_NOTE));
  // A delivered event is not marked.
  assert.equal(rows.filter((r) => r.dropped).length, 1);
});
