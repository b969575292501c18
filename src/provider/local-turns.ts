/**
 * Turn workers that a process offers to its own clients. A runtime's dispatcher registers here
 * for the provider object it runs on; a Client on the same provider object asks it first to run
 * a new instance's first turn in-process, so that one call starts the instance and commits that
 * turn (fused start, `Provider.startOrchestrationWithTurn`); failing that, for an idle turn worker,
 * so that the start call also locks the first turn for that worker (eager start,
 * `Provider.startOrchestrationClaimed`). The Client knows only this interface, never the runtime.
 */
import type { StartOrchestrationItem } from '../core/types';
import type { OrchestrationItem, Provider, TurnClaim } from './contract';

/** A turn worker set aside for one claimed turn: hand it the turn, or free it. */
export interface TurnReservation {
  /** Hands over the claimed turn (none: the worker is free again). */
  deliver(items: readonly OrchestrationItem[]): void;
  /** The call failed: the worker is free again. */
  cancel(): void;
}

/** A new instance's first turn, run in-process, for the start's call to commit (fused start). */
export interface PreparedStart {
  /** The turn changes the custom status: its commit sends a status hint. */
  readonly announcesStatus: boolean;
  /**
   * Sends the start with this turn (`Provider.startOrchestrationWithTurn`, together with other
   * starts sent meanwhile): true when the store committed the turn, false when it queued the
   * start instead. Rejects as the store call does; whatever the turn reserved is freed unless it
   * was committed.
   */
  commit(): Promise<boolean>;
}

/** What a dispatcher offers: its claim options, first turns run here, and idle workers by orchestration name. */
export interface LocalTurnTaker {
  readonly turnClaim: TurnClaim;
  /** Runs the first turn of the instance `item` starts, when this taker can and may; null otherwise. */
  prepareStart(item: StartOrchestrationItem): Promise<PreparedStart | null>;
  /** Reserves an idle worker for an instance of `orchestrationName`, if this taker can run it. */
  reserveFor(orchestrationName: string): TurnReservation | null;
}

const takers = new WeakMap<Provider, Set<LocalTurnTaker>>();

/** Offers `taker`'s turn workers to clients of `provider`; returns the withdrawal. */
export function offerLocalTurns(provider: Provider, taker: LocalTurnTaker): () => void {
  let set = takers.get(provider);
  if (set === undefined) {
    set = new Set();
    takers.set(provider, set);
  }
  set.add(taker);
  return () => set.delete(taker);
}

/** An idle local turn worker for `orchestrationName` with the claim to ask for, or null. */
export function reserveLocalTurn(
  provider: Provider,
  orchestrationName: string,
): { claim: TurnClaim; reservation: TurnReservation } | null {
  for (const taker of takers.get(provider) ?? []) {
    const reservation = taker.reserveFor(orchestrationName);
    if (reservation !== null) return { claim: taker.turnClaim, reservation };
  }
  return null;
}

/** The first turn of the instance `item` starts, run by a local taker, or null when none can. */
export async function prepareLocalStart(
  provider: Provider,
  item: StartOrchestrationItem,
): Promise<PreparedStart | null> {
  for (const taker of takers.get(provider) ?? []) {
    const prepared = await taker.prepareStart(item);
    if (prepared !== null) return prepared;
  }
  return null;
}
