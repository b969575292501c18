/**
 * Mutations and adversarial async orchestrations, each with its exact outcome: what must not
 * change a history, what must be reported as nondeterminism (and where), and what the guards
 * do with awaits that no history can replay.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promisify } from 'node:util';
import type { AsyncOrchestrationContext } from '../../src/core/async-context';
import type { OrchestrationContext } from '../../src/core/orchestration-context';
import { assertReplays, assertSameHistory, runToEnd } from './drive';
import { Sim, outcomeOf } from './harness';
import { sleep } from '../helpers/sleep';
import type { Untyped } from '../../src/core/turn-api';

type Ctx = AsyncOrchestrationContext;
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

// --- mutations -------------------------------------------------------------------------------

const sequential = (extraAwaits: boolean) => async (ctx: Ctx, n: number) => {
  const step = async (i: number): Promise<unknown> => {
    if (extraAwaits) await null;
    const r = await ctx.scheduleActivity('Step', i);
    if (extraAwaits) await null;
    return r;
  };
  const out = [];
  for (let i = 0; i < n; i++) out.push(await step(i));
  return out;
};

test('mutation: an extra `await null` in a sequential helper changes nothing', async () => {
  const plain = await runToEnd({ S: sequential(false) }, 'S', 4, { seed: 2, maxBatch: 2 });
  const mutated = await runToEnd({ S: sequential(true) }, 'S', 4, { seed: 2, maxBatch: 2 });
  assertSameHistory(plain, mutated, 'extra await');
  await assertReplays(plain, { S: sequential(true) }, 'the mutated code replays the original history');
});

const fanOut = (extraAwait: boolean) => async (ctx: Ctx) => {
  const gate = ctx.scheduleTimer(1);
  const left = async (): Promise<unknown> => {
    await gate;
    if (extraAwait) {
      await null;
      await null;
    }
    return ctx.scheduleActivity('Left');
  };
  const right = async (): Promise<unknown> => {
    await gate;
    return ctx.scheduleActivity('Right');
  };
  return Promise.all([left(), right()]);
};

test('mutation: extra awaits on one side of a fan-out that one delivery unblocks change nothing either', async () => {
  // Each continuation woken by a completion runs to quiescence before the next one is woken,
  // so the left branch emits first with or without its extra hops.
  const plain = await runToEnd({ F: fanOut(false) }, 'F', null);
  const mutated = await runToEnd({ F: fanOut(true) }, 'F', null);
  assertSameHistory(plain, mutated, 'fan-out');
  assert.deepEqual(
    plain.history.filter((e) => e.kind === 'ActivityScheduled').map((e) => (e as { name: string }).name),
    ['Left', 'Right'],
  );
});

test('mutation: a changed body is reported as nondeterministic, naming the position', async () => {
  const recorded = await runToEnd({ S: sequential(false) }, 'S', 3);
  const changed = async (ctx: Ctx, n: number) => {
    const out = [];
    for (let i = 0; i < n; i++) out.push(await ctx.scheduleActivity(i === 1 ? 'Renamed' : 'Step', i));
    return out;
  };
  const sim = new Sim({ S: changed });
  const last = recorded.turns[recorded.turns.length - 1];
  sim.history = last.before.history;
  const result = await sim.turnAsync(last.messages);
  assert.equal(
    outcomeOf(result),
    'failed:configuration:schedule mismatch: ' +
      'action=ScheduleActivity{name="Renamed", input="1", session=null, tag=null} vs ' +
      'event=ActivityScheduled#4{name="Step", input="1", session=null, tag=null}',
  );
});

// --- adversarial -----------------------------------------------------------------------------

test(
  'adversarial: a race against setTimeout fails at once in guard mode, naming ' + 'the timer and its call site',
  async () => {
    const sim = new Sim({
      R: async (ctx: Ctx) =>
        Promise.race([ctx.scheduleActivity('A'), new Promise((resolve) => setTimeout(resolve, 5, 'timeout'))]),
    });
    const result = await sim.turnAsync([sim.start('R')]);
    assert.match(
      outcomeOf(result),
      /^failed:configuration:orchestration 'R' awaited a timer \(setTimeout\/setInterval\) \[Timeout\], created at .*async-guards\.test\.js:\d+:\d+\)?; only ctx tasks can be awaited/,
    );
  },
);

test(
  'adversarial: without guards the setTimeout never wins: the continuation after ' +
    'the turn finds its context sealed',
  async () => {
    const sim = new Sim({
      R: async (ctx: Ctx) => {
        const winner = await Promise.race([ctx.scheduleActivity('A'), sleep(5).then(() => 'timeout')]);
        await ctx.scheduleActivity('After', winner);
        return winner;
      },
    });
    sim.asyncGuards = false;
    assert.equal(outcomeOf(await sim.turnAsync([sim.start('R')])), 'continue');
    await sleep(30);
    assert.ok(
      sim.traces.some(
        (t) =>
          t.level === 'error' &&
          t.message.startsWith('ctx.scheduleActivity() called after the orchestration turn ended'),
      ),
      JSON.stringify(sim.traces),
    );
    await sim.turnAsync([sim.done(2, 'a')]);
    assert.equal(outcomeOf(await sim.turnAsync([sim.done(sim.idOf('ActivityScheduled', 1), 'x')])), 'completed:"a"');
  },
);

test('adversarial: fetch inside an orchestration fails in guard mode, naming the network access', async () => {
  const sim = new Sim({ F: async () => (await fetch('http://127.0.0.1:59999/')).status });
  const result = await sim.turnAsync([sim.start('F')]);
  assert.match(
    outcomeOf(result),
    /^failed:configuration:orchestration 'F' awaited a (network connection|network socket|DNS lookup|timer).*; only ctx tasks can be awaited/,
  );
});

test('adversarial: fetch without guards is caught when nothing durable is left to wait for', async () => {
  const sim = new Sim({ F: async () => (await fetch('http://127.0.0.1:59999/')).status });
  sim.asyncGuards = false;
  const result = await sim.turnAsync([sim.start('F')]);
  assert.match(
    outcomeOf(result),
    /^failed:configuration:orchestration 'F' is awaiting something that is not a ctx task/,
  );
  await sleep(50);
});

test('adversarial: branching on Date.now() replays as nondeterminism at the first differing schedule', async () => {
  const branchy = async (ctx: Ctx) => {
    await ctx.scheduleActivity('First');
    return ctx.scheduleActivity(Date.now() % 2 === 0 ? 'Even' : 'Odd');
  };
  const realNow = Date.now;
  try {
    Date.now = () => 1000;
    const sim = new Sim({ B: branchy });
    await sim.ackAsync([sim.start('B')]);
    await sim.ackAsync([sim.done(2, 1)]);
    Date.now = () => 1001;
    const result = await sim.turnAsync([sim.done(4, 2)]);
    assert.equal(
      outcomeOf(result),
      'failed:configuration:schedule mismatch: action=ScheduleActivity{name="Odd", ' +
        'input="null", session=null, tag=null} vs ' +
        'event=ActivityScheduled#4{name="Even", input="null", session=null, tag=null}',
    );
  } finally {
    Date.now = realNow;
  }
});

test('adversarial: a forgotten await before return still returns the task result, with the same history', async () => {
  const forgot = await runToEnd({ F: async (ctx: Ctx) => ctx.scheduleActivity('A', 1) }, 'F', null);
  const awaited = await runToEnd({ F: async (ctx: Ctx) => await ctx.scheduleActivity('A', 1) }, 'F', null);
  assert.equal(forgot.outcome, 'completed:"A(1)"');
  assertSameHistory(forgot, awaited, 'forgotten await');
});

test(
  'adversarial: a rejection inside an async IIFE is logged for the instance and ' + 'never crashes the process',
  async () => {
    // In a child process: the test runner itself listens for unhandled rejections, which would
    // hide what a plain Node process does with them.
    const fixture = join(__dirname, 'fixtures', 'iife-rejection.js');
    const { stdout } = await promisify(execFile)(process.execPath, [fixture], { timeout: 20_000 });
    const report = JSON.parse(stdout) as { outcome: string; logged: string[] };
    assert.equal(report.outcome, 'completed:"b"');
    // Logged by every turn that re-runs the code past the rejection (the fixture runs three turns).
    assert.deepEqual([...new Set(report.logged)].sort(), [
      'unhandled rejection in orchestration code (ignored; await or catch it): Error: boom',
      'unhandled rejection in orchestration code (ignored; await or catch it): Error: thrown before any await',
    ]);
  },
);

test("adversarial: a rejection that is not an orchestration's still crashes the process as Node would", async () => {
  const fixture = join(__dirname, 'fixtures', 'iife-rejection.js');
  await assert.rejects(
    promisify(execFile)(process.execPath, [fixture, '--foreign'], { timeout: 20_000 }),
    (error: { code?: number; stderr?: string }) => {
      assert.equal(error.code, 1);
      assert.match(error.stderr ?? '', /Error: not an orchestration's/);
      return true;
    },
  );
});

test('adversarial: an unawaited failing durable call neither crashes nor logs', async () => {
  const sim = new Sim({
    U: async (ctx: Ctx) => {
      ctx.scheduleActivity('FailX');
      return ctx.scheduleActivity('B');
    },
  });
  await sim.ackAsync([sim.start('U')]);
  await sim.ackAsync([sim.failed(2, 'boom')]);
  assert.equal(outcomeOf(await sim.turnAsync([sim.done(3, 'b')])), 'completed:"b"');
  await tick();
  assert.deepEqual(
    sim.traces.filter((t) => t.level === 'error'),
    [],
  );
});

test('adversarial: a promise that never settles fails the instance once nothing durable is pending', async () => {
  const alone = new Sim({ N: async () => new Promise(() => undefined) });
  assert.match(
    outcomeOf(await alone.turnAsync([alone.start('N')])),
    /^failed:configuration:orchestration 'N' is awaiting something that is not a ctx task/,
  );
  const beside = new Sim({
    N: async (ctx: Ctx) => Promise.all([ctx.scheduleActivity('A'), new Promise(() => undefined)]),
  });
  assert.equal(outcomeOf(await beside.turnAsync([beside.start('N')])), 'continue');
  assert.match(
    outcomeOf(await beside.turnAsync([beside.done(2, 'a')])),
    /^failed:configuration:orchestration 'N' is awaiting something that is not a ctx task/,
  );
});

test('adversarial: a 10,000-iteration loop of awaits completes with the history of its generator twin', async () => {
  const asyncLoop = async (ctx: Ctx) => {
    let sum = 0;
    for (let i = 0; i < 10_000; i++) {
      await null;
      const joined = await ctx.all([]);
      sum += i + joined.length;
      if (i % 2500 === 0) ctx.setCustomStatus(`at ${i}`);
    }
    return (await ctx.scheduleActivity('Done')) === 'Done(null)' ? sum : -1;
  };
  const genLoop = function* (ctx: OrchestrationContext): Generator<unknown, unknown, Untyped> {
    let sum = 0;
    for (let i = 0; i < 10_000; i++) {
      const joined = yield ctx.all([]);
      sum += i + joined.length;
      if (i % 2500 === 0) ctx.setCustomStatus(`at ${i}`);
    }
    return (yield ctx.scheduleActivity('Done')) === 'Done(null)' ? sum : -1;
  };
  const a = await runToEnd({ L: asyncLoop }, 'L', null);
  const g = await runToEnd({ L: genLoop }, 'L', null);
  assert.equal(a.outcome, 'completed:49995000');
  assertSameHistory(g, a, '10k loop');
});

test('a context used after its turn ended throws and is logged', async () => {
  let saved: Ctx | undefined;
  const sim = new Sim({
    K: async (ctx: Ctx) => {
      saved = ctx;
      return ctx.scheduleActivity('A');
    },
  });
  await sim.ackAsync([sim.start('K')]);
  assert.throws(() => saved!.setValue('k', 'v'), /^Error: ctx\.setValue\(\) called after the orchestration turn ended/);
  assert.throws(() => saved!.scheduleTimer(5), /ctx\.scheduleTimer\(\) called after the orchestration turn ended/);
  assert.equal(
    sim.traces.filter((t) => t.level === 'error' && t.message.includes('after the orchestration turn ended')).length,
    2,
  );
});

test('invalid tasks fail the orchestration like in a generator; composition errors can be caught', async () => {
  const sim = new Sim({
    V: async (ctx: Ctx) => {
      let caught = '';
      try {
        await ctx.race(ctx.scheduleTimer(1));
      } catch (e) {
        caught = (e as Error).message;
      }
      ctx.setCustomStatus(caught);
      await ctx.all([Promise.resolve(1) as never]);
    },
  });
  const result = await sim.turnAsync([sim.start('V')]);
  assert.equal(sim.customStatus, 'select currently supports exactly 2 tasks');
  assert.equal(
    outcomeOf(result),
    "failed:application:invalid step result: member of 'join' is not a task: a " +
      'Promise (orchestrations must yield ctx tasks, not promises)',
  );
});
