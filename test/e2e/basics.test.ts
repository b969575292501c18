import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect, durox, historyKinds, startRuntime, uid, type Client, type Provider, type Runtime } from './helpers';

let provider: Provider;
let runtime: Runtime;
let client: Client;

before(async () => {
  provider = await connect('basics');
  client = new durox.Client(provider);
  runtime = await startRuntime(provider, (rt) => {
    rt.registerActivity('Greet', async (_ctx, name: string) => `Hello, ${name}!`);
    rt.registerActivity('Echo', (_ctx, input: unknown) => input);
    rt.registerActivity('Boom', async () => {
      throw new Error('kaboom');
    });
    rt.registerActivity('Circular', () => {
      const value: Record<string, unknown> = {};
      value.self = value;
      return value;
    });
    rt.registerActivity('Big', () => 10n);
    rt.registerActivity('Describe', (ctx) => ({
      instanceId: ctx.instanceId,
      executionId: ctx.executionId,
      orchestrationName: ctx.orchestrationName,
      orchestrationVersion: ctx.orchestrationVersion,
      activityName: ctx.activityName,
      workerId: ctx.workerId,
      sessionId: ctx.sessionId,
      tag: ctx.tag(),
      cancelled: ctx.isCancelled(),
      hasClient: ctx.getClient() instanceof durox.Client,
    }));
    rt.registerOrchestration('Hello', function* (ctx, input: string) {
      return yield ctx.scheduleActivity('Greet', input);
    });
    rt.registerOrchestration('EchoAll', function* (ctx, input: unknown) {
      return yield ctx.scheduleActivity('Echo', input);
    });
    rt.registerOrchestration('CatchActivity', function* (ctx, name: string) {
      try {
        yield ctx.scheduleActivity(name);
        return 'not thrown';
      } catch (e) {
        return `caught: ${(e as Error).message}`;
      }
    });
    rt.registerOrchestration('Throws', function* (ctx) {
      yield ctx.scheduleTimer(1);
      throw new Error('orchestration exploded');
    });
    rt.registerOrchestration('DescribeActivity', function* (ctx) {
      return yield ctx.scheduleActivity('Describe', null);
    });
    rt.registerOrchestration('Waits', function* (ctx) {
      return yield ctx.waitForEvent('never');
    });
  });
});

after(async () => {
  await runtime.shutdown(100);
  await provider.close();
});

test('hello world: the activity result becomes the output', async () => {
  const id = uid('hello');
  await client.startOrchestration(id, 'Hello', 'World');
  const status = await client.waitForOrchestration(id, 10_000);
  assert.deepEqual(status, { status: 'Completed', output: 'Hello, World!', customStatusVersion: 0 });
  const raw = await client.getStatus(id);
  assert.equal(raw.output, '"Hello, World!"', 'getStatus leaves the output as JSON text');
  assert.deepEqual(await client.waitForOrchestrationTyped(id), 'Hello, World!');
});

test('values of every JSON shape survive the round trip', async () => {
  const values: unknown[] = ['text', 42, 3.5, { a: [1, { b: null }] }, [1, 'two'], null, true, false];
  for (const value of values) {
    const id = uid('echo');
    await client.startOrchestration(id, 'EchoAll', value);
    const status = await client.waitForOrchestration(id, 10_000);
    assert.equal(status.status, 'Completed');
    assert.deepEqual(status.output, value);
  }
  const id = uid('echo-undefined');
  await client.startOrchestration(id, 'EchoAll');
  assert.equal((await client.getStatus(id)).status !== 'Failed', true);
  assert.equal((await client.waitForOrchestration(id, 10_000)).output, null);
});

test('a failed activity throws its message into the orchestration', async () => {
  const id = uid('catch');
  await client.startOrchestration(id, 'CatchActivity', 'Boom');
  assert.equal((await client.waitForOrchestration(id, 10_000)).output, 'caught: kaboom');
  const failed = (await client.readExecutionHistory(id, 1)).find((e) => e.kind === 'ActivityFailed');
  assert.ok(failed);
  assert.deepEqual(JSON.parse(failed.data ?? ''), {
    Application: { kind: 'ActivityFailed', message: 'kaboom', retryable: false },
  });
  assert.equal(failed.sourceEventId, 2);
});

test('results that JSON cannot encode fail the activity and name it', async () => {
  for (const name of ['Circular', 'Big']) {
    const id = uid(name);
    await client.startOrchestration(id, 'CatchActivity', name);
    const output = String((await client.waitForOrchestration(id, 10_000)).output);
    assert.match(output, new RegExp(`^caught: Activity '${name}' returned a value that cannot be encoded as JSON`));
  }
});

test('an uncaught orchestration error fails the instance with its stack', async () => {
  const id = uid('throws');
  await client.startOrchestration(id, 'Throws');
  const status = await client.waitForOrchestration(id, 10_000);
  assert.equal(status.status, 'Failed');
  assert.ok(status.error?.includes('Error: orchestration exploded'), status.error);
  assert.ok(status.error?.includes('at '), 'the stack is part of the message');
  assert.equal('output' in status, false);
  await assert.rejects(client.waitForOrchestrationTyped(id), /orchestration exploded/);
});

test('the activity context describes the running activity', async () => {
  const id = uid('describe');
  await client.startOrchestration(id, 'DescribeActivity');
  const output = (await client.waitForOrchestration(id, 10_000)).output as unknown as Record<string, unknown>;
  assert.equal(output.instanceId, id);
  assert.equal(output.executionId, 1);
  assert.equal(output.orchestrationName, 'DescribeActivity');
  assert.equal(output.orchestrationVersion, '1.0.0');
  assert.equal(output.activityName, 'Describe');
  assert.match(String(output.workerId), /^work-\d+-[0-9a-f]+$/);
  assert.equal(output.sessionId, null);
  assert.equal(output.tag, null);
  assert.equal(output.cancelled, false);
  assert.equal(output.hasClient, true);
});

test('instance info, execution info and history have the shapes duroxide returns', async () => {
  const id = uid('info');
  await client.startOrchestration(id, 'Hello', 'X');
  await client.waitForOrchestration(id, 10_000);
  const info = await client.getInstanceInfo(id);
  assert.deepEqual(Object.keys(info).sort(), [
    'createdAt',
    'currentExecutionId',
    'instanceId',
    'orchestrationName',
    'orchestrationVersion',
    'output',
    'status',
    'updatedAt',
  ]);
  assert.equal(info.output, 'Hello, X!');
  assert.equal(info.status, 'Completed');
  assert.equal(info.orchestrationVersion, '1.0.0');
  assert.ok(info.createdAt > 1_600_000_000_000 && info.updatedAt >= info.createdAt);

  const execution = await client.getExecutionInfo(id, 1);
  assert.equal(execution.executionId, 1);
  assert.equal(execution.status, 'Completed');
  assert.equal(execution.output, 'Hello, X!');
  assert.equal(execution.eventCount, 4);
  assert.ok(typeof execution.completedAt === 'number' && execution.completedAt >= execution.startedAt);
  assert.deepEqual(await client.listExecutions(id), [1]);

  const history = await client.readExecutionHistory(id, 1);
  assert.deepEqual(
    history.map((e) => e.kind),
    ['OrchestrationStarted', 'ActivityScheduled', 'ActivityCompleted', 'OrchestrationCompleted'],
  );
  assert.deepEqual(
    history.map((e) => e.eventId),
    [1, 2, 3, 4],
  );
  assert.deepEqual(JSON.parse(history[0].data ?? ''), { name: 'Hello', version: '1.0.0', input: 'X' });
  assert.equal('sourceEventId' in history[0], false);
  assert.deepEqual(JSON.parse(history[1].data ?? ''), { name: 'Greet', input: 'X' });
  assert.equal(history[2].data, '"Hello, X!"');
  assert.equal(history[2].sourceEventId, 2);
  assert.equal(history[3].data, '"Hello, X!"');
  assert.ok(history.every((e) => typeof e.timestampMs === 'number'));
});

test('unknown instances: NotFound status and clear errors', async () => {
  assert.deepEqual(await client.getStatus('no-such-instance'), { status: 'NotFound', customStatusVersion: 0 });
  await assert.rejects(client.getInstanceInfo('no-such-instance'), { message: 'Instance no-such-instance not found' });
  assert.deepEqual(await client.listExecutions('no-such-instance'), []);
  assert.deepEqual(await client.readExecutionHistory('no-such-instance', 1), []);
});

test('listing, metrics and queue depths', async () => {
  const id = uid('listed');
  await client.startOrchestration(id, 'Hello', 'L');
  await client.waitForOrchestration(id, 10_000);
  assert.ok((await client.listAllInstances()).includes(id));
  assert.ok((await client.listInstancesByStatus('Completed')).includes(id));
  assert.equal((await client.listInstancesByStatus('Running')).includes(id), false);
  assert.deepEqual(await client.listInstancesByStatus('Terminated'), []);
  const metrics = await client.getSystemMetrics();
  assert.ok(metrics.totalInstances >= 1 && metrics.completedInstances >= 1 && metrics.totalEvents >= 4);
  const depths = await client.getQueueDepths();
  assert.deepEqual(Object.keys(depths).sort(), ['orchestratorQueue', 'timerQueue', 'workerQueue']);
  assert.equal(depths.timerQueue, 0);

  const snapshot = runtime.metricsSnapshot();
  assert.ok(snapshot !== null);
  assert.ok(snapshot.orchStarts >= 1 && snapshot.orchCompletions >= 1 && snapshot.activitySuccess >= 1);
  assert.ok(snapshot.orchDispatcherItemsFetched >= 1 && snapshot.workerDispatcherItemsFetched >= 1);
});

test('metricsSnapshot is null before start and after shutdown', async () => {
  const other = new durox.Runtime(provider, { workerConcurrency: 1, orchestrationConcurrency: 1 });
  assert.equal(other.metricsSnapshot(), null);
  await other.start();
  assert.notEqual(other.metricsSnapshot(), null);
  await other.shutdown(0);
  assert.equal(other.metricsSnapshot(), null);
  await assert.rejects(other.start(), /shut down/);
});

test('starting the same instance twice runs one execution', async () => {
  const id = uid('twice');
  await client.startOrchestration(id, 'Hello', 'A');
  await client.startOrchestration(id, 'Hello', 'B');
  const status = await client.waitForOrchestration(id, 10_000);
  assert.equal(status.output, 'Hello, A!');
  await client.startOrchestration(id, 'Hello', 'C');
  const kinds = await historyKinds(client, id);
  assert.equal(kinds.filter((k) => k === 'OrchestrationStarted').length, 1);
  assert.deepEqual(await client.listExecutions(id), [1]);
});

test('waitForOrchestration times out with the message duroxide gives', async () => {
  const id = uid('waits');
  await client.startOrchestration(id, 'Waits');
  await assert.rejects(client.waitForOrchestration(id, 150), {
    message: /^Operation timed out: \w+\('[^']+'\) gave up after 150 ms; the instance is \w+$/,
  });
  await client.cancelInstance(id);
  const status = await client.waitForOrchestration(id, 10_000);
  assert.equal(status.error, 'canceled: ');
});
