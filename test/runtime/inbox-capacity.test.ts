/**
 * The activity pool's inbox size (src/runtime/inbox-capacity.ts): one place per slot until the
 * recent activities are known to be short, up to MAX_INBOX_PLACES_PER_SLOT while they are.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { INBOX_WAIT_BUDGET_MS, InboxCapacity, MAX_INBOX_PLACES_PER_SLOT } from '../../src/runtime/inbox-capacity';

function recordAll(capacity: InboxCapacity, runMs: number, times: number): number {
  let current = capacity.current;
  for (let i = 0; i < times; i += 1) current = capacity.record(runMs);
  return current;
}

test('one place per slot until 14 activities are known, then the most while they are short', () => {
  const capacity = new InboxCapacity(8);
  assert.equal(capacity.current, 8);
  assert.equal(recordAll(capacity, 0.01, 13), 8, 'three activities still unknown count as long');
  assert.equal(capacity.record(0.01), 8 * MAX_INBOX_PLACES_PER_SLOT);
});

test('places per slot keep the last item within the wait budget', () => {
  const capacity = new InboxCapacity(2);
  // Two places per slot: the last item waits about 2 x 1 ms, the budget.
  assert.equal(recordAll(capacity, INBOX_WAIT_BUDGET_MS / 2, 16), 4);
  // Activities longer than the budget: one place per slot, as for any activity.
  assert.equal(recordAll(capacity, INBOX_WAIT_BUDGET_MS * 5, 16), 2);
  // An instantaneous activity does not divide by zero.
  assert.equal(recordAll(capacity, 0, 16), 2 * MAX_INBOX_PLACES_PER_SLOT);
});

test('two long activities among the last 16 do not shrink the inbox, three do, until they age out', () => {
  const capacity = new InboxCapacity(1);
  recordAll(capacity, 0.01, 16);
  assert.equal(recordAll(capacity, 50, 2), MAX_INBOX_PLACES_PER_SLOT, 'a pause now and then is tolerated');
  assert.equal(capacity.record(50), 1, 'three long ones in the window: one place per slot');
  // 14 short ones later the first long one has left the window (16 remembered); 2 more, all gone.
  assert.equal(recordAll(capacity, 0.01, 13), 1);
  assert.equal(capacity.record(0.01), MAX_INBOX_PLACES_PER_SLOT);
});
