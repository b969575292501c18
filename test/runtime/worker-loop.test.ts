/** The shared worker loop against in-memory queues: no database, every wait ends on a signal. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { wakeSignal } from '../../src/provider/local-wakeups';
import { PushWakeups } from '../../src/provider/push-wakeups';
import { handOffInbox } from '../../src/runtime/handoff-inbox';
import { openGate, type WakeReason } from '../../src/runtime/queue-gate';
import { runWorkerLoop, type WorkerLoop } from '../../src/runtime/worker-loop';
import { fakeLiveChannel, fakePollingProvider } from './fake-wakeups';
import type { Provider } from '../../src/provider/contract';

/** A worker loop over `queue` that records what it does; `onRun` sees every item run. */
function loopOver(
  provider: Provider,
  queue: string[],
  stop: AbortController,
  overrides: Partial<WorkerLoop<string>> = {},
) {
  const push = new PushWakeups(provider);
  const { gate, release } = openGate<string>(push, 'orchestrator');
  const inbox = handOffInbox(gate);
  const seen = {
    fetches: [] as WakeReason[],
    ran: [] as string[],
    givenBack: [] as string[],
    failures: 0,
    recoveries: 0,
  };
  const loop: WorkerLoop<string> = {
    signal: stop.signal,
    push,
    gate,
    inbox,
    localWake: wakeSignal(provider, 'orchestrator'),
    pollIntervalMs: 60_000,
    fetchBackoffBaseMs: 1,
    fetchBackoffMaxMs: 2,
    maySleepOnGate: () => true,
    fetch: async (reason) => {
      seen.fetches.push(reason);
      return queue.shift() ?? null;
    },
    fetchSucceeded: () => void (seen.recoveries += 1),
    fetchFailed: () => void (seen.failures += 1),
    received: () => undefined,
    run: async (item) => void seen.ran.push(item),
    runHandedOff: async (item) => void seen.ran.push(`handed:${item}`),
    giveBack: async (item) => void seen.givenBack.push(item),
    ...overrides,
  };
  return { push, gate, inbox, release, seen, loop };
}

/** Resolves once `condition` holds, checking after every turn of the event loop. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}

test('polling: drains the queue, then sleeps until the local signal announces more', async () => {
  const provider = fakePollingProvider();
  const stop = new AbortController();
  const queue = ['a', 'b'];
  const { seen, loop } = loopOver(provider, queue, stop);
  const done = runWorkerLoop(loop);
  await until(() => seen.ran.length === 2 && seen.fetches.length === 3);
  queue.push('c');
  wakeSignal(provider, 'orchestrator').notify();
  await until(() => seen.ran.length === 3);
  stop.abort();
  await done;
  assert.deepEqual(seen.ran, ['a', 'b', 'c']);
  assert.ok(seen.fetches.every((reason) => reason === 'drain'));
});

test('push live: an idle worker fetches once per announced item and sleeps otherwise', async () => {
  const channel = fakeLiveChannel();
  const stop = new AbortController();
  const queue: string[] = [];
  const { seen, loop, release, push } = loopOver(channel.provider, queue, stop);
  const use = push.acquire();
  const done = runWorkerLoop(loop);
  await until(() => seen.fetches.length === 1); // the first drain finds nothing
  queue.push('x');
  channel.emit({ kind: 'queue', queue: 'orchestrator', ready: 1, dueInMs: null });
  await until(() => seen.ran.length === 1);
  assert.deepEqual(seen.fetches, ['drain', 'once']);
  stop.abort();
  await done;
  release();
  use();
});

test('a failed fetch backs off and retries; the loop reports the failure and the recovery', async () => {
  const provider = fakePollingProvider();
  const stop = new AbortController();
  let calls = 0;
  const { seen, loop } = loopOver(provider, [], stop, {
    fetch: async () => {
      calls += 1;
      if (calls === 1) throw new Error('connection reset');
      return calls === 2 ? 'after-retry' : null;
    },
  });
  const done = runWorkerLoop(loop);
  await until(() => seen.ran.length === 1);
  stop.abort();
  await done;
  assert.equal(seen.failures, 1);
  assert.ok(seen.recoveries >= 1);
  assert.deepEqual(seen.ran, ['after-retry']);
});

test('an item fetched while the pool stops is given back, not run', async () => {
  const provider = fakePollingProvider();
  const stop = new AbortController();
  const { seen, loop } = loopOver(provider, ['late'], stop, {
    fetch: async () => {
      stop.abort();
      return 'late';
    },
  });
  await runWorkerLoop(loop);
  assert.deepEqual(seen.ran, []);
  assert.deepEqual(seen.givenBack, ['late']);
});

test('an item handed over to an idle worker runs as handed off', async () => {
  const channel = fakeLiveChannel();
  const stop = new AbortController();
  const { seen, loop, inbox, release, push } = loopOver(channel.provider, [], stop);
  const use = push.acquire();
  const done = runWorkerLoop(loop);
  await until(() => seen.fetches.length === 1);
  await until(() => inbox.reserve(1) === 1);
  assert.equal(inbox.handOff('eager'), true);
  await until(() => seen.ran.length === 1);
  assert.deepEqual(seen.ran, ['handed:eager']);
  stop.abort();
  await done;
  release();
  use();
});

test('push live: a worker whose fetch failed drains once the store answers again', { timeout: 10_000 }, async () => {
  // Three items are ready but one announcement is left: the others were spent on fetches that
  // failed while the store was out (in a failover the push channel is often back first). The
  // fetch that announcement wakes fails once more; the next one works and starts a drain.
  const channel = fakeLiveChannel();
  const stop = new AbortController();
  const queue: string[] = [];
  let failNext = false;
  const reasons: WakeReason[] = [];
  const { seen, loop, release, push } = loopOver(channel.provider, queue, stop, {
    fetch: async (reason) => {
      reasons.push(reason);
      if (failNext) {
        failNext = false;
        throw new Error('connection reset');
      }
      return queue.shift() ?? null;
    },
  });
  const use = push.acquire();
  const done = runWorkerLoop(loop);
  await until(() => reasons.length === 1); // the first drain finds nothing
  queue.push('a', 'b', 'c');
  failNext = true;
  channel.emit({ kind: 'queue', queue: 'orchestrator', ready: 1, dueInMs: null });
  await until(() => seen.ran.length === 3);
  assert.deepEqual(seen.ran, ['a', 'b', 'c']);
  assert.deepEqual(reasons, ['drain', 'once', 'once', 'drain', 'drain', 'drain']);
  stop.abort();
  await done;
  release();
  use();
});

test('push live: an empty fetch during which more work was announced fetches again', { timeout: 10_000 }, async () => {
  // Two workers, items a and b. Worker 1 wakes for a; while its fetch runs, b is announced and
  // wakes worker 2, whose fetch takes a (the oldest; with FOR UPDATE SKIP LOCKED worker 1's scan
  // then skipped a, locked by worker 2, and b was not committed yet), so worker 1 comes back
  // empty. Every announcement is spent, and b is left unless worker 1 looks again: an empty
  // fetch answers only the announcements that came before it was sent.
  const channel = fakeLiveChannel();
  const stop = new AbortController();
  const queue: string[] = [];
  let releaseFirst: (() => void) | null = null;
  const first = loopOver(channel.provider, queue, stop, {
    fetch: async (reason) => {
      first.seen.fetches.push(reason);
      if (first.seen.fetches.length === 2) {
        await new Promise<void>((resolve) => (releaseFirst = resolve));
        return null; // a was locked by worker 2's fetch when this scan ran
      }
      return queue.shift() ?? null;
    },
  });
  const second = { ran: [] as string[], fetches: 0 };
  const secondLoop: WorkerLoop<string> = {
    ...first.loop,
    fetch: async () => {
      second.fetches += 1;
      return queue.shift() ?? null;
    },
    run: async (item) => void second.ran.push(item),
  };
  const use = first.push.acquire();
  const done = [runWorkerLoop(first.loop), runWorkerLoop(secondLoop)];
  await until(() => first.seen.fetches.length === 1 && second.fetches === 1); // both drained an empty queue
  queue.push('a');
  channel.emit({ kind: 'queue', queue: 'orchestrator', ready: 1, dueInMs: null });
  await until(() => releaseFirst !== null); // worker 1's fetch is running
  queue.push('b');
  channel.emit({ kind: 'queue', queue: 'orchestrator', ready: 1, dueInMs: null });
  await until(() => second.ran.length === 1);
  assert.deepEqual(second.ran, ['a']);
  (releaseFirst as unknown as () => void)();
  await until(() => [...first.seen.ran, ...second.ran].includes('b'));
  assert.deepEqual([...first.seen.ran, ...second.ran].sort(), ['a', 'b']);
  stop.abort();
  await Promise.all(done);
  first.release();
  use();
});
