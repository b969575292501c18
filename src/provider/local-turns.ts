/**
 * Turn workers that a process offers to its own clients (eager start). A runtime's dispatcher
 * registers here for the provider object it runs on; a Client on the same provider object asks
 * it for an idle turn worker before starting an instance, so the start call can also lock the
 * first turn for that worker (see `Provider.startOrchestrationClaimed`). The Client knows only
 * this interface, never the runtime.
 */
import type { OrchestrationItem, Provider, TurnClaim } from './contract';

/** A turn worker set aside for one claimed turn: hand it the turn, or free it. */
export interface TurnReservation {
  /** Hands over the claimed turn (none: the worker is free again). */
  deliver(items: readonly OrchestrationItem[]): void;
  /** The call failed: the worker is free again. */
  cancel(): void;
}

/** What a dispatcher offers: its claim options and idle workers by orchestration name. */
export interface LocalTurnTaker {
  readonly turnClaim: TurnClaim;
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
