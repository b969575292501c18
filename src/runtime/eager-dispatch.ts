/**
 * Eager dispatch. A turn's ack can lock the activities it
 * schedules for this runtime, and an activity's ack can lock the turn its completion makes ready,
 * so the next step goes straight to an idle slot of the other pool: no notification to wait for
 * and no fetch (one round trip and one notification delay fewer per step).
 *
 * A pool asks only for as many items as the other pool has idle workers, and reserves those
 * workers first ({@link HandOffInbox.reserve}) so that a notification cannot wake them for something
 * else meanwhile. Whatever the ack does not claim is queued and announced as usual.
 */
import type { ActivityCompletionItem, ActivityExecuteItem } from '../core/types';
import type { FusedTurn, OrchestrationItem, TagFilter, TurnClaim, WorkItemLease } from '../provider/contract';
import type { HandOffInbox } from './handoff-inbox';

/** Idle workers of one pool set aside for items an ack is about to claim. */
export class Reservation<T> {
  private settled = false;

  constructor(
    private readonly inbox: HandOffInbox<T>,
    readonly count: number,
    private readonly giveBack: (item: T) => Promise<void>,
  ) {}

  /** Hands the claimed items to the reserved workers and frees the reservations left over. */
  deliver(items: readonly T[]): void {
    if (this.settled) return;
    this.settled = true;
    for (const item of items) {
      // Only when the pool stopped meanwhile: the item goes back to the queue.
      // giveBack abandons the item and logs a failure itself; the lock's expiry is the fallback.
      if (!this.inbox.handOff(item)) void this.giveBack(item);
    }
    this.inbox.unreserve(Math.max(0, this.count - items.length));
  }

  /** The ack failed or claimed nothing: the workers are idle again. */
  cancel(): void {
    this.deliver([]);
  }
}

/** Reserves up to `max` idle workers (or inbox places, unless `idleOnly`) of a pool; null when none is free. */
export function reserveIdle<T>(
  inbox: HandOffInbox<T> | null,
  max: number,
  giveBack: (item: T) => Promise<void>,
  idleOnly = false,
): Reservation<T> | null {
  if (inbox === null || max <= 0) return null;
  const count = inbox.reserve(max, idleOnly);
  return count === 0 ? null : new Reservation(inbox, count, giveBack);
}

/** Activities a turn's ack is to claim, and who runs them. */
export interface ActivityReservation {
  /** Indexes of the items to claim: the caller's first (if any), then the reserved slots'. */
  indexes: number[];
  /** Idle slots (or inbox places) set aside for the claimed items; null when only the caller claims. */
  reservation: Reservation<WorkItemLease> | null;
  /** The index of the item the calling slot runs itself, or null. */
  callerIndex: number | null;
}

/** The activity pool as a turn's ack sees it. */
export interface ActivityTaker {
  /**
   * Reserves idle slots for the items at the returned indexes (those this pool can run now).
   * With `forCallingSlot` (a fused ack, sent by a slot that has just finished an activity), the
   * first runnable item is the calling slot's own next item.
   */
  reserveFor(items: readonly ActivityExecuteItem[], forCallingSlot?: boolean): ActivityReservation | null;
}

/** A turn run in-process on an activity's completion, to commit with it (fused completion). */
export interface PreparedFusedTurn {
  readonly turn: FusedTurn;
  /** One of the activities the turn claims is for the calling slot to run itself. */
  readonly claimsForCaller: boolean;
  /**
   * The store committed the turn: hand over the activities it claimed, remember the history.
   * Returns the calling slot's own activity, if one was claimed for it.
   */
  committed(claimedWorkItems: readonly WorkItemLease[]): WorkItemLease | null;
  /** The turn was not committed: the activity slots reserved for it are free again. */
  discarded(): void;
}

/** The orchestration dispatcher as an activity's ack sees it. */
export interface TurnTaker {
  /** Lock length and capability filter of a claimed turn (as the dispatcher's own fetch uses). */
  readonly turnClaim: TurnClaim;
  /** Reserves one idle turn worker for an instance of `orchestrationName`, if it can run it. */
  reserveFor(orchestrationName: string): Reservation<OrchestrationItem> | null;
  /**
   * Runs the turn `completions` (of one instance) make ready on a history known here; null when
   * it cannot. With `forCallingSlot`, the calling activity slot takes one of the activities the
   * turn schedules, when it can run one.
   */
  prepareFusedTurn(
    completions: readonly ActivityCompletionItem[],
    forCallingSlot: boolean,
  ): Promise<PreparedFusedTurn | null>;
}

/** True when a worker with `filter` serves activities tagged `tag` (null = untagged). */
export function tagAccepted(filter: TagFilter, tag: string | null | undefined): boolean {
  const untagged = tag === null || tag === undefined;
  switch (filter.mode) {
    case 'defaultOnly':
      return untagged;
    case 'any':
      return true;
    case 'none':
      return false;
    case 'tags':
      return !untagged && filter.tags.includes(tag);
    case 'defaultAnd':
      return untagged || filter.tags.includes(tag);
  }
}
