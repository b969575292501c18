/**
 * The hand-off bookkeeping of a queue gate's inbox (eager dispatch and batch fetch): reserved idle
 * workers, inbox places promised to items on their way, and what happens to promises that are
 * not kept. Pure in-memory: no store involved.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HandOffInbox } from '../../src/runtime/handoff-inbox';
import { QueueGate, type Wake } from '../../src/runtime/queue-gate';
import { Reservation, reserveIdle } from '../../src/runtime/eager-dispatch';

/** Starts `count` idle workers on `gate`; each promise says what woke it. */
function idleWorkers(gate: QueueGate<string>, count: number, signal: AbortSignal): Array<Promise<Wake<string>>> {
  return Array.from({ length: count }, () => gate.wait(signal));
}

test('reserved idle workers get the claimed items; unclaimed reservations become idle again', async () => {
  const gate = new QueueGate<string>();
  const inbox = new HandOffInbox(gate);
  const stop = new AbortController();
  const [first, second] = idleWorkers(gate, 2, stop.signal);
  const reservation = reserveIdle(inbox, 5, async () => assert.fail('nothing is given back'));
  assert.equal(reservation?.count, 2, 'only as many as are idle');
  gate.grant(1); // a notification meanwhile must not take a reserved worker
  reservation.deliver(['turn-a']);
  assert.deepEqual(await first, { handedOff: 'turn-a' });
  // The unclaimed reservation returned its worker to the idle ones, which the pending credit wakes.
  assert.equal(await second, 'once');
  stop.abort();
  gate.dispose();
});

test('without idle workers, items wait in the inbox up to its capacity, and a full pool gives back', async () => {
  const inbox = new HandOffInbox(new QueueGate<string>());
  inbox.setCapacity(2);
  const givenBack: string[] = [];
  const reservation = new Reservation(inbox, inbox.reserve(3), async (item) => void givenBack.push(item));
  assert.equal(reservation.count, 2, 'two inbox places promised');
  reservation.deliver(['a', 'b']);
  const first = inbox.takeHandedOff();
  assert.equal(first?.item, 'a');
  assert.ok(first !== undefined && first.waitedMs >= 0, 'it says how long it waited');
  assert.equal(inbox.handOff('c'), true, 'a free place takes an unannounced item');
  assert.equal(inbox.handOff('d'), false, 'the inbox is full');
  assert.deepEqual(inbox.clear(), ['b', 'c']);
  assert.deepEqual(givenBack, []);
});

test('promised inbox places are released when fewer items come, and credits pay for a batch', () => {
  const gate = new QueueGate<string>();
  const inbox = new HandOffInbox(gate);
  inbox.setCapacity(4);
  gate.grant(3);
  assert.equal(inbox.promiseQueued(10, true), 3, 'announced only: as many as there are credits');
  assert.equal(gate.take(), null, 'the batch used the credits up');
  const extra = new Reservation(inbox, 3, async () => undefined);
  extra.deliver(['x']);
  assert.equal(inbox.promiseQueued(10, false), 3, 'one place used by x, the two unkept promises are free again');
  assert.deepEqual(inbox.clear(), ['x']);
});

test('a cancelled reservation is settled once: delivering later hands nothing over', async () => {
  const gate = new QueueGate<string>();
  const inbox = new HandOffInbox(gate);
  const stop = new AbortController();
  const [worker] = idleWorkers(gate, 1, stop.signal);
  const reservation = reserveIdle(inbox, 1, async () => undefined);
  assert.ok(reservation);
  reservation.cancel();
  reservation.deliver(['late']);
  assert.equal(inbox.takeHandedOff(), undefined);
  stop.abort();
  assert.equal(await worker, 'once', 'the worker was idle again and only the stop woke it');
  gate.dispose();
});

test('a drain asked for while every idle worker was set aside wakes one when the reservation comes back', async () => {
  // A due timer, a lock lost during an ack, or the push channel coming back asks for a drain while
  // the only idle worker is reserved for an ack's claim; the claim brings nothing, so the worker
  // returns. Before the fix it went back to sleep and the drain waited for the safety fetch.
  const gate = new QueueGate<string>();
  const inbox = new HandOffInbox(gate);
  const stop = new AbortController();
  const [worker] = idleWorkers(gate, 1, stop.signal);
  const reservation = reserveIdle(inbox, 1, async () => undefined);
  assert.equal(reservation?.count, 1);
  gate.drainOne();
  assert.equal(gate.idleWorkers, 0, 'nobody was idle to take the drain');
  reservation.deliver([]);
  assert.equal(await worker, 'drain');
  assert.equal(gate.take(), null, 'the drain was handed out once');
  stop.abort();
  gate.dispose();
});

test('a push channel coming back while workers are reserved is drained by a returning worker', async () => {
  const gate = new QueueGate<string>();
  const inbox = new HandOffInbox(gate);
  const stop = new AbortController();
  const workers = idleWorkers(gate, 2, stop.signal);
  const reservation = reserveIdle(inbox, 2, async () => undefined);
  assert.equal(reservation?.count, 2);
  gate.drainAll();
  gate.grant(1);
  reservation.cancel();
  assert.deepEqual(await Promise.all(workers), ['drain', 'once']);
  stop.abort();
  gate.dispose();
});

test('credits a failed batch fetch took for its extra places are given back and wake idle workers', async () => {
  // A turn worker answering an announcement reserves extra inbox places for a batch fetch and
  // pays them with credits; when the fetch fails (the store is unreachable while the push channel
  // is already back), those announcements are still owed. Before, each failed retry burned them
  // and their items waited for the safety fetch.
  const gate = new QueueGate<string>();
  const inbox = new HandOffInbox(gate);
  const stop = new AbortController();
  inbox.setCapacity(4);
  gate.grant(3);
  const taken = inbox.promiseQueued(10, true);
  assert.equal(taken, 3);
  assert.equal(gate.take(), null, 'the batch took every credit');
  const [idle] = idleWorkers(gate, 1, stop.signal);
  gate.returnCredits(taken);
  inbox.unreserve(taken);
  assert.equal(await idle, 'once', 'a returned credit wakes an idle worker');
  assert.equal(gate.take(), 'once');
  assert.equal(gate.take(), 'once');
  assert.equal(gate.take(), null);
  assert.equal(gate.mark, 3, 'returned credits are not new announcements: an empty fetch still answers them');
  stop.abort();
  gate.dispose();
});

test('the idle accessors count sleeping workers and report the armed wake-ups', async () => {
  const gate = new QueueGate<string>();
  const stop = new AbortController();
  assert.equal(gate.idleWorkers, 0);
  assert.deepEqual(gate.armedTimers, { due: false, safety: false }, 'nothing armed before anyone waits');
  const [first] = idleWorkers(gate, 2, stop.signal);
  assert.equal(gate.idleWorkers, 2);
  assert.deepEqual(gate.armedTimers, { due: false, safety: true }, 'a waiting worker arms the safety fetch');
  gate.due(60_000);
  assert.deepEqual(gate.armedTimers, { due: true, safety: true });
  gate.grant(1);
  assert.equal(await first, 'once');
  assert.equal(gate.idleWorkers, 1, 'the woken worker is no longer idle');
  stop.abort();
  assert.equal(gate.idleWorkers, 0, 'a stopped worker stops waiting');
  gate.dispose();
  assert.deepEqual(gate.armedTimers, { due: false, safety: false }, 'dispose disarms everything');
});

test('an item that waited in the inbox says how long, so its worker renews its lock in time', async () => {
  const inbox = new HandOffInbox(new QueueGate<string>());
  inbox.setCapacity(1);
  assert.equal(inbox.handOff('claimed'), true);
  await new Promise((resolve) => setTimeout(resolve, 40));
  const taken = inbox.takeHandedOff();
  assert.equal(taken?.item, 'claimed');
  assert.ok(taken !== undefined && taken.waitedMs >= 35, `waited ${taken?.waitedMs} ms`);
});
