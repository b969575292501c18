import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect, durox, startRuntime, uid, type Client, type Provider, type Runtime } from './helpers';

let provider: Provider;
let runtime: Runtime;
let client: Client;

before(async () => {
  provider = await connect('badinput');
  client = new durox.Client(provider);
  runtime = await startRuntime(provider, (rt) => {
    rt.registerActivity('Echo', (_ctx, v: unknown) => v);
    rt.registerOrchestration('YieldsNumber', function* () {
      yield 42 as never;
      return 'unreachable';
    });
    rt.registerOrchestration('YieldsPromise', function* () {
      yield Promise.resolve(1) as never;
      return 'unreachable';
    });
    rt.registerOrchestration('CircularActivityInput', function* (ctx) {
      const circular: Record<string, unknown> = {};
      circular.self = circular;
      return yield ctx.scheduleActivity('Echo', circular);
    });
  });
});

after(async () => {
  await runtime.shutdown(100);
  await provider.close();
});

function circular(): unknown {
  const value: Record<string, unknown> = { a: 1 };
  value.self = value;
  return value;
}

/** `provider` with every method call recorded by name (the calls that reached the store). */
function recordingCalls(target: Provider): { provider: Provider; calls: string[] } {
  const calls: string[] = [];
  const recording = new Proxy(target, {
    get(object, key, receiver) {
      const value: unknown = Reflect.get(object, key, receiver);
      if (typeof value !== 'function' || typeof key !== 'string') return value;
      return (...args: unknown[]): unknown => {
        calls.push(key);
        return (value as (...a: unknown[]) => unknown).apply(object, args);
      };
    },
  });
  return { provider: recording, calls };
}

test('inputs JSON cannot encode are refused before anything is enqueued', async () => {
  // A Client whose every store call is recorded: a refusal must come before any of them.
  const store = recordingCalls(provider);
  const client = new durox.Client(store.provider);
  const id = uid('circular');
  await assert.rejects(client.startOrchestration(id, 'YieldsNumber', circular()), (error: Error) => {
    assert.match(
      error.message,
      new RegExp(`^startOrchestration \\(instance '${id}'\\): input cannot be encoded as JSON`),
    );
    return true;
  });
  const big = uid('bigint');
  await assert.rejects(client.startOrchestration(big, 'YieldsNumber', { n: 1n }), /BigInt/);
  await assert.rejects(
    client.raiseEvent(id, 'evt', circular()),
    /^Error: raiseEvent \(instance '.*'\): event data cannot be encoded as JSON/,
  );
  await assert.rejects(client.enqueueEvent(id, 'q', 5n), /enqueueEvent .*message data cannot be encoded as JSON/);
  assert.deepEqual(store.calls, [], 'no refused call reached the store');
  assert.equal((await client.getStatus(id)).status, 'NotFound');
  assert.equal((await client.getStatus(big)).status, 'NotFound');
});

test('malformed instance ids and names are refused with clear errors', async () => {
  await assert.rejects(client.startOrchestration('', 'X'), {
    message: 'startOrchestration: instance id must not be empty',
  });
  await assert.rejects(client.startOrchestration('a\u0000b', 'X'), /instance id must not contain NUL characters/);
  await assert.rejects(
    client.startOrchestration('x'.repeat(513), 'X'),
    /instance id is 513 bytes long; the limit is 512 bytes/,
  );
  await assert.rejects(
    client.startOrchestration('ok', 42 as unknown as string),
    /orchestration name must be a string, got number/,
  );
  await assert.rejects(
    client.startOrchestration('flow-bad', 'X', null, { flowKey: '' }),
    /startOrchestration \(instance 'flow-bad'\): flowKey must not be empty/,
  );
  await assert.rejects(
    client.startOrchestration('flow-bad', 'X', null, { flowKey: 'k'.repeat(513) }),
    /flowKey is 513 bytes long; the limit is 512 bytes/,
  );
  await assert.rejects(
    client.startOrchestration('flow-bad', 'X', null, 'tenant' as never),
    /startOrchestration \(instance 'flow-bad'\): options must be an object/,
  );
  assert.equal((await client.getStatus('flow-bad')).status, 'NotFound', 'a refused start writes nothing');
  await assert.rejects(client.raiseEvent('ok', ''), /raiseEvent \(instance 'ok'\): event name must not be empty/);
  await assert.rejects(client.getStatus(undefined as unknown as string), /getStatus: instance id must be a string/);
  await assert.rejects(client.readExecutionHistory('ok', 0), /execution id must be a positive integer/);
});

test('yielding something that is not a task fails the orchestration clearly', async () => {
  const id = uid('yields-number');
  await client.startOrchestration(id, 'YieldsNumber');
  const status = await client.waitForOrchestration(id, 10_000);
  assert.equal(status.status, 'Failed');
  assert.match(String(status.error), /invalid step result/);
  assert.match(String(status.error), /number 42/);

  const promiseId = uid('yields-promise');
  await client.startOrchestration(promiseId, 'YieldsPromise');
  assert.match(String((await client.waitForOrchestration(promiseId, 10_000)).error), /Promise/);
});

test('an activity input that JSON cannot encode fails the orchestration', async () => {
  const id = uid('circular-activity');
  await client.startOrchestration(id, 'CircularActivityInput');
  const status = await client.waitForOrchestration(id, 10_000);
  assert.equal(status.status, 'Failed');
  assert.match(String(status.error), /circular/i);
});

test('a runtime refuses malformed options', () => {
  assert.throws(() => new durox.Runtime(provider, { workerConcurrency: -1 }), /workerConcurrency/);
  assert.throws(() => new durox.Runtime({} as never), /provider must be a Durox provider/);
  assert.throws(() => new durox.Client(null as never), /provider must be a Durox provider/);
});
