/**
 * The eager-dispatch side of a worker pool's queue gate: idle workers set aside for items another
 * pool is about to hand over, and an inbox for handed-off items no idle worker could take (see
 * eager-dispatch.ts). The gate itself (queue-gate.ts) keeps the wake-up credits and due timers.
 *
 * Liveness rule kept here: every claimed or reserved item has exactly one owner: a reserved
 * worker, an inbox place that a worker drains before it sleeps, or the queue again (given back
 * at once).
 */
import type { QueueGate, Waiter } from './queue-gate';

/** Reservations and the inbox of one gate. */
export class HandOffInbox<T> {
  /** Idle workers set aside for items another pool is about to hand over. */
  private reserved: Array<Waiter<T>> = [];
  /**
   * Handed-off items no idle worker took: the next worker to look runs them before fetching. At
   * most `capacity` are promised at once, so none waits longer than about one item's work. Each
   * keeps when it came (`performance.now()`), so its worker knows how long its lock has run.
   */
  private inbox: Array<{ item: T; since: number }> = [];
  private capacity = 0;
  private promised = 0;

  constructor(private readonly gate: QueueGate<T>) {
    gate.onWaiterGone((waiter) => {
      this.reserved = this.reserved.filter((w) => w !== waiter);
    });
  }

  /** Lets up to `capacity` handed-off items wait for a busy worker (0: only idle workers take them). */
  setCapacity(capacity: number): void {
    this.capacity = capacity;
  }

  /**
   * Promises up to `max` items a worker: idle workers are set aside first, then places in the
   * inbox (none with `idleOnly`). Returns how many; call {@link handOff} for each item that comes and
   * {@link unreserve} for each that does not.
   */
  reserve(max: number, idleOnly = false): number {
    const idle = this.gate.takeIdle(max);
    this.reserved.push(...idle);
    const queued = idleOnly ? 0 : Math.max(0, Math.min(max - idle.length, this.freePlaces()));
    this.promised += queued;
    return idle.length + queued;
  }

  /**
   * Promises up to `max` inbox places to items the caller is about to fetch along with its own
   * (a batch fetch). With `announcedOnly`, at most as many as there are credits, which it uses up:
   * those items were announced, and this fetch answers the announcements.
   */
  promiseQueued(max: number, announcedOnly: boolean): number {
    let count = Math.max(0, Math.min(max, this.freePlaces()));
    if (announcedOnly) count = this.gate.takeCredits(count);
    this.promised += count;
    return count;
  }

  /** Gives back `count` promises (their items did not come): reserved workers are idle again. */
  unreserve(count: number): void {
    const back = this.reserved.splice(0, count);
    this.gate.returnIdle(back);
    this.promised = Math.max(0, this.promised - (count - back.length));
  }

  /** Gives `item` to a reserved, else idle, worker, else to the inbox; false when the pool is full. */
  handOff(item: T): boolean {
    const reserved = this.reserved.shift();
    if (reserved !== undefined) {
      reserved.resolve({ handedOff: item });
      return true;
    }
    // Otherwise the item uses up an inbox promise, wherever it goes.
    const promised = this.promised > 0;
    if (promised) this.promised -= 1;
    const [idle] = this.gate.takeIdle(1);
    if (idle !== undefined) {
      idle.resolve({ handedOff: item });
      return true;
    }
    if (!promised && this.inbox.length >= this.capacity) return false;
    this.inbox.push({ item, since: performance.now() });
    return true;
  }

  /** The oldest handed-off item waiting for a worker, and how long it waited (ms), if any. */
  takeHandedOff(): { item: T; waitedMs: number } | undefined {
    const entry = this.inbox.shift();
    return entry === undefined ? undefined : { item: entry.item, waitedMs: performance.now() - entry.since };
  }

  /** Empties the inbox (the pool is stopping); the caller gives the items back. */
  clear(): T[] {
    const items = this.inbox.map((entry) => entry.item);
    this.inbox = [];
    this.promised = 0;
    return items;
  }

  private freePlaces(): number {
    return this.capacity - this.inbox.length - this.promised;
  }
}

const inboxes = new WeakMap<QueueGate<unknown>, HandOffInbox<unknown>>();

/** The inbox of `gate` (one per gate, made on first use). */
export function handOffInbox<T>(gate: QueueGate<T>): HandOffInbox<T> {
  let inbox = inboxes.get(gate as QueueGate<unknown>);
  if (inbox === undefined) {
    inbox = new HandOffInbox<unknown>(gate as QueueGate<unknown>);
    inboxes.set(gate as QueueGate<unknown>, inbox);
  }
  return inbox as HandOffInbox<T>;
}
