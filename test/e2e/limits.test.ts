/**
 * The limits of docs/replay.md ("Failures and limits") end to end: each violation fails the orchestration
 * with an error naming the limit and discards the work of that turn; worker tag filters over
 * MAX_WORKER_TAGS or MAX_TAG_NAME_BYTES are refused when the runtime is created. Also the KV
 * store across instances and client reads while running, and hostile tags routed exactly.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect, durox, startRuntime, uid, type Client, type Provider, type Runtime } from './helpers';

let provider: Provider;
let client: Client;
const runtimes: Runtime[] = [];
const HOSTILE_TAG = "gpu'); DELETE FROM worker_queue; --é";

before(async () => {
  provider = await connect('limits');
  client = new durox.Client(provider);
  runtimes.push(
    await startRuntime(provider, (rt) => {
      rt.registerActivity('Echo', (ctx, input: unknown) => ({ input, tag: ctx.tag() }));
      rt.registerOrchestration('TooManyKeys', function* (ctx, count: number) {
        for (let i = 0; i < count; i += 1) ctx.setValue(`key-${i}`, 'v');
        yield ctx.scheduleActivity('Echo', 'after');
        return ctx.getKvLength();
      });
      rt.registerOrchestration('BigValue', function* (ctx, bytes: number) {
        ctx.setValue('big', 'x'.repeat(bytes));
        return yield ctx.scheduleActivity('Echo', 'after');
      });
      rt.registerOrchestration('BigStatus', function* (ctx, bytes: number) {
        ctx.setCustomStatus('s'.repeat(bytes));
        return yield ctx.scheduleActivity('Echo', 'after');
      });
      rt.registerOrchestration('Tagged', function* (ctx, tag: string) {
        return yield ctx.scheduleActivity('Echo', 'tagged').withTag(tag);
      });
      rt.registerOrchestration('Writer', function* (ctx) {
        ctx.setValue('shared', 'from-writer');
        yield ctx.waitForEvent('finish');
        return 'done';
      });
      rt.registerOrchestration('Reader', function* (ctx, other: string) {
        return yield ctx.getValueFromInstance(other, 'shared');
      });
    }),
  );
  runtimes.push(
    await startRuntime(
      provider,
      (rt) => {
        rt.registerActivity('Echo', (ctx, input: unknown) => ({ input, tag: ctx.tag() }));
      },
      { orchestrationConcurrency: 0, workerTagFilter: { tags: [HOSTILE_TAG] } },
    ),
  );
});

after(async () => {
  for (const runtime of runtimes) await runtime.shutdown(100);
  await provider.close();
});

async function failure(name: string, input: unknown): Promise<{ id: string; error: string }> {
  const id = uid(name);
  await client.startOrchestration(id, name, input);
  const status = await client.waitForOrchestration(id, 20_000);
  assert.equal(status.status, 'Failed', `${name} must fail`);
  return { id, error: status.error ?? '' };
}

test('MAX_KV_KEYS: 150 keys are fine, 151 fail the orchestration and write no KV', async () => {
  const ok = uid('keys');
  await client.startOrchestration(ok, 'TooManyKeys', durox.MAX_KV_KEYS);
  assert.equal((await client.waitForOrchestration(ok, 20_000)).output, durox.MAX_KV_KEYS);
  const { id, error } = await failure('TooManyKeys', durox.MAX_KV_KEYS + 1);
  assert.match(error, /KV key count \(151\) exceeds limit \(150 keys\)/);
  assert.deepEqual(await client.getKvAllValues(id), {}, 'the violating turn wrote nothing');
  assert.equal((await client.getOrchestrationStats(id))?.kvUserKeyCount, 0);
});

test('MAX_KV_VALUE_BYTES: a 65536-byte value is fine, one byte more fails', async () => {
  const ok = uid('value');
  await client.startOrchestration(ok, 'BigValue', durox.MAX_KV_VALUE_BYTES);
  assert.equal((await client.waitForOrchestration(ok, 20_000)).status, 'Completed');
  assert.equal((await client.getValue(ok, 'big'))?.length, durox.MAX_KV_VALUE_BYTES);
  const { error } = await failure('BigValue', durox.MAX_KV_VALUE_BYTES + 1);
  assert.match(error, /KV value size for key 'big' \(65537 bytes\) exceeds limit \(65536 bytes\)/);
});

test('custom status over 256 KiB fails the orchestration with the message duroxide gives', async () => {
  const { error } = await failure('BigStatus', 262_145);
  assert.match(error, /Custom status size \(262145 bytes\) exceeds limit \(262144 bytes\)/);
});

test('MAX_TAG_NAME_BYTES: an activity tag over 256 bytes fails; a hostile tag is routed exactly', async () => {
  const { error } = await failure('Tagged', 't'.repeat(durox.MAX_TAG_NAME_BYTES + 1));
  assert.match(error, /Activity tag size \(257 bytes\) exceeds limit \(256 bytes\)/);
  const id = uid('tagged');
  await client.startOrchestration(id, 'Tagged', HOSTILE_TAG);
  const status = await client.waitForOrchestration(id, 20_000);
  assert.deepEqual(status.output, { input: 'tagged', tag: HOSTILE_TAG });
});

test('worker tag filters over MAX_WORKER_TAGS or MAX_TAG_NAME_BYTES are refused when the runtime is created', () => {
  const six = Array.from({ length: durox.MAX_WORKER_TAGS + 1 }, (_, i) => `t${i}`);
  assert.throws(
    () => new durox.Runtime(provider, { workerTagFilter: { tags: six } }),
    /6 tags exceed MAX_WORKER_TAGS \(5\)/,
  );
  assert.throws(
    () => new durox.Runtime(provider, { workerTagFilter: { defaultAnd: ['x'.repeat(257)] } }),
    /tag of 257 bytes exceeds MAX_TAG_NAME_BYTES \(256\)/,
  );
  assert.doesNotThrow(() => new durox.Runtime(provider, { workerTagFilter: { tags: six.slice(1) } }));
});

test('KV values are readable by clients while running and by other instances', async () => {
  const writer = uid('writer');
  await client.startOrchestration(writer, 'Writer');
  assert.equal(await client.waitForValue(writer, 'shared', 10_000), 'from-writer');
  const reader = uid('reader');
  await client.startOrchestration(reader, 'Reader', writer);
  assert.equal((await client.waitForOrchestration(reader, 20_000)).output, 'from-writer');
  await client.raiseEvent(writer, 'finish');
  assert.equal((await client.waitForOrchestration(writer, 20_000)).status, 'Completed');
  assert.equal(await client.getValue(writer, 'shared'), 'from-writer', 'merged into the store on completion');
});
