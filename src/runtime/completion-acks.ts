/**
 * The acknowledgement of activity results (docs/runtime.md, "The activity worker"): each result
 * goes either plainly (ack_work_item, which may claim the turn it makes ready for an idle turn
 * worker) or fused with that turn, run in this process (ack_work_item_with_turn: one call commits
 * the result, the turn and the activities it schedules). Results of one instance that finish
 * while its fused ack is out wait for it and go together in the next (fan-in, fan-in.ts). Acks
 * are pipelined: a slot moves on while its ack is on its way. Used by the worker pool
 * (activity-worker.ts), which runs the activities.
 */
import type { ActivityCompletionItem } from '../core/types';
import type {
  FusedAckOutcome,
  FusedWorkItemAck,
  OrchestrationItem,
  WorkItemAck,
  WorkItemLease,
} from '../provider/contract';
import { isLockLost, isRetryable } from '../provider/errors';
import { notifyLocal } from '../provider/local-wakeups';
import { outageRetryPolicy, retryThroughOutage } from '../provider/outage-retry';
import type { ActivityWorkerDeps } from './activity-worker';
import { CallBatcher, optionalBatcher } from './call-batcher';
import type { PreparedFusedTurn, Reservation, TurnTaker } from './eager-dispatch';
import { FanIn, type WaitingCompletion } from './fan-in';
import { messageOf } from './fault-log';
import { log, RUNTIME_TARGET } from './logger';
import { FIXED } from './options';

export class CompletionAcks {
  private turns: TurnTaker | null = null;
  private readonly acks: CallBatcher<WorkItemAck, OrchestrationItem | null>;
  /** Fused acks (see commitFused): the ones that wait go together; null: the provider has none. */
  private readonly fusedAcks: CallBatcher<FusedWorkItemAck, FusedAckOutcome> | null;
  /** Acks on their way while their slots already run the next activity (see acknowledge). */
  private readonly pendingAcks = new Set<Promise<void>>();
  /** Completions waiting for their instance's fused ack in flight (see acknowledge). */
  private readonly fanIn = new FanIn();
  /**
   * At most this many acks are pending before a slot waits for one: as many as the pool's inbox
   * places (one per slot, a few while activities are short; inbox-capacity.ts), each of which may
   * hold the activity a pending ack claims.
   */
  maxPendingAcks = 0;

  /** `stopping`: the pool's shutdown; once aborted, no ack is fused and no turn claimed. */
  constructor(
    private readonly deps: ActivityWorkerDeps,
    private readonly stopping: AbortSignal,
  ) {
    const { provider } = deps;
    this.acks = new CallBatcher(
      {
        one: (ack) => provider.ackWorkItem(ack.lockToken, ack.completion, ack.claim),
        many: async (acks) =>
          (await provider.ackWorkItems(acks)).map((outcome) =>
            outcome.ok ? { ok: true, value: outcome.claimedTurn } : outcome,
          ),
      },
      FIXED.maxAckCallsInFlight,
    );
    const ackWithTurn = provider.ackWorkItemWithTurn?.bind(provider);
    this.fusedAcks = optionalBatcher(
      ackWithTurn && ((ack: FusedWorkItemAck) => ackWithTurn(ack.lockToken, ack.completion, ack.claim, ack.turn)),
      provider.ackWorkItemsWithTurns?.bind(provider),
      provider.callsRunInParallel?.() === true ? FIXED.maxFusedAckCallsInFlight : 1,
      // A slot waits for its fused ack (it brings the slot's next activity): over a long link
      // every slot may have its own out, instead of waiting a round trip for the call before.
      { maxInFlight: deps.options.workerConcurrency, slow: () => provider.callsAreSlow?.() ?? false },
    );
  }

  /** Lets acks claim the next turn for `turns` (eager dispatch) and fuse their turns there. */
  handTurnsTo(turns: TurnTaker): void {
    this.turns = turns;
  }

  /** Acks on their way now. */
  get pendingCount(): number {
    return this.pendingAcks.size;
  }

  /** Resolves when every ack on its way now has settled. */
  async settled(): Promise<void> {
    await Promise.all(this.pendingAcks);
  }

  /**
   * Acknowledges the result. When this runtime can run the turn the result unblocks, the ack is
   * fused with that turn (see {@link commitFused}); the activities that turn schedules are
   * claimed by the same call for idle slots or inbox places (ActivityWorkerPool.reserveFor), and
   * only when none is free for the calling slot, which then waits for the ack and runs that
   * activity next (no fetch). While a fused ack of the same instance is out, the result waits for it and goes with
   * the others that waited in the instance's next fused turn (fan-in, see FanIn). Any other ack
   * goes on its way while the slot moves on at once (pipelining); with as many acks pending as
   * the pool has inbox places, the slot waits for one first.
   */
  async acknowledge(lease: WorkItemLease, result: ActivityCompletionItem): Promise<WorkItemLease | null> {
    const turns = this.stopping.aborted ? null : this.turns;
    if (turns === null || this.fusedAcks === null) return this.pipeline(this.commitAck(lease, result, turns, null));
    const joined = this.fanIn.join(lease, result);
    if (joined !== null) return this.pipeline(joined);
    this.fanIn.begin(result.instance);
    const prepared = await this.prepareTurn(turns, [result], true);
    if (prepared === null) {
      this.ackPlainly(this.fanIn.end(result.instance));
      return this.pipeline(this.commitAck(lease, result, turns, null));
    }
    const acked = this.commitAck(lease, result, turns, prepared).finally(() =>
      this.continueFanIn(result.instance, turns),
    );
    return prepared.claimsForCaller ? acked : this.pipeline(acked);
  }

  /** Lets the slot move on while `ack` is on its way; with as many pending as inbox places, waits for one first. */
  private async pipeline(ack: Promise<unknown>): Promise<null> {
    const pending: Promise<void> = ack.then(() => undefined).finally(() => this.pendingAcks.delete(pending));
    this.pendingAcks.add(pending);
    if (this.pendingAcks.size > this.maxPendingAcks) await Promise.race(this.pendingAcks);
    return null;
  }

  /** The fused ack of `instance` came back: the completions that waited for it go in the next one. */
  private continueFanIn(instance: string, turns: TurnTaker): void {
    const waiting = this.fanIn.next(instance);
    if (waiting.length > 0) void this.ackTogether(instance, waiting, turns);
  }

  /** One fused turn run on all of `waiting` (one instance's), acknowledging them in one call. */
  private async ackTogether(instance: string, waiting: WaitingCompletion[], turns: TurnTaker): Promise<void> {
    const prepared = this.stopping.aborted
      ? null
      : await this.prepareTurn(
          turns,
          waiting.map((completion) => completion.result),
          false,
        );
    if (prepared === null) {
      this.ackPlainly([...waiting, ...this.fanIn.end(instance)]);
      return;
    }
    const [first, ...others] = waiting;
    try {
      await this.commitAck(first.lease, first.result, turns, prepared, others);
    } finally {
      for (const completion of waiting) completion.done();
      this.continueFanIn(instance, turns);
    }
  }

  /** The fused turn of `results` (see TurnTaker.prepareFusedTurn); null when it cannot run here. */
  private async prepareTurn(
    turns: TurnTaker,
    results: readonly ActivityCompletionItem[],
    forCallingSlot: boolean,
  ): Promise<PreparedFusedTurn | null> {
    try {
      return await turns.prepareFusedTurn(results, forCallingSlot);
    } catch (error) {
      // Not expected (a replay's failure is caught inside): the results still go, plainly.
      log('warn', RUNTIME_TARGET, `fused turn not run: ${messageOf(error)}`, { instance_id: results[0]?.instance });
      return null;
    }
  }

  /** Plain acks, each its own (group commit still sends those that wait together). */
  private ackPlainly(completions: readonly WaitingCompletion[]): void {
    for (const { lease, result, done } of completions) void this.commitAck(lease, result, null, null).finally(done);
  }

  /**
   * Acks the result, fused with `prepared` when there is one (with the results of `others`, of
   * the same instance, that its turn also ran on); a plain ack also claims the turn it makes
   * ready when a turn worker is idle. Returns the activity claimed for the calling slot.
   */
  private async commitAck(
    lease: WorkItemLease,
    result: ActivityCompletionItem,
    turns: TurnTaker | null,
    prepared: PreparedFusedTurn | null,
    others: readonly WaitingCompletion[] = [],
  ): Promise<WorkItemLease | null> {
    const reservation = turns?.reserveFor(lease.orchestrationName) ?? null;
    if (turns !== null && prepared !== null) {
      const fused = await this.commitFused(lease, result, turns, prepared, reservation, others);
      if (fused.acknowledged) return fused.next;
      if (others.length > 0) {
        // Nothing of the call was written: each result is acknowledged on its own.
        reservation?.cancel();
        const [next] = await Promise.all([
          this.commitAck(lease, result, turns, null),
          ...others.map((other) => this.commitAck(other.lease, other.result, null, null)),
        ]);
        return next;
      }
    }
    const claim = reservation === null ? null : (turns?.turnClaim ?? null);
    let failedAttempts = 0;
    try {
      const turn = await retryThroughOutage(
        () => this.acks.submit({ lockToken: lease.lockToken, completion: result, claim }),
        outageRetryPolicy(this.deps.options.maxOutageMs),
        isRetryable,
        {
          onFailure: (error) => {
            failedAttempts += 1;
            this.deps.faults.failed('ack_work_item', error);
          },
        },
      );
      this.deps.faults.recovered('ack_work_item');
      reservation?.deliver(turn === null ? [] : [turn]);
      // Also wakes a polling turn worker for a claimed turn left in the dispatcher's inbox.
      notifyLocal(this.deps.provider, 'orchestrator');
    } catch (error) {
      reservation?.cancel();
      this.deps.metrics.increment('activityInfraErrors');
      const why = isLockLost(error) ? lockLostReason(failedAttempts) : 'activity result discarded';
      log('warn', RUNTIME_TARGET, `${why}: ${messageOf(error)}`, {
        instance_id: lease.item.instance,
        activity_name: lease.item.name,
      });
    }
    return null;
  }

  /**
   * Fused completion: when the dispatcher of this runtime committed the instance's previous turn,
   * it runs the turn this result makes ready before any call (`prepared`), and one call commits
   * the result, that turn and the activities it schedules. This needs no free turn worker: if
   * the store finds the instance changed, the same call claims the turn for `reservation`'s
   * worker as a plain ack would or, with no worker reserved, queues and announces it.
   * `acknowledged` is true when the result is acknowledged (or lost with its lease), false to
   * acknowledge it the plain way; `next` is the activity claimed for the calling slot.
   */
  private async commitFused(
    lease: WorkItemLease,
    result: ActivityCompletionItem,
    turns: TurnTaker,
    prepared: PreparedFusedTurn,
    reservation: Reservation<OrchestrationItem> | null,
    others: readonly WaitingCompletion[],
  ): Promise<{ acknowledged: boolean; next: WorkItemLease | null }> {
    const { fusedAcks } = this;
    if (fusedAcks === null) {
      prepared.discarded();
      return { acknowledged: false, next: null };
    }
    const turn = {
      ...prepared.turn,
      fallback: reservation === null ? ('release' as const) : ('claim' as const),
      alsoCompleted: others.map((other) => ({ lockToken: other.lease.lockToken, completion: other.result })),
    };
    let failedAttempts = 0;
    try {
      const outcome = await retryThroughOutage(
        () => fusedAcks.submit({ lockToken: lease.lockToken, completion: result, claim: turns.turnClaim, turn }),
        outageRetryPolicy(this.deps.options.maxOutageMs),
        isRetryable,
        {
          onFailure: (error) => {
            failedAttempts += 1;
            this.deps.faults.failed('ack_work_item_with_turn', error);
          },
        },
      );
      if (outcome.fused) {
        const next = prepared.committed(outcome.claimedWorkItems);
        reservation?.cancel();
        return { acknowledged: true, next };
      }
      prepared.discarded();
      reservation?.deliver(outcome.claimedTurn === null ? [] : [outcome.claimedTurn]);
      notifyLocal(this.deps.provider, 'orchestrator');
      return { acknowledged: true, next: null };
    } catch (error) {
      prepared.discarded();
      // A lost lock of one of several results refuses them all: each is then acked on its own.
      if (!isLockLost(error) || others.length > 0) return { acknowledged: false, next: null };
      reservation?.cancel();
      this.deps.metrics.increment('activityInfraErrors');
      log('warn', RUNTIME_TARGET, `${lockLostReason(failedAttempts)}: ${messageOf(error)}`, {
        instance_id: lease.item.instance,
        activity_name: lease.item.name,
      });
      return { acknowledged: true, next: null };
    }
  }
}

/** Why an ack was refused for a lost lock, as the log says it. */
function lockLostReason(failedAttempts: number): string {
  return failedAttempts > 0
    ? `activity result not stored by this attempt: an earlier attempt of the ack committed it, or its lease ran out during the outage (${failedAttempts} failed attempt(s)) and the activity runs again`
    : 'activity result discarded';
}
