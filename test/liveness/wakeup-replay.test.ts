/**
 * A subscriber that joins a push channel which is live already gets no `connected` of its own:
 * the hub replays what it knows is waiting (the delayed items announced on that connection), so a
 * runtime started right after another one stopped still wakes for a retry queued by the first.
 * No database: a scripted executor plays the LISTEN connection.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { WakeupEvent } from '../../src/provider/contract';
import { DueTimes } from '../../src/provider/due-times';
import type { NotificationEvent, Row, SqlExecutor, SqlSession } from '../../src/store/sql-executor';
import { WakeupHub } from '../../src/store/wakeup-hub';

class ScriptedChannel implements SqlExecutor {
  emit: (event: NotificationEvent) => void = () => undefined;
  query(): Promise<Row[]> {
    return Promise.resolve([]);
  }
  withSession<T>(work: (session: SqlSession) => Promise<T>): Promise<T> {
    return work({ query: () => Promise.resolve([]) });
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  subscribe(_setup: string, onEvent: (event: NotificationEvent) => void): () => Promise<void> {
    this.emit = onEvent;
    return () => Promise.resolve();
  }
}

test('a subscriber joining a live channel learns the delayed items announced on it', async () => {
  const channel = new ScriptedChannel();
  const hub = new WakeupHub(channel, 'SELECT listen_for_wakeups() AS result');
  const first: WakeupEvent[] = [];
  const firstSubscription = hub.subscribe((event) => first.push(event));
  channel.emit({
    type: 'connected',
    rows: [
      {
        result: {
          channel: 'durox_s',
          orchestratorReady: 0,
          orchestratorDueInMs: [5_000],
          workerReady: 0,
          workerDueInMs: [],
        },
      },
    ],
  });
  channel.emit({ type: 'notification', channel: 'durox_s', payload: 'o:0:1000:1' });
  assert.deepEqual(
    first.map((e) => e.kind),
    ['live', 'queue'],
  );
  firstSubscription.unsubscribe();

  const second: WakeupEvent[] = [];
  const secondSubscription = hub.subscribe((event) => second.push(event));
  await Promise.resolve();
  assert.equal(second.length, 1);
  const live = second[0];
  assert.ok(live.kind === 'live');
  assert.equal(live.orchestratorDueInMs.length, 2);
  assert.ok(
    live.orchestratorDueInMs[0] > 900 && live.orchestratorDueInMs[0] <= 1_000,
    `soonest first: ${live.orchestratorDueInMs.join(',')}`,
  );
  assert.ok(live.orchestratorDueInMs[1] > 4_900 && live.orchestratorDueInMs[1] <= 5_000);
  assert.deepEqual(live.workerDueInMs, []);
  assert.equal(secondSubscription.live, true);
  await hub.close();
});

test('a notification read before the set-up result is delivered after it, not dropped', () => {
  // The server sends a notification right after the LISTEN commits; when the client reads it in
  // the same chunk as the set-up's result, the executor emits it first (the result is awaited).
  const channel = new ScriptedChannel();
  const hub = new WakeupHub(channel, 'SELECT listen_for_wakeups() AS result');
  const heard: WakeupEvent[] = [];
  const subscription = hub.subscribe((event) => heard.push(event));
  channel.emit({ type: 'notification', channel: 'durox_s', payload: 'o:0:1000:1' });
  assert.equal(heard.length, 0, 'nothing before the channel is live');
  channel.emit({
    type: 'connected',
    rows: [{ result: { channel: 'durox_s', orchestratorReady: 0, orchestratorDueInMs: [], workerReady: 0 } }],
  });
  assert.deepEqual(
    heard.map((e) => e.kind),
    ['live', 'queue'],
  );
  const retry = heard[1];
  assert.ok(retry.kind === 'queue' && retry.queue === 'orchestrator' && retry.dueInMs === 1000);
  // Another channel's early notification is still ignored, and a lost connection forgets them.
  channel.emit({ type: 'disconnected', error: new Error('cut') });
  channel.emit({ type: 'notification', channel: 'durox_s', payload: 'w:1::1' });
  channel.emit({ type: 'disconnected', error: new Error('cut again') });
  channel.emit({
    type: 'connected',
    rows: [{ result: { channel: 'durox_s', orchestratorReady: 0, orchestratorDueInMs: [], workerReady: 0 } }],
  });
  assert.deepEqual(
    heard.map((e) => e.kind),
    ['live', 'queue', 'lost', 'live'],
  );
  subscription.unsubscribe();
});

test('due times are forgotten once they have passed', () => {
  const due = new DueTimes();
  due.add(100, 1_000);
  due.add(50, 1_000);
  assert.deepEqual(due.pending(1_000), [50, 100]);
  assert.deepEqual(due.pending(1_060), [40]);
  assert.deepEqual(due.pending(1_100), []);
});
