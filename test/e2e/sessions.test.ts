/**
 * Worker sessions end to end (docs/runtime.md, "Sessions"): affinity of a
 * session to one worker identity, retry on a session, maxSessionsPerRuntime spreading sessions
 * over runtimes, idle unpinning, and the start-up validation of sessionIdleTimeoutMs.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect, durox, sleep, startRuntime, uid, type Client, type Provider, type Runtime } from './helpers';

let provider: Provider;
let client: Client;
const runtimes: Runtime[] = [];
const failuresLeft = new Map<string, number>();

/** Activities that report which node ran them; `Flaky` fails its first two attempts per key. */
function registerActivities(rt: Runtime, node: string): void {
  rt.registerActivity('Where', async (_ctx, delayMs: number) => {
    await sleep(delayMs);
    return node;
  });
  rt.registerActivity('Flaky', (ctx, key: string) => {
    const left = failuresLeft.get(key) ?? 2;
    failuresLeft.set(key, left - 1);
    if (left > 0) throw new Error(`attempt on ${node} fails`);
    return { node, session: ctx.sessionId };
  });
}

function registerOrchestrations(rt: Runtime): void {
  rt.registerOrchestration('SameSession', function* (ctx, input: { session: string; count: number }) {
    const nodes: string[] = [];
    for (let i = 0; i < input.count; i += 1) nodes.push(yield ctx.scheduleActivityOnSession('Where', 5, input.session));
    const parallel: Array<{ ok: string }> = yield ctx.all(
      Array.from({ length: 4 }, () => ctx.scheduleActivityOnSession('Where', 20, input.session)),
    );
    return [...nodes, ...parallel.map((result) => result.ok)];
  });
  rt.registerOrchestration('RetryOnSession', function* (ctx, input: { session: string; key: string }) {
    const first = yield ctx.scheduleActivityOnSession('Where', 0, input.session);
    const retried = yield ctx.scheduleActivityWithRetryOnSession(
      'Flaky',
      input.key,
      { maxAttempts: 3, backoff: 'fixed', timeoutMs: 10_000 },
      input.session,
    );
    return { first, retried };
  });
  rt.registerOrchestration('TwoSessions', function* (ctx, input: { a: string; b: string }) {
    const results: Array<{ ok: string }> = yield ctx.all([
      ctx.scheduleActivityOnSession('Where', 600, input.a),
      ctx.scheduleActivityOnSession('Where', 600, input.b),
    ]);
    return results.map((result) => result.ok);
  });
}

before(async () => {
  provider = await connect('sessions');
  client = new durox.Client(provider);
  for (const node of ['node-a', 'node-b']) {
    runtimes.push(
      await startRuntime(
        provider,
        (rt) => {
          registerActivities(rt, node);
          registerOrchestrations(rt);
        },
        { workerNodeId: node, workerConcurrency: 3, maxSessionsPerRuntime: 1 },
      ),
    );
  }
});

after(async () => {
  for (const runtime of runtimes) await runtime.shutdown(100);
  await provider.close();
});

test('every activity of a session runs on the worker that owns it, sequential and parallel alike', async () => {
  for (const session of ['plain-session', "hostile'); DROP TABLE sessions; --\u{1F600}"]) {
    const id = uid('same');
    await client.startOrchestration(id, 'SameSession', { session, count: 4 });
    const status = await client.waitForOrchestration(id, 20_000);
    assert.equal(status.status, 'Completed', status.error);
    const nodes = status.output as unknown as string[];
    assert.equal(nodes.length, 8);
    assert.equal(new Set(nodes).size, 1, `one node ran session ${JSON.stringify(session)}: ${nodes.join(', ')}`);
  }
});

test('retry on a session keeps every attempt on the session owner', async () => {
  const id = uid('retry');
  const session = uid('retry-session');
  await client.startOrchestration(id, 'RetryOnSession', { session, key: id });
  const status = await client.waitForOrchestration(id, 20_000);
  assert.equal(status.status, 'Completed', status.error);
  const output = status.output as unknown as { first: string; retried: { node: string; session: string } };
  assert.equal(output.retried.node, output.first, 'the successful third attempt ran where the session lives');
  assert.equal(output.retried.session, session, 'the activity context reports its session');
  assert.equal(failuresLeft.get(id), -1, 'two failed attempts, then success');
});

test('with maxSessionsPerRuntime 1, two concurrent sessions are spread over the two runtimes', async () => {
  const id = uid('two');
  await client.startOrchestration(id, 'TwoSessions', { a: uid('sa'), b: uid('sb') });
  const status = await client.waitForOrchestration(id, 20_000);
  assert.equal(status.status, 'Completed', status.error);
  assert.deepEqual([...(status.output as unknown as string[])].sort(), ['node-a', 'node-b']);
});

test('a session unpins after its idle timeout and moves to another worker', async () => {
  const local = await connect('sessions_idle');
  const localClient = new durox.Client(local);
  const options = { workerLockTimeoutMs: 2_000, sessionIdleTimeoutMs: 1_500 };
  const first = await startRuntime(
    local,
    (rt) => {
      registerActivities(rt, 'first');
      registerOrchestrations(rt);
    },
    { ...options, workerNodeId: 'first' },
  );
  const session = uid('idle-session');
  const one = uid('idle');
  await localClient.startOrchestration(one, 'SameSession', { session, count: 1 });
  assert.deepEqual(
    new Set((await localClient.waitForOrchestration(one, 20_000)).output as unknown as string[]),
    new Set(['first']),
  );
  await first.shutdown(100);
  const second = await startRuntime(
    local,
    (rt) => {
      registerActivities(rt, 'second');
      registerOrchestrations(rt);
    },
    { ...options, workerNodeId: 'second' },
  );
  try {
    const started = Date.now();
    const two = uid('idle');
    await localClient.startOrchestration(two, 'SameSession', { session, count: 1 });
    const status = await localClient.waitForOrchestration(two, 20_000);
    assert.deepEqual(
      new Set(status.output as unknown as string[]),
      new Set(['second']),
      'the lapsed session is claimed by the new worker',
    );
    // The session lock is min(30 s, idle timeout) = 1.5 s; a new runtime that was woken while the
    // session was still pinned looks again at the latest at the 10 s push safety fetch.
    assert.ok(Date.now() - started < 20_000, 'unpinned after the short session lock, not the 30 s default');
  } finally {
    await second.shutdown(100);
    await local.close();
  }
});

test('start refuses an idle timeout not above workerLockTimeoutMs - 5 s, naming the option', async () => {
  const runtime = new durox.Runtime(provider, { workerLockTimeoutMs: 30_000, sessionIdleTimeoutMs: 20_000 });
  await assert.rejects(runtime.start(), /sessionIdleTimeoutMs \(20000\) must exceed 25000 ms/);
  assert.throws(() => new durox.Runtime(provider, { maxSessionsPerRuntime: 0 }), /maxSessionsPerRuntime/);
});

test('a restarted node with the same workerNodeId keeps its sessions at once', async () => {
  const local = await connect('sessions_node');
  const localClient = new durox.Client(local);
  const register = (rt: Runtime, node: string): void => {
    registerActivities(rt, node);
    registerOrchestrations(rt);
  };
  const session = uid('stable-session');
  let node = await startRuntime(local, (rt) => register(rt, 'before'), { workerNodeId: 'stable' });
  try {
    const one = uid('stable');
    await localClient.startOrchestration(one, 'SameSession', { session, count: 1 });
    assert.equal((await localClient.waitForOrchestration(one, 20_000)).status, 'Completed');
    await node.shutdown(100);
    node = await startRuntime(local, (rt) => register(rt, 'after'), { workerNodeId: 'stable' });
    const started = Date.now();
    const two = uid('stable');
    await localClient.startOrchestration(two, 'SameSession', { session, count: 1 });
    const status = await localClient.waitForOrchestration(two, 20_000);
    assert.deepEqual(new Set(status.output as unknown as string[]), new Set(['after']));
    assert.ok(Date.now() - started < 5_000, 'no wait for the 30 s session lock: the identity still owns it');
  } finally {
    await node.shutdown(100);
    await local.close();
  }
});

test('a session id PostgreSQL text cannot hold fails the orchestration with an error naming it', async () => {
  const id = uid('nul');
  await client.startOrchestration(id, 'SameSession', { session: 'bad\u0000session', count: 1 });
  const status = await client.waitForOrchestration(id, 20_000);
  assert.equal(status.status, 'Failed');
  assert.match(status.error ?? '', /sessionId/);
});

test('session locks are renewed while the owner works, so a long activity keeps its session pinned', async () => {
  const local = await connect('sessions_renew');
  const localClient = new durox.Client(local);
  // Session lock = idle timeout = 1.5 s, renewed every second; the activity runs 3 s.
  const options = { workerLockTimeoutMs: 2_000, sessionIdleTimeoutMs: 1_500, workerConcurrency: 1 };
  const nodes: Runtime[] = [];
  const start = async (node: string): Promise<void> => {
    nodes.push(
      await startRuntime(
        local,
        (rt) => {
          registerActivities(rt, node);
          rt.registerOrchestration('LongThenShort', function* (ctx, session: string) {
            const results: Array<{ ok: string }> = yield ctx.all([
              ctx.scheduleActivityOnSession('Where', 3_000, session),
              ctx.scheduleActivityOnSession('Where', 0, session),
            ]);
            return results.map((result) => result.ok);
          });
        },
        { ...options, workerNodeId: node },
      ),
    );
  };
  try {
    await start('owner');
    const id = uid('renew');
    await localClient.startOrchestration(id, 'LongThenShort', uid('renew-session'));
    // Another node starts (and fetches at once) after the first session lease would have lapsed.
    await sleep(2_200);
    await start('other');
    const status = await localClient.waitForOrchestration(id, 20_000);
    const ran = status.output as unknown as string[];
    assert.equal(new Set(ran).size, 1, `both activities ran on the session owner, not ${ran.join(' and ')}`);
  } finally {
    for (const node of nodes) await node.shutdown(100);
    await local.close();
  }
});
