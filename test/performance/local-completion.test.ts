/**
 * Local completion on the real PostgreSQL server: a Client waiting for an instance whose final
 * turn a Runtime commits through the same provider object resolves from the status that turn ack
 * committed, without reading it again, and gets exactly what a status read returns afterwards
 * (output, failure, custom status and its version). Continue-as-new is not an end, and a Client
 * on another provider object still reads the status. A Client that started the instance here
 * (claiming its first turn on an empty history) does not read it before its wait either, but a
 * repeated start of an instance that ended long ago is not taken for a running one.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { Client, Runtime } from '../../src/index';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { ProcedureProvider } from '../../src/store/procedure-provider';
import type { InstanceStatus, Provider } from '../../src/provider/contract';
import { watchCommittedStatus } from '../../src/provider/local-completions';
import { CountingExecutor } from '../helpers/counting-executor';
import { databaseUrl, dropTestSchema, migrateTestSchema, uniqueSchemaName } from '../helpers/postgres-harness';

const schema = uniqueSchemaName('perf_local_completion');
const opened: Provider[] = [];
const runtimes: Runtime[] = [];
let counter = 0;
const uid = (prefix: string): string => `${prefix}-${++counter}-${process.pid}`;

function open(): { provider: ProcedureProvider; executor: CountingExecutor } {
  const executor = new CountingExecutor(PgExecutor.fromUrl(databaseUrl(), 4));
  const provider = new ProcedureProvider(executor, schema, 'postgres');
  opened.push(provider);
  return { provider, executor };
}

async function startRuntime(provider: Provider): Promise<void> {
  const runtime = new Runtime(provider, { logLevel: 'warn' });
  runtime.registerActivity('Echo', (_ctx, input: unknown) => input);
  runtime.registerActivity('Boom', () => {
    throw new Error('boom');
  });
  runtime.registerOrchestration('Reported', function* (ctx, input: number) {
    ctx.setCustomStatus(`step ${input}`);
    const value: number = yield ctx.scheduleActivity('Echo', input);
    ctx.setCustomStatus('done');
    return { value };
  });
  runtime.registerOrchestration('Failing', function* (ctx) {
    ctx.setCustomStatus('about to fail');
    yield ctx.scheduleActivity('Boom', null);
    return 'unreachable';
  });
  runtime.registerOrchestration('Rounds', function* (ctx, round: number) {
    yield ctx.scheduleActivity('Echo', round);
    if (round < 2) return yield ctx.continueAsNew(round + 1);
    return `rounds ${round}`;
  });
  await runtime.start();
  runtimes.push(runtime);
}

/** Status reads sent through `executor` since its `from`-th statement. */
function statusReadsSince(executor: CountingExecutor, from: number): number {
  return executor.texts.slice(from).filter((text) => text.includes('.get_instance_status(')).length;
}

before(() => migrateTestSchema(schema));

afterEach(async () => {
  for (const runtime of runtimes.splice(0)) await runtime.shutdown(100);
});

after(async () => {
  for (const provider of opened) await provider.close();
  await dropTestSchema(schema);
});

for (const [orchestration, input, expected] of [
  ['Reported', 7, 'Completed'],
  ['Failing', null, 'Failed'],
] as const) {
  test(`a ${expected} instance: the wait resolves from the committed status, equal to a later read`, async () => {
    const { provider, executor } = open();
    const reader = open().provider; // another provider object: it never hears local commits
    await startRuntime(provider);
    const client = new Client(provider);
    const id = uid(orchestration);
    const published: InstanceStatus[] = [];
    let sentBeforeCommit = -1;
    const unwatch = watchCommittedStatus(provider, id, (status) => {
      published.push(status);
      sentBeforeCommit = executor.texts.length;
    });
    const unwatchReader = watchCommittedStatus(reader, id, () =>
      assert.fail('a commit is published only to its own provider object'),
    );
    try {
      await client.startOrchestration(id, orchestration, input);
      const waited = await client.waitForOrchestration(id, 10_000);
      assert.equal(waited.status, expected);
      assert.equal(published.length, 1, 'the final turn published its committed status once');
      assert.equal(statusReadsSince(executor, sentBeforeCommit), 0, 'no status read after the final turn committed');
      assert.deepEqual(published[0], await reader.getInstanceStatus(id), 'the published status is what a read returns');
      assert.deepEqual(
        waited,
        await new Client(reader).waitForOrchestration(id, 1_000),
        'the wait returns what a reading wait returns',
      );
      if (expected === 'Completed') assert.deepEqual(waited.output, { value: 7 });
      else assert.match(waited.error ?? '', /boom/);
      assert.equal(waited.customStatus, expected === 'Completed' ? 'done' : 'about to fail');
      assert.ok(waited.customStatusVersion >= 1);
    } finally {
      unwatch();
      unwatchReader();
    }
  });
}

test("continue-as-new is not an end: only the last execution's completion resolves the wait", async () => {
  const { provider } = open();
  await startRuntime(provider);
  const client = new Client(provider);
  const id = uid('rounds');
  const published: InstanceStatus[] = [];
  const unwatch = watchCommittedStatus(provider, id, (status) => published.push(status));
  try {
    await client.startOrchestration(id, 'Rounds', 0);
    const waited = await client.waitForOrchestration(id, 10_000);
    assert.deepEqual({ status: waited.status, output: waited.output }, { status: 'Completed', output: 'rounds 2' });
    assert.deepEqual(
      published.map((status) => status.status),
      ['Completed'],
      'the two continue-as-new turns published nothing',
    );
    assert.deepEqual(await provider.listExecutions(id), [1, 2, 3]);
  } finally {
    unwatch();
  }
});

test('a client on another provider object falls back to status reads', async () => {
  const { provider } = open();
  const { provider: clientProvider, executor: clientExecutor } = open();
  await startRuntime(provider);
  const id = uid('remote');
  const client = new Client(clientProvider);
  await client.startOrchestration(id, 'Reported', 3);
  const from = clientExecutor.texts.length;
  const waited = await client.waitForOrchestration(id, 10_000);
  assert.equal(waited.status, 'Completed');
  assert.ok(statusReadsSince(clientExecutor, from) >= 1, 'the remote client read the status');
  assert.deepEqual(waited.output, { value: 3 });
});

test('a client that started the instance here waits for it without reading its status', async () => {
  const { provider, executor } = open();
  await startRuntime(provider);
  const client = new Client(provider);
  const warmUp = uid('warm-up');
  await client.startOrchestration(warmUp, 'Reported', 1);
  await client.waitForOrchestration(warmUp, 10_000);
  const id = uid('started-here');
  const from = executor.texts.length;
  await client.startOrchestration(id, 'Reported', 5);
  const waited = await client.waitForOrchestration(id, 10_000);
  assert.deepEqual([waited.status, waited.output], ['Completed', { value: 5 }]);
  assert.equal(statusReadsSince(executor, from), 0, 'neither before nor after its end');
  // The first turn sets a custom status: its commit, in the start's call, sends a status hint
  // that the wait must recognise as the start's own.
  assert.ok(
    executor.texts.slice(from).some((text) => text.includes('.start_orchestration_with_turn(')),
    'the start committed the first turn',
  );
});

test('a repeated start of an ended instance: the wait reads the status and returns at once', async () => {
  const { provider, executor } = open();
  await startRuntime(provider);
  const client = new Client(provider);
  const id = uid('ended');
  await client.startOrchestration(id, 'Reported', 2);
  assert.equal((await client.waitForOrchestration(id, 10_000)).status, 'Completed');
  const from = executor.texts.length;
  await client.startOrchestration(id, 'Reported', 2);
  const started = Date.now();
  const again = await client.waitForOrchestration(id, 10_000);
  assert.deepEqual([again.status, again.output], ['Completed', { value: 2 }]);
  assert.ok(statusReadsSince(executor, from) >= 1, 'the status was read');
  // Taken for a running instance, the wait would sleep until the 5 s safety read.
  assert.ok(Date.now() - started < 1_000, `returned after ${Date.now() - started} ms`);
});
