/**
 * Deletion, pruning, instance trees and statistics through the Client (docs/runtime.md,
 * "The Client"), on instances run by a real runtime.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect, durox, startRuntime, uid, type Client, type Provider, type Runtime } from './helpers';

let provider: Provider;
let runtime: Runtime;
let client: Client;

before(async () => {
  provider = await connect('deletion');
  client = new durox.Client(provider);
  runtime = await startRuntime(provider, (rt) => {
    rt.registerActivity('Echo', (_ctx, input: unknown) => input);
    rt.registerOrchestration('Leaf', function* (ctx, input: string) {
      ctx.setValue('leaf', input);
      return yield ctx.scheduleActivity('Echo', input);
    });
    rt.registerOrchestration('Parent', function* (ctx, input: string) {
      const a = yield ctx.scheduleSubOrchestrationWithId('Leaf', `${ctx.instanceId}::a`, `${input}-a`);
      const b = yield ctx.scheduleSubOrchestrationWithId('Leaf', `${ctx.instanceId}::b`, `${input}-b`);
      return [a, b];
    });
    rt.registerOrchestration('Waiter', function* (ctx) {
      return yield ctx.waitForEvent('never');
    });
    rt.registerOrchestration('Loop', function* (ctx, n: number) {
      ctx.setValue(`k${n}`, String(n));
      yield ctx.scheduleActivity('Echo', n);
      if (n < 3) return yield ctx.continueAsNew(n + 1);
      return n;
    });
  });
});

after(async () => {
  await runtime.shutdown(100);
  await provider.close();
});

test('a completed parent is deleted with its sub-orchestrations; a child cannot be deleted directly', async () => {
  const id = uid('parent');
  await client.startOrchestration(id, 'Parent', 'x');
  assert.equal((await client.waitForOrchestration(id, 20_000)).status, 'Completed');
  const tree = await client.getInstanceTree(id);
  assert.equal(tree.rootId, id);
  assert.equal(tree.size, 3);
  assert.deepEqual([...tree.allIds].sort(), [id, `${id}::a`, `${id}::b`].sort());
  await assert.rejects(client.deleteInstance(`${id}::a`), {
    message: new RegExp(
      `Cannot delete sub-orchestration ${id}::a directly\\. Delete the root orchestration instead\\.`,
    ),
  });
  await assert.rejects(client.deleteInstance(`${id}::a`, true), /Cannot delete sub-orchestration/);
  const stats = await client.getOrchestrationStats(`${id}::a`);
  assert.equal(stats?.queuePendingCount, 0);
  assert.equal(stats?.kvUserKeyCount, 1);
  assert.equal(stats?.kvTotalValueBytes, 'x-a'.length);
  const result = await client.deleteInstance(id);
  assert.deepEqual(Object.keys(result).sort(), [
    'eventsDeleted',
    'executionsDeleted',
    'instancesDeleted',
    'queueMessagesDeleted',
  ]);
  assert.equal(result.instancesDeleted, 3);
  assert.equal(result.executionsDeleted, 3);
  assert.ok(result.eventsDeleted >= 12);
  for (const gone of tree.allIds) assert.equal((await client.getStatus(gone)).status, 'NotFound');
  assert.equal(await client.getValue(`${id}::a`, 'leaf'), null, 'KV is deleted with the instance');
  assert.equal(await client.getOrchestrationStats(id), null);
  await assert.rejects(client.deleteInstance(id), { message: new RegExp(`Instance ${id} not found`) });
  await assert.rejects(client.getInstanceTree(id), /not found/);
});

test('a running instance is refused unless forced; force-delete drops its late work', async () => {
  const id = uid('waiter');
  await client.startOrchestration(id, 'Waiter');
  for (let i = 0; i < 100 && (await client.getStatus(id)).status !== 'Running'; i += 1)
    await new Promise((r) => setTimeout(r, 20));
  await assert.rejects(client.deleteInstance(id), {
    message: new RegExp(`Instance ${id} is still running\\. Use force=true or cancel first\\.`),
  });
  assert.equal((await client.deleteInstance(id, true)).instancesDeleted, 1);
  await client.raiseEvent(id, 'never', 'late');
  await new Promise((r) => setTimeout(r, 200));
  assert.equal((await client.getStatus(id)).status, 'NotFound', 'a late event does not resurrect the instance');
  await assert.rejects(client.deleteInstance(id, 'yes' as unknown as boolean), /force must be a boolean/);
});

test('bulk delete by ids and limit skips running instances and reports summed counts', async () => {
  const done = [uid('bulk'), uid('bulk'), uid('bulk')];
  for (const id of done) await client.startOrchestration(id, 'Leaf', id);
  for (const id of done) assert.equal((await client.waitForOrchestration(id, 20_000)).status, 'Completed');
  const running = uid('bulk-running');
  await client.startOrchestration(running, 'Waiter');
  for (let i = 0; i < 100 && (await client.getStatus(running)).status !== 'Running'; i += 1)
    await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(await client.deleteInstanceBulk({ instanceIds: [] }), {
    instancesDeleted: 0,
    executionsDeleted: 0,
    eventsDeleted: 0,
    queueMessagesDeleted: 0,
  });
  const first = await client.deleteInstanceBulk({ instanceIds: [...done, running], limit: 2 });
  assert.equal(first.instancesDeleted, 2);
  const second = await client.deleteInstanceBulk({ instanceIds: [...done, running] });
  assert.equal(second.instancesDeleted, 1, 'the running instance is skipped silently');
  assert.equal((await client.getStatus(running)).status, 'Running');
  await assert.rejects(client.deleteInstanceBulk({ limit: -1 }), /limit must be a non-negative integer/);
  await client.deleteInstance(running, true);
});

test('pruning a continue-as-new chain keeps the newest executions and the instance KV', async () => {
  const id = uid('loop');
  await client.startOrchestration(id, 'Loop', 1);
  const status = await client.waitForOrchestration(id, 20_000);
  assert.equal(status.output, 3);
  assert.deepEqual(await client.listExecutions(id), [1, 2, 3]);
  const pruned = await client.pruneExecutions(id, { keepLast: 2 });
  assert.deepEqual(Object.keys(pruned).sort(), ['eventsDeleted', 'executionsDeleted', 'instancesProcessed']);
  assert.equal(pruned.instancesProcessed, 1);
  assert.equal(pruned.executionsDeleted, 1);
  assert.ok(pruned.eventsDeleted > 0);
  assert.deepEqual(await client.listExecutions(id), [2, 3]);
  assert.deepEqual(await client.pruneExecutionsBulk({ instanceIds: [id] }), {
    instancesProcessed: 1,
    executionsDeleted: 1,
    eventsDeleted: pruned.eventsDeleted,
  });
  assert.deepEqual(await client.listExecutions(id), [3]);
  assert.deepEqual(
    await client.getKvAllValues(id),
    { k1: '1', k2: '2', k3: '3' },
    'KV written by pruned executions survives',
  );
  assert.equal((await client.getStatus(id)).status, 'Completed');
  await assert.rejects(client.pruneExecutions(uid('ghost')), /not found/);
  await assert.rejects(client.pruneExecutions(id, { keepLast: 1.5 }), /keepLast must be a non-negative integer/);
});
