/**
 * The orchestration dispatcher (docs/runtime.md, "The orchestration dispatcher"): `orchestrationConcurrency`
 * workers, each fetching a locked batch of one instance, running one turn through the replay
 * engine and committing the result atomically.
 */
import type { TraceSink, TurnEngine, TurnOutcome, TurnRequest, TurnResult } from '../core/turn-api';
import type { OrchestrationTurnAck } from '../core/turn-types';
import {
  DUROX_VERSION,
  targetInstanceOf,
  type ActivityCompletionItem,
  type StartOrchestrationItem,
} from '../core/types';
import type {
  ActivityClaim,
  FusedStart,
  FusedStartOutcome,
  OrchestrationItem,
  Provider,
  TurnAck,
  TurnClaim,
  WorkItemLease,
} from '../provider/contract';
import { CallBatcher, optionalBatcher } from './call-batcher';
import { isLockLost, isRetryable } from '../provider/errors';
import { FaultLog, messageOf } from './fault-log';
import { LockRenewer, renewalIntervalMs } from './lock-renewal';
import { notifyLocal, wakeSignal } from '../provider/local-wakeups';
import {
  Reservation,
  reserveIdle,
  type ActivityReservation,
  type ActivityTaker,
  type PreparedFusedTurn,
  type TurnTaker,
} from './eager-dispatch';
import { TurnHistoryCache } from './turn-history-cache';
import { pushWakeups, type PushWakeups } from '../provider/push-wakeups';
import { allowWaiters, openGate, type QueueGate, type WakeReason } from './queue-gate';
import { handOffInbox, type HandOffInbox } from './handoff-inbox';
import { runWorkerLoop } from './worker-loop';
import { offerLocalTurns, type PreparedStart } from '../provider/local-turns';
import { recordSafetyFetchHit } from './liveness';
import { log, ORCHESTRATION_TARGET, RUNTIME_TARGET } from './logger';
import type { RuntimeMetrics } from './metrics';
import { FIXED, type ResolvedRuntimeOptions } from './options';
import type { OrchestrationRegistry } from './registry';
import { outageRetryPolicy, retryThroughOutage } from '../provider/outage-retry';
import { sleep, unregisteredBackoffMs } from './timing';

/** What the dispatcher needs from its runtime. */
export interface OrchestrationDispatcherDeps {
  provider: Provider;
  engine: TurnEngine;
  options: ResolvedRuntimeOptions;
  orchestrations: OrchestrationRegistry;
  metrics: RuntimeMetrics;
  faults: FaultLog;
}

/**
 * Capability filter: this runtime runs executions started by any Durox up to its own version
 * (the pinned version is the duroxVersion of an execution's OrchestrationStarted); executions
 * started by a newer Durox wait for a node that can run them (rolling upgrades).
 */
const RUNNABLE_VERSIONS = { min: '0.0.0', max: DUROX_VERSION } as const;

/** Most batches one fetch takes beyond the worker's own (bounded further by the inbox). */
const MAX_EXTRA_TURNS_PER_FETCH = 15;

export class OrchestrationDispatcher implements TurnTaker {
  private readonly stopping = new AbortController();
  private loops: Array<Promise<void>> = [];
  private inbox: HandOffInbox<OrchestrationItem> | null = null;
  /** The orchestrator queue's gate, to look at once when a retried ack finds its lock gone. */
  private gate: QueueGate<OrchestrationItem> | null = null;
  private activities: ActivityTaker | null = null;
  /** Lock length and capability filter of every turn this dispatcher takes, fetched or claimed. */
  readonly turnClaim: TurnClaim = { lockTimeoutMs: FIXED.orchestrationLockTimeoutMs, versionRange: RUNNABLE_VERSIONS };

  private readonly acks: CallBatcher<TurnAck, WorkItemLease[]>;
  /** Fused starts of this process's clients (null: the store has none); sent together while others are out. */
  private readonly starts: CallBatcher<FusedStart, FusedStartOutcome> | null;
  /** Histories of the instances whose last turn this dispatcher committed (fused completion). */
  private readonly histories = new TurnHistoryCache();
  /**
   * Store clock minus local clock, to date a fused start's turn: learned from each turn fetched or
   * claimed and each fused start's reply; 0 (the local clock) before the first. The store refuses a
   * fused start dated more than 2 s off its clock, so a wrong guess costs a queued start, no more.
   */
  private storeClockOffsetMs = 0;

  constructor(private readonly deps: OrchestrationDispatcherDeps) {
    const { provider } = deps;
    this.acks = new CallBatcher(
      {
        one: (turn) => provider.ackOrchestrationItem(turn.lockToken, turn.ack, turn.claim),
        many: async (turns) =>
          (await provider.ackOrchestrationItems(turns)).map((outcome) =>
            outcome.ok ? { ok: true, value: outcome.claimedWorkItems } : outcome,
          ),
      },
      FIXED.maxAckCallsInFlight,
    );
    const startOne = provider.startOrchestrationWithTurn?.bind(provider);
    this.starts = optionalBatcher(
      startOne && ((request: FusedStart) => startOne(request.item, request.turn)),
      provider.startOrchestrationsWithTurns?.bind(provider),
      // As fused acks: a second call out where calls run side by side.
      provider.callsRunInParallel?.() === true ? FIXED.maxFusedAckCallsInFlight : 1,
    );
  }

  start(): void {
    allowWaiters(this.stopping.signal, this.deps.options.orchestrationConcurrency);
    const push = pushWakeups(this.deps.provider);
    const { gate, release } = openGate<OrchestrationItem>(push, 'orchestrator');
    // Turns are short, so a claimed turn may wait for the next free worker (see eager-dispatch.ts).
    const inbox = handOffInbox(gate);
    inbox.setCapacity(this.deps.options.orchestrationConcurrency);
    this.inbox = inbox;
    this.gate = gate;
    this.loops = Array.from({ length: this.deps.options.orchestrationConcurrency }, () =>
      this.runWorker(push, gate, inbox),
    );
    // Clients of this provider object may start instances straight into an idle worker here.
    const withdraw = offerLocalTurns(this.deps.provider, this);
    this.stopping.signal.addEventListener('abort', withdraw, { once: true });
    // The worker loops never reject (each turn's failure is handled inside runWorker); the gate is
    // released once all of them have returned, which drain() waits for.
    void Promise.all(this.loops).finally(release);
  }

  /** Lets turn acks claim activities for `activities` (eager dispatch). */
  handActivitiesTo(activities: ActivityTaker): void {
    this.activities = activities;
  }

  reserveFor(orchestrationName: string): Reservation<OrchestrationItem> | null {
    if (this.stopping.signal.aborted || this.deps.orchestrations.resolve(orchestrationName, null) === null) return null;
    return reserveIdle(this.inbox, 1, (item) => this.abandon(item, 0, true));
  }

  /**
   * Fused completion: runs here the turn `completions` (of one instance) make ready, on the
   * history this dispatcher remembers from the instance's previous turn, and reserves idle
   * activity slots for what it schedules (an inbox place too, for the calling slot's chain, with
   * `forCallingSlot`). Null when the history is not known here, the turn cannot run or sends
   * messages (only a turn whose effects stay in its own instance is fused).
   */
  async prepareFusedTurn(
    completions: readonly ActivityCompletionItem[],
    forCallingSlot: boolean,
  ): Promise<PreparedFusedTurn | null> {
    if (this.stopping.signal.aborted) return null;
    const known = this.histories.turnOn(completions);
    if (known === null) return null;
    const { item, lastEventId, storeClockOffsetMs } = known;
    const run = await this.replayUncommitted(item);
    if (run === null || run.ack.orchestratorItems.length > 0) return null;
    const { ack, outcome, writeTraces } = run;
    const eager = this.activities?.reserveFor(ack.workerItems, forCallingSlot) ?? null;
    const claim = this.activityClaim(eager);
    const callersItem = eager?.callerIndex == null ? null : ack.workerItems[eager.callerIndex];
    return {
      turn: { executionId: item.executionId, lastEventId, ack, claim },
      claimsForCaller: callersItem !== null,
      committed: (claimed) => {
        writeTraces();
        const callers =
          claimed.find(
            (lease) => lease.item.id === callersItem?.id && lease.item.executionId === callersItem.executionId,
          ) ?? null;
        eager?.reservation?.deliver(claimed.filter((lease) => lease !== callers));
        this.count(outcome, ack);
        this.histories.remember(item, ack, storeClockOffsetMs);
        if (ack.workerItems.length > claimed.length) notifyLocal(this.deps.provider, 'worker');
        notifyLocal(this.deps.provider, 'status');
        return callers;
      },
      discarded: () => eager?.reservation?.cancel(),
    };
  }

  /**
   * Fused start: runs here the first turn of the instance `start` starts, on an empty history
   * with the start alone (the batch a fetch would hand out for a new instance), and reserves idle
   * activity slots for what it schedules, as a turn's ack claims them. The store commits it with
   * the start only when the instance is new and nothing else waits for it. Null when the
   * orchestration is not registered here, the turn cannot run, or it sends messages to other
   * instances (whose locks a start does not take).
   */
  async prepareStart(start: StartOrchestrationItem): Promise<PreparedStart | null> {
    const starts = this.starts;
    if (starts === null || this.stopping.signal.aborted || start.flowKey !== undefined) return null;
    if (this.deps.orchestrations.resolve(start.orchestration, start.version) === null) return null;
    const item: OrchestrationItem = {
      instanceId: start.instance,
      orchestrationName: start.orchestration,
      orchestrationVersion: start.version,
      executionId: start.executionId,
      history: [],
      messages: [start],
      lockToken: '',
      attemptCount: 1,
      kvSnapshot: {},
      customStatus: null,
      nowMs: Date.now() + this.storeClockOffsetMs,
    };
    const run = await this.replayUncommitted(item);
    if (run === null) return null;
    const { ack, outcome, writeTraces } = run;
    if (ack.orchestratorItems.some((message) => targetInstanceOf(message) !== start.instance)) return null;
    const eager = this.activities?.reserveFor(ack.workerItems) ?? null;
    const claim = this.activityClaim(eager);
    const committed = (claimed: readonly WorkItemLease[]): void => {
      writeTraces();
      eager?.reservation?.deliver(claimed);
      this.count(outcome, ack);
      this.histories.remember(item, ack, this.storeClockOffsetMs);
      if (ack.workerItems.length > claimed.length) notifyLocal(this.deps.provider, 'worker');
      if (ack.orchestratorItems.length > 0) notifyLocal(this.deps.provider, 'orchestrator');
      notifyLocal(this.deps.provider, 'status');
    };
    return {
      announcesStatus: ack.historyDelta.some((event) => event.kind === 'CustomStatusUpdated'),
      commit: async () => {
        let result: FusedStartOutcome;
        try {
          result = await starts.submit({ item: start, turn: { ack, claim, nowMs: item.nowMs } });
        } catch (error) {
          eager?.reservation?.cancel();
          throw error;
        }
        // The store's clock during the call dates the next fused start.
        this.storeClockOffsetMs = result.nowMs - Date.now();
        if (!result.fused) {
          eager?.reservation?.cancel();
          return false;
        }
        committed(result.claimedWorkItems);
        return true;
      },
    };
  }

  /** Stops fetching and waits up to `timeoutMs` for turns in progress; true when all finished. */
  async drain(timeoutMs: number): Promise<boolean> {
    this.stopping.abort();
    this.inbox?.setCapacity(0);
    // abandon() logs its own failure (the lock then expires); draining must not wait on it.
    for (const item of this.inbox?.clear() ?? []) void this.abandon(item, 0, true);
    if (timeoutMs <= 0) return false;
    const all = Promise.all(this.loops).then(() => true);
    return Promise.race([all, sleep(timeoutMs).then(() => false)]);
  }

  private runWorker(
    push: PushWakeups,
    gate: QueueGate<OrchestrationItem>,
    inbox: HandOffInbox<OrchestrationItem>,
  ): Promise<void> {
    const { provider, options, metrics, faults } = this.deps;
    return runWorkerLoop<OrchestrationItem>({
      signal: this.stopping.signal,
      push,
      gate,
      inbox,
      localWake: wakeSignal(provider, 'orchestrator'),
      pollIntervalMs: options.dispatcherPollIntervalMs,
      fetchBackoffBaseMs: FIXED.fetchErrorBackoffBaseMs,
      fetchBackoffMaxMs: FIXED.fetchErrorBackoffMaxMs,
      maySleepOnGate: () => true,
      fetch: (reason) => this.fetch(inbox, reason),
      fetchSucceeded: () => faults.recovered('fetch_orchestration_item'),
      fetchFailed: (error) => {
        metrics.increment('providerErrors');
        faults.failed('fetch_orchestration_item', error);
      },
      received: () => metrics.increment('orchDispatcherItemsFetched'),
      run: (item) => this.processWithRenewal(item),
      runHandedOff: (item) => this.processWithRenewal(item),
      giveBack: (item) => this.abandon(item, 0, true),
    });
  }

  /**
   * Fetches a batch for this worker and, when more work is waiting (announced, or while draining),
   * for as many places as the inbox has: the extra batches go there for the next free workers,
   * so a burst costs one fetch per several turns instead of one each.
   */
  private async fetch(inbox: HandOffInbox<OrchestrationItem>, reason: WakeReason): Promise<OrchestrationItem | null> {
    const { provider } = this.deps;
    const options = this.turnClaim;
    const announcedOnly = reason === 'once';
    const extra = new Reservation(inbox, inbox.promiseQueued(MAX_EXTRA_TURNS_PER_FETCH, announcedOnly), (item) =>
      this.abandon(item, 0, true),
    );
    try {
      const items =
        extra.count === 0
          ? [await provider.fetchOrchestrationItem(options)].filter((item) => item !== null)
          : await provider.fetchOrchestrationItems({ ...options, maxItems: 1 + extra.count });
      if (reason === 'safety') {
        for (const item of items)
          recordSafetyFetchHit({
            queue: 'orchestrator',
            instanceId: item.instanceId,
            attemptCount: item.attemptCount,
            waitedMs: item.waitedMs,
          });
        this.deps.metrics.increment('safetyFetchHits', items.length);
      }
      const [first, ...others] = items;
      extra.deliver(others);
      return first ?? null;
    } catch (error) {
      // The extra places of an announced fetch took credits; a failed fetch answered none of them.
      if (announcedOnly) this.gate?.returnCredits(extra.count);
      throw error;
    } finally {
      extra.cancel();
    }
  }

  private async processWithRenewal(item: OrchestrationItem): Promise<void> {
    const { provider } = this.deps;
    const lockMs = FIXED.orchestrationLockTimeoutMs;
    const renewer = new LockRenewer(
      () => provider.renewOrchestrationItemLock(item.lockToken, lockMs),
      renewalIntervalMs(lockMs, FIXED.orchestrationRenewalBufferMs),
      isLockLost,
      () => log('warn', RUNTIME_TARGET, 'orchestration lock lost during a turn', { instance_id: item.instanceId }),
      (error) => this.deps.faults.failed('renew_orchestration_item_lock', error),
      () => this.deps.faults.recovered('renew_orchestration_item_lock'),
    ).start();
    try {
      await this.process(item);
    } finally {
      renewer.stop();
    }
  }

  private async process(item: OrchestrationItem): Promise<void> {
    const { engine, metrics, options } = this.deps;
    const base: Omit<TurnRequest, 'resolveHandler' | 'trace'> = {
      instanceId: item.instanceId,
      orchestrationName: item.orchestrationName,
      orchestrationVersion: item.orchestrationVersion,
      executionId: item.executionId,
      history: item.history,
      messages: item.messages,
      kvSnapshot: item.kvSnapshot,
      customStatus: item.customStatus,
      nowMs: item.nowMs,
    };
    if (item.attemptCount > FIXED.maxAttempts) {
      metrics.increment('orchStarts');
      metrics.increment('orchFailures');
      metrics.increment('orchPoison');
      await this.commit(item, engine.poisonTurn(base, item.attemptCount, FIXED.maxAttempts));
      return;
    }
    if (item.historyError !== undefined) {
      log('error', RUNTIME_TARGET, `history cannot be decoded: ${item.historyError}`, { instance_id: item.instanceId });
      await this.abandon(item, FIXED.historyErrorBackoffMs, false);
      return;
    }
    const storeClockOffsetMs = item.nowMs - Date.now();
    this.storeClockOffsetMs = storeClockOffsetMs;
    let result;
    try {
      result = await this.replay(item);
    } catch (error) {
      log('error', RUNTIME_TARGET, `turn crashed: ${messageOf(error)}`, { instance_id: item.instanceId });
      await this.abandon(item, FIXED.historyErrorBackoffMs, false);
      return;
    }
    if (result.kind === 'unregistered') {
      const delayMs = unregisteredBackoffMs(
        item.attemptCount,
        options.unregisteredBackoffBaseMs,
        options.unregisteredBackoffMaxMs,
      );
      log(
        'warn',
        RUNTIME_TARGET,
        `orchestration '${result.name}' version ${result.version ?? 'latest'} is not ` +
          `registered; retrying in ${delayMs} ms`,
        {
          instance_id: item.instanceId,
          attempt: item.attemptCount,
        },
      );
      await this.abandon(item, delayMs, false);
      return;
    }
    this.count(result.outcome, result.ack);
    await this.commit(item, result.ack, storeClockOffsetMs);
  }

  /**
   * Runs a turn that no lock holds yet (fused completion, fused start): its traces are kept for
   * `writeTraces`, called only if the store commits this turn; otherwise a turn worker runs it
   * again and writes them then, so each trace is written once. Null when it cannot run here.
   */
  private async replayUncommitted(
    item: OrchestrationItem,
  ): Promise<{ ack: OrchestrationTurnAck; outcome: TurnOutcome; writeTraces: () => void } | null> {
    const traces: Array<Parameters<TraceSink>> = [];
    let result: TurnResult;
    try {
      result = await this.replay(item, (...record) => traces.push(record));
    } catch {
      return null;
    }
    if (result.kind !== 'ack' || result.outcome.kind === 'discarded') return null;
    const writeTraces = (): void => {
      for (const [level, message, fields] of traces) log(level, ORCHESTRATION_TARGET, message, fields);
    };
    return { ack: result.ack, outcome: result.outcome, writeTraces };
  }

  /** The claim an ack sends for the activities `eager` reserved slots for (none: null). */
  private activityClaim(eager: ActivityReservation | null): ActivityClaim | null {
    return eager === null
      ? null
      : { workerItemIndexes: eager.indexes, lockTimeoutMs: this.deps.options.workerLockTimeoutMs };
  }

  /** Runs one turn of `item` through the replay engine; its traces go to `trace` (default: the log). */
  private async replay(
    item: OrchestrationItem,
    trace: TraceSink = (level, message, fields) => log(level, ORCHESTRATION_TARGET, message, fields),
  ): Promise<TurnResult> {
    const { engine, orchestrations, options } = this.deps;
    const turn = engine.runTurn({
      instanceId: item.instanceId,
      orchestrationName: item.orchestrationName,
      orchestrationVersion: item.orchestrationVersion,
      executionId: item.executionId,
      history: item.history,
      messages: item.messages,
      kvSnapshot: item.kvSnapshot,
      customStatus: item.customStatus,
      nowMs: item.nowMs,
      resolveHandler: (name, version) => orchestrations.resolve(name, version),
      trace,
      asyncGuards: options.asyncOrchestrationGuards,
    });
    // Only async orchestrations return a promise; generator turns stay free of the extra hop.
    return turn instanceof Promise ? await turn : turn;
  }

  private count(outcome: TurnOutcome, ack: OrchestrationTurnAck): void {
    const { metrics } = this.deps;
    metrics.increment('orchStarts');
    const children = ack.orchestratorItems.filter((w) => w.type === 'StartOrchestration' && w.parentInstance !== null);
    if (children.length > 0) metrics.increment('suborchestrationCalls', children.length);
    if (outcome.kind === 'completed') metrics.increment('orchCompletions');
    else if (outcome.kind === 'continuedAsNew') metrics.increment('orchContinueAsNew');
    else if (outcome.kind === 'failed') {
      metrics.increment('orchFailures');
      const category = outcome.details.category;
      if (category === 'application') metrics.increment('orchApplicationErrors');
      else if (category === 'configuration') metrics.increment('orchConfigurationErrors');
      else if (category === 'infrastructure') metrics.increment('orchInfrastructureErrors');
      else metrics.increment('orchPoison');
    }
  }

  /**
   * Acks the turn, retrying transient errors; a refused turn becomes an infrastructure failure.
   * Activities this runtime's idle slots can run now are claimed by the ack and handed to them.
   */
  private async commit(
    item: OrchestrationItem,
    ack: OrchestrationTurnAck,
    storeClockOffsetMs: number | null = null,
  ): Promise<void> {
    const { provider, metrics, options } = this.deps;
    const eager = this.stopping.signal.aborted ? null : (this.activities?.reserveFor(ack.workerItems) ?? null);
    const claim = this.activityClaim(eager);
    let failedAttempts = 0;
    try {
      const claimed = await retryThroughOutage(
        () => this.acks.submit({ lockToken: item.lockToken, ack, claim }),
        outageRetryPolicy(options.maxOutageMs),
        isRetryable,
        {
          onFailure: (error) => {
            failedAttempts += 1;
            this.deps.faults.failed('ack_orchestration_item', error);
          },
        },
      );
      this.deps.faults.recovered('ack_orchestration_item');
      eager?.reservation?.deliver(claimed);
      if (storeClockOffsetMs === null) this.histories.forget(item.instanceId);
      else this.histories.remember(item, ack, storeClockOffsetMs);
      if (ack.workerItems.length > (claim?.workerItemIndexes.length ?? 0)) notifyLocal(provider, 'worker');
      if (ack.orchestratorItems.length > 0) notifyLocal(provider, 'orchestrator');
      notifyLocal(provider, 'status');
      return;
    } catch (error) {
      eager?.reservation?.cancel();
      this.histories.forget(item.instanceId);
      metrics.increment('providerErrors');
      if (isLockLost(error)) {
        const why =
          failedAttempts === 0
            ? 'another worker owns the instance now'
            : `its lock ran out while the ack was retried through an outage (${failedAttempts} failed attempt(s)), or an earlier attempt committed; the turn runs again if it did not`;
        log('warn', RUNTIME_TARGET, `turn discarded, ${why}: ${messageOf(error)}`, { instance_id: item.instanceId });
        // Its lock has run out, and nothing announces an expired lock: look now rather than at the safety fetch.
        if (failedAttempts > 0) this.gate?.drainOne();
        return;
      }
      if (isRetryable(error)) {
        await this.abandon(item, FIXED.historyErrorBackoffMs, false);
        return;
      }
      log('error', RUNTIME_TARGET, `turn refused by the store; failing the orchestration: ${messageOf(error)}`, {
        instance_id: item.instanceId,
      });
      try {
        const failure = this.deps.engine.infrastructureFailureTurn(item, ack, messageOf(error));
        await provider.ackOrchestrationItem(item.lockToken, failure);
        metrics.increment('orchInfrastructureErrors');
      } catch (second) {
        log('error', RUNTIME_TARGET, `could not record the failure either: ${messageOf(second)}`, {
          instance_id: item.instanceId,
        });
        await this.abandon(item, FIXED.historyErrorBackoffMs, false);
      }
    }
  }

  private async abandon(item: OrchestrationItem, delayMs: number, ignoreAttempt: boolean): Promise<void> {
    try {
      await this.deps.provider.abandonOrchestrationItem(item.lockToken, { delayMs, ignoreAttempt });
    } catch (error) {
      this.deps.metrics.increment('providerErrors');
      log(
        'warn',
        RUNTIME_TARGET,
        `abandon_orchestration_item failed; the batch returns when its lock expires: ${messageOf(error)}`,
        {
          instance_id: item.instanceId,
        },
      );
    }
  }
}
