import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect, durox, startRuntime, uid, type Client, type Provider, type Runtime } from './helpers';

let provider: Provider;
let client: Client;
const runtimes: Runtime[] = [];

function registerActivities(rt: Runtime): void {
  rt.registerActivity('WhoRuns', (ctx) => ({ worker: ctx.workerId, tag: ctx.tag() }));
}

before(async () => {
  provider = await connect('tags');
  client = new durox.Client(provider);
  runtimes.push(
    await startRuntime(
      provider,
      (rt) => {
        registerActivities(rt);
        rt.registerOrchestration('Routed', function* (ctx) {
          const task = ctx.scheduleActivity('WhoRuns', null).withTag('gpu');
          const tagged = yield task;
          const plain = yield ctx.scheduleActivity('WhoRuns', null);
          const nobody = yield ctx.race(
            ctx.scheduleActivity('WhoRuns', null).withTag('quantum'),
            ctx.scheduleTimer(300),
          );
          return { descriptorTag: task.tag, tagged, plain, nobody };
        });
      },
      { workerNodeId: 'default-node' },
    ),
  );
  runtimes.push(
    await startRuntime(provider, registerActivities, {
      workerNodeId: 'gpu-node',
      orchestrationConcurrency: 0,
      workerTagFilter: { tags: ['gpu'] },
    }),
  );
});

after(async () => {
  for (const runtime of runtimes) await runtime.shutdown(100);
  await provider.close();
});

test('tagged activities run only on workers serving the tag; untagged ones on default workers', async () => {
  const id = uid('routed');
  await client.startOrchestration(id, 'Routed');
  const output = (await client.waitForOrchestration(id, 10_000)).output as unknown as Record<
    string,
    { worker: string; tag: string | null }
  > & { descriptorTag: string; nobody: unknown };
  assert.equal(output.descriptorTag, 'gpu', 'withTag returns the same descriptor');
  assert.match(output.tagged.worker, /^work-\d+-gpu-node$/);
  assert.equal(output.tagged.tag, 'gpu');
  assert.match(output.plain.worker, /^work-\d+-default-node$/);
  assert.equal(output.plain.tag, null);
  assert.deepEqual(output.nobody, { index: 1, value: null }, 'no worker serves the quantum tag');
  const scheduled = (await client.readExecutionHistory(id, 1)).filter((e) => e.kind === 'ActivityScheduled');
  assert.equal(scheduled.length, 3);
});
