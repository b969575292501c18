/** Group calls (runtime/call-batcher.ts) against in-memory calls: no database. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CallBatcher, type CallOutcome } from '../../src/runtime/call-batcher';

/** Calls whose completion the test controls; records every call. */
function controlledCalls() {
  const calls: Array<{ kind: 'one' | 'many'; acks: number[]; finish: () => void }> = [];
  return {
    calls,
    one: (ack: number) =>
      new Promise<number>((resolve) => calls.push({ kind: 'one', acks: [ack], finish: () => resolve(ack * 10) })),
    many: (acks: number[]) =>
      new Promise<Array<CallOutcome<number>>>((resolve) =>
        calls.push({
          kind: 'many',
          acks,
          finish: () =>
            resolve(
              acks.map((ack) =>
                ack < 0 ? { ok: false, error: new Error(`refused ${ack}`) } : { ok: true, value: ack * 10 },
              ),
            ),
        }),
      ),
  };
}

test('alone an ack goes out at once; acks that wait for a free call go out together', async () => {
  const control = controlledCalls();
  const commit = new CallBatcher<number, number>(control, 1);
  const first = commit.submit(1);
  const second = commit.submit(2);
  const third = commit.submit(3);
  assert.deepEqual(
    control.calls.map((c) => [c.kind, c.acks]),
    [['one', [1]]],
  );
  control.calls[0].finish();
  assert.equal(await first, 10);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(
    control.calls.map((c) => [c.kind, c.acks]),
    [
      ['one', [1]],
      ['many', [2, 3]],
    ],
  );
  control.calls[1].finish();
  assert.deepEqual(await Promise.all([second, third]), [20, 30]);
});

test('each ack of a batch gets its own outcome: one refusal fails only its own ack', async () => {
  const control = controlledCalls();
  const commit = new CallBatcher<number, number>(control, 1);
  const blocker = commit.submit(0);
  const good = commit.submit(4);
  const bad = commit.submit(-5);
  control.calls[0].finish();
  await blocker;
  await new Promise((resolve) => setImmediate(resolve));
  control.calls[1].finish();
  assert.equal(await good, 40);
  await assert.rejects(bad, /refused -5/);
});

test('a failed batch call rejects every ack in it', async () => {
  let release: () => void = () => undefined;
  const commit = new CallBatcher<number, number>(
    {
      one: () => new Promise<number>((resolve) => (release = () => resolve(0))),
      many: async () => {
        throw new Error('connection lost');
      },
    },
    1,
  );
  const first = commit.submit(1);
  const a = commit.submit(2);
  const b = commit.submit(3);
  release();
  await first;
  await assert.rejects(a, /connection lost/);
  await assert.rejects(b, /connection lost/);
});

test('while calls are slow (a distant database) up to the slow limit go out side by side, then they wait again', async () => {
  const control = controlledCalls();
  let slow = true;
  const commit = new CallBatcher<number, number>(control, 1, { maxInFlight: 3, slow: () => slow });
  const sent = [1, 2, 3, 4].map((ack) => commit.submit(ack));
  assert.deepEqual(
    control.calls.map((c) => [c.kind, c.acks]),
    [
      ['one', [1]],
      ['one', [2]],
      ['one', [3]],
    ],
    'three out at once, the fourth waits',
  );
  slow = false;
  control.calls[0].finish();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(control.calls.length, 3, 'quick again: one call in flight at most, and two still are');
  const fifth = commit.submit(5);
  control.calls[1].finish();
  control.calls[2].finish();
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(
    control.calls.slice(3).map((c) => [c.kind, c.acks]),
    [['many', [4, 5]]],
  );
  control.calls[3].finish();
  assert.deepEqual(await Promise.all([...sent, fifth]), [10, 20, 30, 40, 50]);
});
