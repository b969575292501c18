import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DATABASE_URL, durox, schemaFor, startRuntime, uid, type Client, type Provider, type Runtime } from './helpers';
import { dropTestSchema } from '../helpers/postgres-harness';

const providers: Provider[] = [];
const runtimes: Runtime[] = [];
let client: Client;
const executions = new Map<string, number>();

function register(rt: Runtime): void {
  rt.registerActivity('Step', async (ctx, n: number) => {
    const key = `${ctx.instanceId}#${n}`;
    executions.set(key, (executions.get(key) ?? 0) + 1);
    await new Promise((resolve) => setTimeout(resolve, 5));
    return n * 10;
  });
  rt.registerOrchestration('ThreeSteps', function* (ctx) {
    const a = yield ctx.scheduleActivity('Step', 1);
    const b = yield ctx.scheduleActivity('Step', 2);
    const rest = yield ctx.all([ctx.scheduleActivity('Step', 3), ctx.scheduleActivity('Step', 4)]);
    return [a, b, ...rest.map((r: { ok: number }) => r.ok)];
  });
}

let schema: string;

before(async () => {
  schema = schemaFor('multi');
  for (let i = 0; i < 2; i++) {
    const provider = await durox.PostgresProvider.connectWithSchema(DATABASE_URL, schema);
    providers.push(provider);
    runtimes.push(await startRuntime(provider, register, { orchestrationConcurrency: 2, workerConcurrency: 4 }));
  }
  client = new durox.Client(providers[0]);
});

after(async () => {
  for (const runtime of runtimes) await runtime.shutdown(100);
  for (const provider of providers) await provider.close();
  await dropTestSchema(schema);
});

test('two runtimes on one schema: every orchestration completes once, no activity result recorded twice', async () => {
  const ids = Array.from({ length: 30 }, () => uid('shared'));
  await Promise.all(ids.map((id) => client.startOrchestration(id, 'ThreeSteps')));
  for (const id of ids) {
    const status = await client.waitForOrchestration(id, 30_000);
    assert.deepEqual(status.output, [10, 20, 30, 40]);
  }
  for (const id of ids) {
    const history = await client.readExecutionHistory(id, 1);
    const kinds = history.map((e) => e.kind);
    assert.equal(kinds.filter((k) => k === 'OrchestrationStarted').length, 1);
    assert.equal(kinds.filter((k) => k === 'OrchestrationCompleted').length, 1);
    const completions = history.filter((e) => e.kind === 'ActivityCompleted').map((e) => e.sourceEventId);
    assert.equal(completions.length, 4);
    assert.equal(new Set(completions).size, 4, `a completion was recorded twice for ${id}`);
    assert.deepEqual(
      history.map((e) => e.eventId),
      history.map((_, i) => i + 1),
    );
    assert.deepEqual(await client.listExecutions(id), [1]);
  }
  const turns = runtimes.map((rt) => rt.metricsSnapshot()?.orchStarts ?? 0);
  assert.ok(
    turns.every((n) => n > 0),
    `both runtimes ran turns: ${turns.join(', ')}`,
  );
  const activities = runtimes.map((rt) => rt.metricsSnapshot()?.activitySuccess ?? 0);
  assert.equal(activities[0] + activities[1], ids.length * 4, 'each activity succeeded exactly once');
  assert.ok(
    [...executions.values()].every((n) => n === 1),
    'no activity ran twice',
  );
});
