import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect, durox, historyKinds, startRuntime, uid, type Client, type Provider, type Runtime } from './helpers';

let provider: Provider;
let runtime: Runtime;
let client: Client;

before(async () => {
  provider = await connect('composition');
  client = new durox.Client(provider);
  runtime = await startRuntime(provider, (rt) => {
    rt.registerActivity('Echo', (_ctx, v: unknown) => v);
    rt.registerActivity('Fail', (_ctx, msg: string) => {
      throw new Error(msg);
    });
    rt.registerActivity('SlowEcho', async (_ctx, v: unknown) => {
      await new Promise((resolve) => setTimeout(resolve, 800));
      return v;
    });
    rt.registerOrchestration('AllShapes', function* (ctx) {
      return yield ctx.all([
        ctx.scheduleActivity('Echo', 'text'),
        ctx.scheduleActivity('Echo', 7),
        ctx.scheduleActivity('Echo', { k: [1, 2] }),
        ctx.scheduleActivity('Echo', null),
        ctx.scheduleActivity('Echo', false),
        ctx.scheduleActivity('Fail', 'member failed'),
        ctx.scheduleTimer(10),
      ]);
    });
    rt.registerOrchestration('AllEmpty', function* (ctx) {
      return yield ctx.all([]);
    });
    rt.registerOrchestration('RaceTimerWins', function* (ctx) {
      return yield ctx.race(ctx.scheduleActivity('SlowEcho', 'late'), ctx.scheduleTimer(50));
    });
    rt.registerOrchestration('RaceActivityWins', function* (ctx) {
      return yield ctx.race(ctx.scheduleActivity('Echo', { fast: true }), ctx.scheduleTimer(5_000));
    });
    rt.registerOrchestration('RaceError', function* (ctx) {
      return yield ctx.race(ctx.scheduleActivity('Fail', 'lost fast'), ctx.scheduleTimer(5_000));
    });
    rt.registerOrchestration('RaceEvent', function* (ctx) {
      return yield ctx.race(ctx.waitForEvent('never'), ctx.scheduleActivity('Echo', 'activity'));
    });
    rt.registerOrchestration('RaceThree', function* (ctx) {
      try {
        return yield ctx.race(ctx.scheduleTimer(1), ctx.scheduleTimer(2), ctx.scheduleTimer(3));
      } catch (e) {
        return `error: ${(e as Error).message}`;
      }
    });
  });
});

after(async () => {
  await runtime.shutdown(100);
  await provider.close();
});

test('all: one {ok}/{err} per task, in task order, types preserved, never throws', async () => {
  const id = uid('all');
  await client.startOrchestration(id, 'AllShapes');
  const output = (await client.waitForOrchestration(id, 10_000)).output;
  assert.deepEqual(output, [
    { ok: 'text' },
    { ok: 7 },
    { ok: { k: [1, 2] } },
    { ok: null },
    { ok: false },
    { err: 'member failed' },
    { ok: null },
  ]);
});

test('all of nothing is an empty list', async () => {
  const id = uid('all-empty');
  await client.startOrchestration(id, 'AllEmpty');
  assert.deepEqual((await client.waitForOrchestration(id, 10_000)).output, []);
});

test('race: the timer wins and the losing activity is cancelled', async () => {
  const id = uid('race-timer');
  await client.startOrchestration(id, 'RaceTimerWins');
  assert.deepEqual((await client.waitForOrchestration(id, 10_000)).output, { index: 1, value: null });
  const kinds = await historyKinds(client, id);
  assert.ok(kinds.includes('ActivityCancelRequested'), kinds.join(','));
});

test('race: the activity wins with its value', async () => {
  const id = uid('race-activity');
  await client.startOrchestration(id, 'RaceActivityWins');
  assert.deepEqual((await client.waitForOrchestration(id, 10_000)).output, { index: 0, value: { fast: true } });
});

test('race: a failing winner is flattened into value', async () => {
  const id = uid('race-error');
  await client.startOrchestration(id, 'RaceError');
  assert.deepEqual((await client.waitForOrchestration(id, 10_000)).output, { index: 0, value: 'lost fast' });
});

test('race: a losing wait is cancelled with a breadcrumb', async () => {
  const id = uid('race-event');
  await client.startOrchestration(id, 'RaceEvent');
  assert.deepEqual((await client.waitForOrchestration(id, 10_000)).output, { index: 1, value: 'activity' });
  assert.ok((await historyKinds(client, id)).includes('ExternalSubscribedCancelled'));
});

test('race of three tasks is refused with the message duroxide gives', async () => {
  const id = uid('race-three');
  await client.startOrchestration(id, 'RaceThree');
  assert.equal(
    (await client.waitForOrchestration(id, 10_000)).output,
    'error: select currently supports exactly 2 tasks',
  );
});
