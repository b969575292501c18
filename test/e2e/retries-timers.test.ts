import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect, durox, historyKinds, startRuntime, uid, type Client, type Provider, type Runtime } from './helpers';

let provider: Provider;
let runtime: Runtime;
let client: Client;
const calls = new Map<string, number>();

function countCall(key: string): number {
  const n = (calls.get(key) ?? 0) + 1;
  calls.set(key, n);
  return n;
}

before(async () => {
  provider = await connect('retries');
  client = new durox.Client(provider);
  runtime = await startRuntime(provider, (rt) => {
    rt.registerActivity('FlakyTwice', (ctx) => {
      const n = countCall(ctx.instanceId);
      if (n <= 2) throw new Error(`flaky failure #${n}`);
      return `ok after ${n}`;
    });
    rt.registerActivity('AlwaysFails', (ctx) => {
      throw new Error(`always fails #${countCall(ctx.instanceId)}`);
    });
    rt.registerActivity('Slow', async () => {
      await new Promise((resolve) => setTimeout(resolve, 1500));
      return 'slow result';
    });
    rt.registerOrchestration('Retry', function* (ctx, input: { name: string; retry: Record<string, unknown> }) {
      try {
        return yield ctx.scheduleActivityWithRetry(input.name, null, input.retry as { maxAttempts: number });
      } catch (e) {
        return `error: ${(e as Error).message}`;
      }
    });
    rt.registerOrchestration('Sleep', function* (ctx, ms: number) {
      const fired = yield ctx.scheduleTimer(ms);
      return { fired };
    });
  });
});

after(async () => {
  await runtime.shutdown(100);
  await provider.close();
});

test('retry with exponential backoff succeeds on the third attempt', async () => {
  const id = uid('retry-ok');
  await client.startOrchestration(id, 'Retry', { name: 'FlakyTwice', retry: { maxAttempts: 3 } });
  const status = await client.waitForOrchestration(id, 10_000);
  assert.equal(status.output, 'ok after 3');
  const history = await client.readExecutionHistory(id, 1);
  const kinds = history.map((e) => e.kind);
  assert.equal(kinds.filter((k) => k === 'ActivityScheduled').length, 3);
  assert.equal(kinds.filter((k) => k === 'ActivityFailed').length, 2);
  const timers = history
    .filter((e) => e.kind === 'TimerCreated')
    .map((e) => JSON.parse(e.data ?? '{}').fireAtMs - e.timestampMs);
  assert.equal(timers.length, 2, 'one durable backoff timer between attempts');
  assert.ok(timers[1] > timers[0], `backoff grows: ${timers.join(', ')}`);
});

test('retry exhausted: the last error is thrown', async () => {
  const id = uid('retry-exhausted');
  await client.startOrchestration(id, 'Retry', { name: 'AlwaysFails', retry: { maxAttempts: 2, backoff: 'linear' } });
  const status = await client.waitForOrchestration(id, 10_000);
  assert.equal(status.output, 'error: always fails #2');
  assert.equal((await historyKinds(client, id)).filter((k) => k === 'ActivityScheduled').length, 2);
});

test('retry timeout: the timer wins, no further attempt, the activity is cancelled', async () => {
  const id = uid('retry-timeout');
  await client.startOrchestration(id, 'Retry', { name: 'Slow', retry: { maxAttempts: 3, timeoutMs: 200 } });
  const status = await client.waitForOrchestration(id, 10_000);
  assert.equal(status.output, 'error: timeout: activity timed out');
  const kinds = await historyKinds(client, id);
  assert.equal(kinds.filter((k) => k === 'ActivityScheduled').length, 1);
  assert.ok(kinds.includes('ActivityCancelRequested'), kinds.join(','));
});

test('a durable timer waits at least its delay and yields null', async () => {
  const id = uid('timer');
  const started = Date.now();
  await client.startOrchestration(id, 'Sleep', 400);
  const status = await client.waitForOrchestration(id, 10_000);
  assert.ok(Date.now() - started >= 400, 'the timer did not fire early');
  assert.deepEqual(status.output, { fired: null });
  const history = await client.readExecutionHistory(id, 1);
  const created = history.find((e) => e.kind === 'TimerCreated');
  const fired = history.find((e) => e.kind === 'TimerFired');
  assert.ok(created && fired);
  assert.equal(fired.sourceEventId, created.eventId);
  assert.deepEqual(JSON.parse(fired.data ?? ''), JSON.parse(created.data ?? ''));
});

test('a zero-delay timer fires', async () => {
  const id = uid('timer0');
  await client.startOrchestration(id, 'Sleep', 0);
  assert.deepEqual((await client.waitForOrchestration(id, 10_000)).output, { fired: null });
});
