/**
 * Start watches (src/client/start-watches.ts) on a fake push channel: an instance started here on
 * an empty history is known to be running only while nothing was heard since its start and the
 * channel stayed up. No database.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { InstanceStatus, OrchestrationItem } from '../../src/provider/contract';
import { publishCommittedStatus } from '../../src/provider/local-completions';
import { pushWakeups } from '../../src/provider/push-wakeups';
import { dropStartWatch, openStartWatch, takeStartWatch } from '../../src/client/start-watches';
import { fakeLiveChannel, fakePollingProvider } from './fake-wakeups';

/** The first turn a start claimed; `events` is the length of its history. */
function claimedTurn(instanceId: string, events: number): OrchestrationItem {
  return {
    instanceId,
    orchestrationName: 'Job',
    orchestrationVersion: null,
    executionId: 1,
    history: Array.from({ length: events }, () => ({}) as OrchestrationItem['history'][number]),
    messages: [],
    lockToken: 'token',
    attemptCount: 1,
    kvSnapshot: {},
    customStatus: null,
    nowMs: 0,
  };
}

function liveChannel(): ReturnType<typeof fakeLiveChannel> & { release: () => void } {
  const channel = fakeLiveChannel();
  // What a running runtime does: it holds the provider's push subscription.
  const release = pushWakeups(channel.provider).acquire();
  return { ...channel, release };
}

test('started on an empty history with nothing heard since: still running', () => {
  const channel = liveChannel();
  const watch = openStartWatch(channel.provider, 'a');
  assert.ok(watch);
  watch.started(claimedTurn('a', 0));
  assert.equal(takeStartWatch(channel.provider, 'a'), watch);
  assert.equal(watch.stillRunning, true);
  assert.equal(takeStartWatch(channel.provider, 'a'), null, 'taken once');
  watch.close();
  channel.release();
});

test('a status hint, a local commit, a channel outage or a history that was there: not known to run', () => {
  const channel = liveChannel();
  const hinted = openStartWatch(channel.provider, 'hinted');
  hinted?.started(claimedTurn('hinted', 0));
  channel.emit({ kind: 'status', instanceId: 'hinted' });
  assert.equal(hinted?.stillRunning, false, 'a hint came');

  const committed = openStartWatch(channel.provider, 'committed');
  committed?.started(claimedTurn('committed', 0));
  const status: InstanceStatus = { status: 'Completed', output: '1', customStatus: null, customStatusVersion: 0 };
  publishCommittedStatus(channel.provider, 'committed', status);
  assert.equal(committed?.stillRunning, false);
  assert.deepEqual(committed?.committed, status, 'the committed status is kept for the wait');

  const outage = openStartWatch(channel.provider, 'outage');
  outage?.started(claimedTurn('outage', 0));
  channel.emit({ kind: 'lost', error: new Error('connection reset') });
  channel.emit({ kind: 'live', orchestratorReady: 0, orchestratorDueInMs: [], workerReady: 0, workerDueInMs: [] });
  assert.equal(outage?.stillRunning, false, 'a hint sent while the channel was down is lost');

  const existing = openStartWatch(channel.provider, 'existing');
  existing?.started(claimedTurn('existing', 3));
  assert.equal(existing?.stillRunning, false, 'a repeated start of an instance with history');

  const queued = openStartWatch(channel.provider, 'queued');
  queued?.started(null);
  assert.equal(queued?.stillRunning, false, 'the store queued the start instead of claiming');

  for (const watch of [hinted, committed, outage, existing, queued]) if (watch) dropStartWatch(channel.provider, watch);
  channel.release();
});

test('no watch without a live channel, and at most 1000 kept per provider object', () => {
  assert.equal(openStartWatch(fakePollingProvider(), 'a'), null);
  const channel = liveChannel();
  for (let i = 0; i <= 1000; i += 1) openStartWatch(channel.provider, `i-${i}`)?.started(claimedTurn(`i-${i}`, 0));
  assert.equal(takeStartWatch(channel.provider, 'i-0'), null, 'the oldest was dropped');
  const newest = takeStartWatch(channel.provider, 'i-1000');
  assert.equal(newest?.stillRunning, true);
  newest?.close();
  channel.release();
});
