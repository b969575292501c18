/**
 * Async orchestrations end to end on a real store: they run beside generators, write the same
 * histories, replay each other's histories across a restart, and guard mode fails a non-durable
 * await with a message naming it.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { AsyncOrchestrationContext, OrchestrationContext, ScheduledTask } from '../../src/index';
import { connect, durox, eventually, startRuntime, uid, type Client, type Provider, type Runtime } from './helpers';
import type { Untyped } from '../../src/core/turn-api';

let provider: Provider;
let client: Client;
const GUARDED = { asyncOrchestrationGuards: true };

before(async () => {
  provider = await connect('async');
  client = new durox.Client(provider);
});

after(async () => {
  await provider.close();
});

function registerActivities(rt: Runtime): void {
  rt.registerActivity('Square', async (_ctx, n: number) => n * n);
  rt.registerActivity('Add', (_ctx, input: { a: number; b: number }) => input.a + input.b);
  rt.registerActivity('Flaky', (ctx) => {
    if (ctx.executionId === 1 && !flakyTried.has(ctx.instanceId)) {
      flakyTried.add(ctx.instanceId);
      throw new Error('first attempt fails');
    }
    return 'recovered';
  });
}
const flakyTried = new Set<string>();

/** One orchestration in both forms: fan-out, retry, a timer race, a child, an event, continue-as-new. */
function* workflowGen(
  ctx: OrchestrationContext,
  input: { n: number; round: number; child: string },
): Generator<ScheduledTask, unknown, Untyped> {
  const squares = yield ctx.all([1, 2, 3].map((i) => ctx.scheduleActivity('Square', i * input.n)));
  const total = squares.reduce((sum: number, r: { ok: number }) => sum + r.ok, 0);
  const retried = yield ctx.scheduleActivityWithRetry('Flaky', null, { maxAttempts: 3, backoff: 'fixed' });
  const raced = yield ctx.race(ctx.scheduleActivity('Add', { a: total, b: 1 }), ctx.scheduleTimer(60_000));
  const child = yield ctx.scheduleSubOrchestration(input.child, total);
  ctx.setCustomStatus('waiting for go');
  const go = yield ctx.waitForEvent('go');
  if (input.round === 0) {
    yield ctx.continueAsNew({ ...input, round: 1 });
    return null;
  }
  return { total, retried, raced, child, go };
}

async function workflowAsync(
  ctx: AsyncOrchestrationContext,
  input: { n: number; round: number; child: string },
): Promise<unknown> {
  const squares = await ctx.all<number>([1, 2, 3].map((i) => ctx.scheduleActivity<number>('Square', i * input.n)));
  const total = squares.reduce((sum, r) => sum + (r.ok ?? 0), 0);
  const retried = await ctx.scheduleActivityWithRetry<string>('Flaky', null, { maxAttempts: 3, backoff: 'fixed' });
  const raced = await ctx.race(ctx.scheduleActivity('Add', { a: total, b: 1 }), ctx.scheduleTimer(60_000));
  const child = await ctx.scheduleSubOrchestration(input.child, total);
  ctx.setCustomStatus('waiting for go');
  const go = await ctx.waitForEvent('go');
  if (input.round === 0) {
    await ctx.continueAsNew({ ...input, round: 1 });
    return null;
  }
  return { total, retried, raced, child, go };
}

function register(rt: Runtime): void {
  registerActivities(rt);
  rt.registerOrchestration('WorkflowGen', workflowGen);
  rt.registerOrchestration('WorkflowAsync', workflowAsync);
  rt.registerOrchestration('ChildGen', function* (ctx, n: number) {
    return (yield ctx.scheduleActivity('Add', { a: n, b: n })) as number;
  });
  rt.registerOrchestration('ChildAsync', async (ctx, n: number) => ctx.scheduleActivity<number>('Add', { a: n, b: n }));
}

/** History of every execution without ids of other instances, times, or writer versions. */
async function comparableHistory(instanceId: string): Promise<unknown[]> {
  const out: unknown[] = [];
  for (const executionId of await client.listExecutions(instanceId)) {
    for (const event of await client.readExecutionHistory(instanceId, executionId)) {
      let data = event.data
        ?.replace(/"child":"Child(Gen|Async)"/g, '"child":"Child"')
        .replace(/"name":"Child(Gen|Async)"/, '"name":"Child"')
        .replace(/"name":"Workflow(Gen|Async)"/, '"name":"Workflow"');
      if (event.kind === 'TimerCreated' || event.kind === 'TimerFired') data = undefined;
      out.push({ kind: event.kind, data, source: event.sourceEventId });
    }
  }
  return out;
}

async function runToEnd(name: string, child: string): Promise<{ id: string; output: unknown }> {
  const id = uid(name);
  await client.startOrchestration(id, name, { n: 2, round: 0, child });
  for (const executionId of [1, 2]) {
    await eventually(
      async () => {
        const history = await client.readExecutionHistory(id, executionId).catch(() => []);
        return history.some((e) => e.kind === 'ExternalSubscribed') ? true : undefined;
      },
      20_000,
      `execution ${executionId} waits for go`,
    );
    await client.raiseEvent(id, 'go', { round: executionId });
  }
  const status = await client.waitForOrchestration(id, 20_000);
  assert.equal(status.status, 'Completed', JSON.stringify(status));
  return { id, output: status.output };
}

test('the reported crash: `await ctx.all(...)` then `.reduce` in an async orchestration completes', async () => {
  const runtime = await startRuntime(
    provider,
    (rt) => {
      registerActivities(rt);
      rt.registerOrchestration('Reduce', async (ctx, n: number) => {
        const r = await ctx.all([ctx.scheduleActivity('Square', n), ctx.scheduleActivity('Square', n + 1)]);
        return r.reduce((sum, x) => sum + (x.ok as number), 0);
      });
    },
    GUARDED,
  );
  try {
    const id = uid('reduce');
    await client.startOrchestration(id, 'Reduce', 3);
    assert.deepEqual(await client.waitForOrchestration(id, 10_000), {
      status: 'Completed',
      output: 25,
      customStatusVersion: 0,
    });
  } finally {
    await runtime.shutdown(100);
  }
});

test(
  'differential end to end: the same workflow as a generator and as an async ' + 'function writes the same history',
  async () => {
    // One activity slot: parallel activities then complete in the order they were scheduled, so
    // both runs receive the same completions in the same order.
    const runtime = await startRuntime(provider, register, { ...GUARDED, workerConcurrency: 1 });
    try {
      const gen = await runToEnd('WorkflowGen', 'ChildGen');
      const async = await runToEnd('WorkflowAsync', 'ChildAsync');
      assert.deepEqual(async.output, gen.output);
      assert.deepEqual(gen.output, {
        total: 56,
        retried: 'recovered',
        raced: { index: 0, value: 57 },
        child: 112,
        go: { round: 2 },
      });
      // How completions are batched into turns depends on timing on a real store (two completions
      // in one turn put the next scheduling after both, in two turns between them), so end to end
      // the two histories must hold the same events; the exact order under every batching is the
      // job of test/core/async-differential.test.ts and async-properties.test.ts.
      // Event ids shift with the order, so the multisets leave them out.
      const sorted = (events: unknown[]): string[] =>
        events.map((e) => JSON.stringify({ ...(e as object), source: undefined })).sort();
      assert.deepEqual(sorted(await comparableHistory(async.id)), sorted(await comparableHistory(gen.id)));
    } finally {
      await runtime.shutdown(100);
    }
  },
);

test(
  'cross replay end to end: an instance started as a generator finishes as an ' + 'async function, and back',
  async () => {
    for (const [first, second] of [
      ['generator', 'async'],
      ['async', 'generator'],
    ] as const) {
      const form = (kind: 'generator' | 'async') => (rt: Runtime) => {
        registerActivities(rt);
        if (kind === 'generator') rt.registerOrchestration('Switch', workflowGen);
        else rt.registerOrchestration('Switch', workflowAsync);
        rt.registerOrchestration('ChildGen', async (ctx, n: number) =>
          ctx.scheduleActivity<number>('Add', { a: n, b: n }),
        );
      };
      const id = uid(`switch-${first}`);
      const before = await startRuntime(provider, form(first), GUARDED);
      await client.startOrchestration(id, 'Switch', { n: 1, round: 1, child: 'ChildGen' });
      await eventually(
        async () =>
          (await client.readExecutionHistory(id, 1)).some((e) => e.kind === 'ExternalSubscribed') ? true : undefined,
        20_000,
      );
      await before.shutdown(100);
      const afterRuntime = await startRuntime(provider, form(second), GUARDED);
      try {
        await client.raiseEvent(id, 'go', 'now');
        const status = await client.waitForOrchestration(id, 20_000);
        assert.equal(status.status, 'Completed', `${first} -> ${second}: ${JSON.stringify(status)}`);
        assert.equal((status.output as unknown as { go: string }).go, 'now');
      } finally {
        await afterRuntime.shutdown(100);
      }
    }
  },
);

test('guard mode end to end: awaiting setTimeout fails the instance with a message naming it', async () => {
  const runtime = await startRuntime(
    provider,
    (rt) => {
      registerActivities(rt);
      rt.registerOrchestration('Sleepy', async (ctx) => {
        await new Promise((resolve) => setTimeout(resolve, 10));
        return ctx.scheduleActivity('Square', 2);
      });
    },
    GUARDED,
  );
  try {
    const id = uid('sleepy');
    await client.startOrchestration(id, 'Sleepy');
    const status = await client.waitForOrchestration(id, 10_000);
    assert.equal(status.status, 'Failed');
    assert.match(
      status.error ?? '',
      /^nondeterministic: orchestration 'Sleepy' awaited a timer \(setTimeout\/setInterval\) \[Timeout\], created at /,
    );
  } finally {
    await runtime.shutdown(100);
  }
});
