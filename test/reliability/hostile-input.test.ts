/**
 * Hostile input, property-based (fast-check): instance ids, orchestration, activity, event and
 * queue names, versions, payloads and schema names. Each value is either stored and read back
 * exactly or rejected with an error that names the operation (and the limit, for limits), and a
 * rejected call writes nothing. Every statement the provider sends is recorded and must be a fixed
 * procedure call with placeholders only: no SQL text is ever built from the input.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { MAX_NAME_BYTES, MAX_PAYLOAD_BYTES } from '../../src/core/limits';
import { applyMigrations } from '../../src/store/migrations';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { ProcedureProvider } from '../../src/store/procedure-provider';
import { CountingExecutor } from '../helpers/counting-executor';
import { DATABASE_URL, durox, type Runtime } from '../e2e/helpers';
import { instanceProblems } from '../chaos/invariants';
import { adminConnection, foreignStatements, recordedProvider } from './support';
import { dropTestSchema } from '../helpers/postgres-harness';

type Recorded = Awaited<ReturnType<typeof recordedProvider>>;
/** Schema with a running runtime: round trips through real executions. */
let setup: Recorded;
let client: InstanceType<typeof durox.Client>;
/** Schema without a runtime: its queues change only by what a test enqueues. */
let quiet: Recorded;
let quietClient: InstanceType<typeof durox.Client>;
let runtime: Runtime;
let inputsTried = 0;

/** Strings that stress encodings and SQL: any code unit (lone surrogates, NUL), SQL, long ones. */
const SQLISH = [
  "'; DROP TABLE instances; --",
  '"; SELECT pg_sleep(10); --',
  "x' OR '1'='1",
  '$1',
  '$$; DROP SCHEMA public CASCADE; $$',
  '\\',
  '%s%n',
  "Robert'); DELETE FROM history;--",
];
const hostileString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 20 }),
  fc.constantFrom(...SQLISH),
  fc.string({ unit: 'grapheme', minLength: 100, maxLength: 200 }),
  fc.integer({ min: MAX_NAME_BYTES - 2, max: MAX_NAME_BYTES + 2 }).map((n) => 'n'.repeat(n)),
);

/** What the documented limits say about a name. */
function nameIsValid(value: string): boolean {
  return (
    value.length > 0 &&
    !value.includes('\u0000') &&
    !/\p{Surrogate}/u.test(value) &&
    Buffer.byteLength(value, 'utf8') <= MAX_NAME_BYTES
  );
}

/** JSON semantics of a payload: what a reader gets back after JSON encoding. */
function asJson(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value === undefined ? null : value));
}

/** An array nested `depth` levels deep (deeper than JSON.stringify can recurse). */
function tooDeep(depth: number): unknown {
  let value: unknown = 0;
  for (let i = 0; i < depth; i += 1) value = [value];
  return value;
}

let sequence = 0;
const nextId = (): string => `hostile-${(sequence += 1)}`;

before(async () => {
  setup = await recordedProvider('rel_hostile');
  client = new durox.Client(setup.provider);
  quiet = await recordedProvider('rel_hostile_quiet');
  quietClient = new durox.Client(quiet.provider);
  runtime = new durox.Runtime(setup.provider, { dispatcherPollIntervalMs: 20, logLevel: 'error' });
  runtime.registerActivity('Echo', async (_ctx, input: unknown) => input);
  runtime.registerActivity('Huge', async () => 'x'.repeat(MAX_PAYLOAD_BYTES + 1));
  runtime.registerOrchestration('Echo', function* (ctx, input: unknown) {
    return yield ctx.scheduleActivity('Echo', input);
  });
  runtime.registerOrchestration('Mailbox', function* (ctx) {
    return yield ctx.dequeueEvent('mail');
  });
  runtime.registerOrchestration('HugeOutput', function* () {
    return 'y'.repeat(MAX_PAYLOAD_BYTES + 1);
  });
  runtime.registerOrchestration('HugeActivity', function* (ctx) {
    try {
      yield ctx.scheduleActivity('Huge', null);
      return 'unexpected success';
    } catch (error) {
      return String(error instanceof Error ? error.message : error);
    }
  });
  await runtime.start();
});

after(async () => {
  console.log(`hostile-input: ${inputsTried} inputs tried`);
  await runtime.shutdown(100);
  await setup.provider.close();
  await quiet.provider.close();
  await dropTestSchema(setup.schema);
  await dropTestSchema(quiet.schema);
});

test(
  'instance ids: valid ones are stored and read back exactly, invalid ones are ' + 'refused and write nothing',
  async () => {
    const accepted: Array<{ id: string; input: unknown }> = [];
    await fc.assert(
      fc.asyncProperty(hostileString, async (raw) => {
        inputsTried += 1;
        const id = raw;
        const before = await quiet.provider.getQueueDepths();
        let refused: Error | null = null;
        try {
          await quietClient.startOrchestration(id, 'Echo', id);
        } catch (error) {
          refused = error as Error;
        }
        if (nameIsValid(id)) {
          assert.equal(refused, null, `a valid id was refused: ${refused?.message}`);
          accepted.push({ id, input: id });
        } else {
          assert.ok(refused !== null, `an invalid id was accepted: ${JSON.stringify(id)}`);
          assert.match(refused.message, /^startOrchestration/);
          const afterDepths = await quiet.provider.getQueueDepths();
          assert.equal(afterDepths.orchestratorQueue, before.orchestratorQueue, 'a refused start enqueued nothing');
        }
      }),
      { numRuns: 150 },
    );
    const unique = [...new Map(accepted.map((a) => [a.id, a])).values()];
    assert.equal(
      (await quiet.provider.getQueueDepths()).orchestratorQueue,
      accepted.length,
      'each accepted start enqueued one message',
    );
    for (const { id } of unique) await client.startOrchestration(id, 'Echo', id);
    for (const { id } of unique) {
      const status = await client.waitForOrchestration(id, 20_000);
      assert.equal(status.status, 'Completed', `${JSON.stringify(id)}: ${status.error}`);
      assert.equal(status.output, id, 'the id came back exactly through input, activity and output');
      const info = await setup.provider.getInstanceInfo(id);
      assert.equal(info?.instanceId, id);
      assert.deepEqual(await instanceProblems(setup.provider, id), []);
    }
    const listed = new Set(await setup.provider.listInstances());
    for (const { id } of unique) assert.ok(listed.has(id), `listInstances returns ${JSON.stringify(id)} exactly`);
    assert.deepEqual(
      foreignStatements(setup.recorder.take(), setup.schema),
      [],
      'only fixed procedure calls were sent',
    );
    assert.deepEqual(
      foreignStatements(quiet.recorder.take(), quiet.schema),
      [],
      'only fixed procedure calls were sent',
    );
  },
);

test(
  'orchestration names, event and queue names and versions: refused with a clear ' + 'error, or stored exactly',
  async () => {
    await fc.assert(
      fc.asyncProperty(hostileString, hostileString, hostileString, async (name, queue, version) => {
        inputsTried += 3;
        const id = nextId();
        // Orchestration name: an unknown but valid name is stored (the instance waits for a handler).
        const nameError = await quietClient.startOrchestration(id, name, 1).then(
          () => null,
          (e: Error) => e,
        );
        if (nameIsValid(name)) {
          assert.equal(nameError, null);
        } else {
          assert.match(nameError?.message ?? '', /^startOrchestration \(instance 'hostile-\d+'\): orchestration name/);
        }
        const queueError = await quietClient.enqueueEvent(`${id}-q`, queue, { queue }).then(
          () => null,
          (e: Error) => e,
        );
        assert.equal(
          queueError === null,
          nameIsValid(queue),
          `queue name ${JSON.stringify(queue)}: ${queueError?.message}`,
        );
        const eventError = await quietClient.raiseEvent(`${id}-e`, queue, 1).then(
          () => null,
          (e: Error) => e,
        );
        assert.equal(
          eventError === null,
          nameIsValid(queue),
          `event name ${JSON.stringify(queue)}: ${eventError?.message}`,
        );
        const versionError = await quietClient.startOrchestrationVersioned(`${id}-v`, 'Echo', 1, version).then(
          () => null,
          (e: Error) => e,
        );
        if (versionError !== null)
          assert.match(versionError.message, /^startOrchestrationVersioned \(instance 'hostile-\d+-v'\): version/);
      }),
      { numRuns: 60 },
    );
    // Queue messages under hostile (valid) names reach exactly the queue of that name.
    for (const queueName of ["'; DROP TABLE orchestrator_queue; --", 'ünï©ødé 🚀', 'a'.repeat(MAX_NAME_BYTES)]) {
      const id = nextId();
      await client.startOrchestration(id, 'Mailbox', null);
      await client.enqueueEvent(id, queueName, 'wrong queue');
      await client.enqueueEvent(id, 'mail', { from: queueName });
      const status = await client.waitForOrchestration(id, 20_000);
      assert.deepEqual(status.output, { from: queueName });
    }
    const tooLong = 'é'.repeat(MAX_NAME_BYTES / 2 + 1);
    await assert.rejects(
      client.startOrchestration(tooLong, 'Echo'),
      new RegExp(`instance id is ${MAX_NAME_BYTES + 2} bytes long; the limit is ${MAX_NAME_BYTES} bytes`),
    );
    assert.deepEqual(foreignStatements(setup.recorder.take(), setup.schema), []);
    assert.deepEqual(foreignStatements(quiet.recorder.take(), quiet.schema), []);
  },
);

test('payloads of any shape round-trip exactly through input, activity, queue and output', async () => {
  const payload = fc.oneof(
    fc.jsonValue({ maxDepth: 6 }),
    fc.string({ unit: 'binary' }),
    fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) }),
    fc.constantFrom(
      '',
      '\u0000',
      '\ud800',
      '\udfff\ud800',
      'a\u0000b',
      -0,
      1e308,
      [],
      {},
      { '': { '\u0000': ['\ud83d'] } },
    ),
  );
  const cases: Array<{ id: string; value: unknown }> = [];
  await fc.assert(
    fc.asyncProperty(payload, async (value) => {
      inputsTried += 1;
      const id = nextId();
      await client.startOrchestration(id, 'Echo', value);
      cases.push({ id, value });
    }),
    { numRuns: 120 },
  );
  for (const { id, value } of cases) {
    const status = await client.waitForOrchestration(id, 20_000);
    assert.equal(status.status, 'Completed', `${id}: ${status.error}`);
    assert.deepEqual(status.output, asJson(value), `${id} returned its input exactly`);
  }
  // Deep nesting and large values.
  let deep: unknown = 'bottom';
  for (let i = 0; i < 1000; i += 1) deep = [deep];
  const big = { text: 'ü'.repeat(2 * 1024 * 1024), list: Array.from({ length: 10_000 }, (_, i) => i) };
  for (const value of [deep, big]) {
    inputsTried += 1;
    const id = nextId();
    await client.startOrchestration(id, 'Echo', value);
    const status = await client.waitForOrchestration(id, 60_000);
    assert.equal(status.status, 'Completed', status.error);
    assert.deepEqual(status.output, value);
  }
  assert.deepEqual(foreignStatements(setup.recorder.take(), setup.schema), []);
});

test(
  'values JSON cannot hold and oversized payloads are refused with errors naming ' + 'the problem; nothing is written',
  async () => {
    const circular: Record<string, unknown> = { a: 1 };
    circular.self = circular;
    const oversized = 'z'.repeat(MAX_PAYLOAD_BYTES);
    const before = await setup.provider.getSystemMetrics();
    const depthsBefore = await setup.provider.getQueueDepths();
    const refusals: Array<[unknown, RegExp]> = [
      [
        circular,
        /startOrchestration \(instance 'refused-1'\): input cannot be encoded as JSON: Converting circular structure/,
      ],
      [{ n: 10n }, /input cannot be encoded as JSON: Do not know how to serialize a BigInt/],
      [() => 1, /input cannot be encoded as JSON \(got a function\)/],
      [Symbol('s'), /input cannot be encoded as JSON \(got a symbol\)/],
      [tooDeep(200_000), /input cannot be encoded as JSON: Maximum call stack size exceeded/],
      [
        oversized,
        new RegExp(
          `input is ${MAX_PAYLOAD_BYTES + 2} bytes as JSON; the payload limit ` +
            `MAX_PAYLOAD_BYTES is ${MAX_PAYLOAD_BYTES} bytes`,
        ),
      ],
    ];
    for (const [value, message] of refusals) {
      inputsTried += 1;
      await assert.rejects(client.startOrchestration('refused-1', 'Echo', value), message);
      await assert.rejects(client.enqueueEvent('refused-1', 'mail', value), /enqueueEvent/);
      await assert.rejects(client.raiseEvent('refused-1', 'evt', value), /raiseEvent/);
    }
    assert.deepEqual(await setup.provider.getSystemMetrics(), before);
    assert.deepEqual(await setup.provider.getQueueDepths(), depthsBefore);
    assert.equal((await client.getStatus('refused-1')).status, 'NotFound');

    // The provider enforces the same limit for anything that bypasses the Client.
    await assert.rejects(
      setup.provider.enqueueOrchestratorWork({
        type: 'ExternalRaised',
        instance: 'raw-1',
        name: 'e',
        data: JSON.stringify(oversized),
      }),
      (error: Error & { code?: string }) =>
        error.code === 'invalid_argument' && /MAX_PAYLOAD_BYTES is 16777216 bytes/.test(error.message),
    );
    await assert.rejects(
      setup.provider.enqueueOrchestratorWork({ type: 'ExternalRaised', instance: 'raw-\ud800', name: 'e', data: '1' }),
      /lone UTF-16 surrogate/,
    );
  },
);

test(
  'an orchestration output or activity result over the payload limit fails ' + 'cleanly with the limit named',
  async () => {
    const output = nextId();
    await client.startOrchestration(output, 'HugeOutput', null);
    const failed = await client.waitForOrchestration(output, 30_000);
    assert.equal(failed.status, 'Failed');
    assert.match(failed.error ?? '', /MAX_PAYLOAD_BYTES is 16777216 bytes/);
    assert.deepEqual(await instanceProblems(setup.provider, output), []);

    const activity = nextId();
    await client.startOrchestration(activity, 'HugeActivity', null);
    const caught = await client.waitForOrchestration(activity, 30_000);
    assert.equal(caught.status, 'Completed');
    assert.match(
      String(caught.output),
      /Activity 'Huge' returned 16777219 bytes of JSON; the payload limit MAX_PAYLOAD_BYTES is 16777216 bytes/,
    );
    assert.deepEqual(await instanceProblems(setup.provider, activity), []);
  },
);

test('schema names with quotes, semicolons or SQL are refused before any statement is sent', async () => {
  const hostileSchema = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 70 }),
    fc.constantFrom(
      'public"; DROP SCHEMA public; --',
      "x'; select 1; --",
      'a b',
      'A',
      '1abc',
      'a'.repeat(64),
      'søren',
      'x;y',
      'x"y',
      '',
    ),
  );
  const admin = await adminConnection();
  try {
    await fc.assert(
      fc.asyncProperty(hostileSchema, async (schema) => {
        inputsTried += 1;
        fc.pre(!/^[a-z_][a-z0-9_]{0,62}$/.test(schema));
        const recorder = new CountingExecutor(PgExecutor.fromUrl(DATABASE_URL, 1));
        try {
          await assert.rejects(
            applyMigrations(recorder, schema),
            (e: Error & { code?: string }) => e.code === 'invalid_argument' && /invalid schema name/.test(e.message),
          );
          assert.throws(() => new ProcedureProvider(recorder, schema, 'postgres'), /invalid schema name/);
          await assert.rejects(durox.PostgresProvider.connectWithSchema(DATABASE_URL, schema), /invalid schema name/);
          assert.equal(recorder.count, 0, 'no statement was sent');
        } finally {
          await recorder.close();
        }
        const found = await admin.query('SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = $1', [
          schema.replaceAll('\u0000', ''),
        ]);
        assert.equal(found.rows[0].n, 0);
      }),
      { numRuns: 100 },
    );
  } finally {
    await admin.end();
  }
});
