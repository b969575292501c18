/**
 * The activity worker (docs/runtime.md, "The activity worker"): `workerConcurrency` slots, each
 * fetching one work item at a time, running its handler under a renewed lock and acknowledging
 * the result. Activities are at-least-once: a crash or lost lock makes the item run again.
 */
import { displayMessage } from '../core/error-details';
import { decodeActivityInput } from '../core/codec';
import { MAX_PAYLOAD_BYTES } from '../core/limits';
import { isSystemActivityName } from '../core/system-activities';
import type { ActivityCompletionItem, ActivityExecuteItem, ErrorDetails } from '../core/types';
import type { FetchWorkItemOptions, Provider, WorkItemLease } from '../provider/contract';
import { isLockLost } from '../provider/errors';
import { ActivityContext, CancellationToken } from './activity-context';
import { FaultLog, messageOf } from './fault-log';
import { thrownDescription, thrownMessage } from '../core/thrown';
import { LockRenewer, renewalIntervalMs } from './lock-renewal';
import { wakeSignal } from '../provider/local-wakeups';
import { CallBatcher } from './call-batcher';
import {
  reserveIdle,
  tagAccepted,
  type ActivityReservation,
  type ActivityTaker,
  type TurnTaker,
} from './eager-dispatch';
import { pushWakeups } from '../provider/push-wakeups';
import { allowWaiters, workerGate, type QueueGate } from './queue-gate';
import { handOffInbox, type HandOffInbox } from './handoff-inbox';
import { InboxCapacity } from './inbox-capacity';
import { CompletionAcks } from './completion-acks';
import { runWorkerLoop } from './worker-loop';
import { recordSafetyFetchHit } from './liveness';
import { log, RUNTIME_TARGET } from './logger';
import type { RuntimeMetrics } from './metrics';
import { FIXED, type ResolvedRuntimeOptions } from './options';
import type { ActivityRegistry } from './registry';
import type { SessionManager } from './session-manager';
import { SYSTEM_ACTIVITIES } from './system-activities';
import { sleep, unregisteredBackoffMs } from './timing';

/** What the worker pool needs from its runtime. */
export interface ActivityWorkerDeps {
  provider: Provider;
  options: ResolvedRuntimeOptions;
  activities: ActivityRegistry<ActivityContext>;
  metrics: RuntimeMetrics;
  faults: FaultLog;
  /** Identity used in worker ids when no workerNodeId is configured. */
  runtimeId: string;
  /** Session ownership, capacity and lock renewal of this runtime. */
  sessions: SessionManager;
}

/** An activity whose work item this runtime holds. */
interface HeldActivity {
  lease: WorkItemLease;
  cancellation: CancellationToken;
  renewer: LockRenewer | null;
  /** Set at shutdown: the item was given back and any later result must be dropped. */
  released: boolean;
}

type HandlerOutcome = { ok: true; value: unknown } | { ok: false; error: unknown };

function activityFailure(message: string): ErrorDetails {
  return { category: 'application', kind: 'ActivityFailed', message, retryable: false };
}

function completion(
  item: ActivityExecuteItem,
  outcome: { result: string } | { details: ErrorDetails },
): ActivityCompletionItem {
  const base = { instance: item.instance, executionId: item.executionId, id: item.id };
  return 'result' in outcome
    ? { type: 'ActivityCompleted', ...base, result: outcome.result }
    : { type: 'ActivityFailed', ...base, details: outcome.details };
}

/** Encodes a handler's return value; values JSON cannot represent fail the activity. */
function encodeResult(name: string, value: unknown): { result: string } | { details: ErrorDetails } {
  try {
    const result = JSON.stringify(value === undefined ? null : value) ?? 'null';
    const bytes = Buffer.byteLength(result, 'utf8');
    if (bytes > MAX_PAYLOAD_BYTES) {
      // The store would refuse the ack and the activity would run again and again until poisoned.
      return {
        details: activityFailure(
          `Activity '${name}' returned ${bytes} bytes of JSON; the payload limit ` +
            `MAX_PAYLOAD_BYTES is ${MAX_PAYLOAD_BYTES} bytes`,
        ),
      };
    }
    return { result };
  } catch (error) {
    return {
      details: activityFailure(
        `Activity '${name}' returned a value that cannot be encoded as JSON: ${messageOf(error)}`,
      ),
    };
  }
}

/** The pool's slots: none when the tag filter is `none` (this node runs no activities). */
function slotCount(options: ResolvedRuntimeOptions): number {
  return options.tagFilter.mode === 'none' ? 0 : options.workerConcurrency;
}

export class ActivityWorkerPool implements ActivityTaker {
  private readonly stopping = new AbortController();
  private readonly held = new Set<HeldActivity>();
  private loops: Array<Promise<void>> = [];
  private inbox: HandOffInbox<WorkItemLease> | null = null;
  /** Sizes the inbox from how long recent activities ran. */
  private readonly inboxCapacity: InboxCapacity;
  /** The acknowledgements of results, plain or fused with the turns they unblock. */
  private readonly completions: CompletionAcks;
  /** Fetches of slots: one out at a time, the ones that wait go together (group fetch; null: the provider has none). */
  private readonly fetches: CallBatcher<FetchWorkItemOptions, WorkItemLease | null> | null;

  constructor(private readonly deps: ActivityWorkerDeps) {
    const { provider } = deps;
    this.completions = new CompletionAcks(deps, this.stopping.signal);
    this.inboxCapacity = new InboxCapacity(slotCount(deps.options));
    const fetchGroup = provider.fetchWorkItemGroup?.bind(provider);
    this.fetches =
      fetchGroup === undefined
        ? null
        : new CallBatcher(
            {
              one: (options) => provider.fetchWorkItem(options),
              many: async (requests) =>
                (await fetchGroup(requests)).map((lease) => ({ ok: true as const, value: lease })),
            },
            FIXED.maxFetchCallsInFlight,
          );
  }

  /** Lets activity acks claim the next turn for `turns` (eager dispatch). */
  handTurnsTo(turns: TurnTaker): void {
    this.completions.handTurnsTo(turns);
  }

  reserveFor(items: readonly ActivityExecuteItem[], forCallingSlot = false): ActivityReservation | null {
    if (this.stopping.signal.aborted) return null;
    const { options, activities } = this.deps;
    const indexes: number[] = [];
    items.forEach((item, index) => {
      const runnable = isSystemActivityName(item.name) || activities.get(item.name) !== undefined;
      if (runnable && (item.sessionId ?? null) === null && tagAccepted(options.tagFilter, item.tag))
        indexes.push(index);
    });
    // Idle slots first, then, for a fused ack's chain, inbox places: a busy slot runs the item when
    // it finishes its own. A turn's ack claims for idle slots only: an item it claimed into the
    // inbox would run before queued items of a higher priority level (the calling slot of a fused
    // ack ran its chain's next step next anyway).
    const reservation = reserveIdle(this.inbox, indexes.length, (lease) => this.giveBack(lease), !forCallingSlot);
    const reserved = indexes.slice(0, reservation?.count ?? 0);
    // The calling slot runs an item itself only when no other slot or place could take one: it
    // then waits for its ack. Otherwise it moves on at once (see CompletionAcks.acknowledge).
    const callerIndex = forCallingSlot ? (indexes[reserved.length] ?? null) : null;
    if (callerIndex === null && reservation === null) return null;
    return { indexes: callerIndex === null ? reserved : [callerIndex, ...reserved], reservation, callerIndex };
  }

  /** Starts the slots (none when the tag filter is `none`: this node runs no activities). */
  start(): void {
    const { tagFilter } = this.deps.options;
    const slots = slotCount(this.deps.options);
    allowWaiters(this.stopping.signal, slots);
    // One gate per runtime: credits of one runtime are never consumed by another in this process.
    const gate = workerGate<WorkItemLease>(pushWakeups(this.deps.provider), {
      tagFilter,
      node: this.deps.options.workerNodeId ?? this.deps.runtimeId,
    });
    const inbox = handOffInbox(gate);
    // An activity claimed while every slot is busy waits for the first to finish (see reserveFor):
    // one place per slot, a few while the activities are short (inbox-capacity.ts).
    this.inbox = inbox;
    this.resizeInbox(this.inboxCapacity.current);
    this.loops = Array.from({ length: slots }, (_, slot) => this.runSlot(slot, gate, inbox));
  }

  /** Inbox places, and as many acks pending at once (each may claim an activity for a place). */
  private resizeInbox(capacity: number): void {
    this.inbox?.setCapacity(capacity);
    this.completions.maxPendingAcks = capacity;
  }

  /** Stops fetching and waits up to `timeoutMs` for running activities; true when all finished. */
  async drain(timeoutMs: number): Promise<boolean> {
    this.stopping.abort();
    this.inbox?.setCapacity(0);
    for (const lease of this.inbox?.clear() ?? []) void this.giveBack(lease);
    const all = Promise.all(this.loops)
      .then(() => this.completions.settled())
      .then(() => true);
    return timeoutMs <= 0
      ? this.held.size === 0 && this.completions.pendingCount === 0
      : Promise.race([all, sleep(timeoutMs).then(() => false)]);
  }

  /** Gives back every work item still held: the handler is told to stop and its result is dropped. */
  async releaseHeld(): Promise<void> {
    const releases = [...this.held].map(async (activity) => {
      const lockAlreadyLost = activity.cancellation.isCancelled;
      activity.released = true;
      activity.renewer?.stop();
      activity.cancellation.cancel();
      this.held.delete(activity);
      if (lockAlreadyLost) return;
      try {
        await this.deps.provider.abandonWorkItem(activity.lease.lockToken);
      } catch (error) {
        if (isLockLost(error)) return;
        log(
          'warn',
          RUNTIME_TARGET,
          `could not release activity at shutdown; it runs again after its lock expires: ${messageOf(error)}`,
          {
            instance_id: activity.lease.item.instance,
            activity_name: activity.lease.item.name,
          },
        );
      }
    });
    await Promise.all(releases);
  }

  private async runSlot(
    slot: number,
    gate: QueueGate<WorkItemLease>,
    inbox: HandOffInbox<WorkItemLease>,
  ): Promise<void> {
    const { provider, options, metrics, faults, sessions } = this.deps;
    const push = pushWakeups(provider);
    const release = push.acquire();
    try {
      await runWorkerLoop<WorkItemLease>({
        signal: this.stopping.signal,
        push,
        gate,
        inbox,
        localWake: wakeSignal(provider, 'worker'),
        pollIntervalMs: options.dispatcherPollIntervalMs,
        fetchBackoffBaseMs: FIXED.fetchErrorBackoffBaseMs,
        fetchBackoffMaxMs: FIXED.fetchErrorBackoffMaxMs,
        // While sessions are in use here, poll: a wake-up may go to a worker that cannot take the item.
        maySleepOnGate: () => !sessions.holdsSessions,
        fetch: () => this.fetchLease(slot),
        fetchSucceeded: () => faults.recovered('fetch_work_item'),
        fetchFailed: (error) => {
          metrics.increment('providerErrors');
          faults.failed('fetch_work_item', error);
        },
        received: (lease, reason) => {
          metrics.increment('workerDispatcherItemsFetched');
          if (reason !== 'safety') return;
          recordSafetyFetchHit({
            queue: 'worker',
            instanceId: lease.item.instance,
            activityName: lease.item.name,
            attemptCount: lease.attemptCount,
            sessionTakenOver: lease.sessionTakenOver,
            waitedMs: lease.waitedMs,
          });
          metrics.increment('safetyFetchHits');
        },
        run: async (lease) => {
          const sessionDone = sessions.begin(lease.item.sessionId ?? null);
          try {
            await this.processChain(lease, slot);
          } finally {
            sessionDone();
          }
        },
        runHandedOff: (lease, waitedMs) => this.processChain(lease, slot, waitedMs),
        giveBack: (lease) => this.giveBack(lease),
      });
    } finally {
      release();
    }
  }

  /** One fetch of `slot`, session-capable while this runtime is below its session capacity. */
  private async fetchLease(slot: number): Promise<WorkItemLease | null> {
    const { options, sessions } = this.deps;
    const reservation = sessions.reserveFetch(slot);
    try {
      const request: FetchWorkItemOptions = {
        lockTimeoutMs: options.workerLockTimeoutMs,
        tagFilter: options.tagFilter,
        session: reservation.config,
      };
      return await (this.fetches === null ? this.deps.provider.fetchWorkItem(request) : this.fetches.submit(request));
    } finally {
      reservation.release();
    }
  }

  /** Returns an item fetched while shutting down, without counting the delivery. */
  private async giveBack(lease: WorkItemLease): Promise<void> {
    try {
      await this.deps.provider.abandonWorkItem(lease.lockToken, { ignoreAttempt: true });
    } catch {
      // The lock expires on its own; nothing else to do while shutting down.
    }
  }

  /**
   * Runs `lease` and then each activity that its fused ack claimed for this slot: a chain of
   * activities runs on one slot with no fetch between its steps. `waitedMs`: how long `lease`
   * waited in the inbox after it was claimed.
   */
  private async processChain(lease: WorkItemLease, slot: number, waitedMs = 0): Promise<void> {
    let next: WorkItemLease | null = lease;
    let lockAgeMs = waitedMs;
    while (next !== null) {
      next = await this.process(next, slot, lockAgeMs);
      lockAgeMs = 0;
      if (next === null) return;
      this.deps.metrics.increment('workerDispatcherItemsFetched');
      if (this.stopping.signal.aborted) {
        await this.giveBack(next);
        return;
      }
    }
  }

  /** Runs one activity and acknowledges it; returns the next activity claimed for this slot, if any. */
  private async process(lease: WorkItemLease, slot: number, lockAgeMs: number): Promise<WorkItemLease | null> {
    const { item } = lease;
    if (lease.attemptCount > FIXED.maxAttempts) {
      this.deps.metrics.increment('activityPoison');
      const details: ErrorDetails = {
        category: 'poison',
        attemptCount: lease.attemptCount,
        maxAttempts: FIXED.maxAttempts,
        messageType: {
          kind: 'Activity',
          instance: item.instance,
          executionId: item.executionId,
          activityName: item.name,
          activityId: item.id,
        },
        message: '',
      };
      details.message = displayMessage(details);
      return this.completions.acknowledge(lease, completion(item, { details }));
    }
    if (isSystemActivityName(item.name)) return this.runSystemActivity(lease);
    const handler = this.deps.activities.get(item.name);
    if (handler === undefined) {
      const { unregisteredBackoffBaseMs, unregisteredBackoffMaxMs } = this.deps.options;
      const delayMs = unregisteredBackoffMs(lease.attemptCount, unregisteredBackoffBaseMs, unregisteredBackoffMaxMs);
      log(
        'warn',
        RUNTIME_TARGET,
        `activity '${item.name}' is not registered on this runtime; retrying in ${delayMs} ms`,
        {
          instance_id: item.instance,
          attempt: lease.attemptCount,
        },
      );
      await this.abandon(lease, delayMs);
      return null;
    }
    return this.runUserActivity(lease, slot, lockAgeMs, (ctx, input) => handler(ctx, input));
  }

  private async runSystemActivity(lease: WorkItemLease): Promise<WorkItemLease | null> {
    const { item } = lease;
    const run = SYSTEM_ACTIVITIES.get(item.name);
    let outcome: { result: string } | { details: ErrorDetails };
    if (run === undefined) {
      outcome = { details: activityFailure(`unknown system activity '${item.name}'`) };
    } else {
      try {
        outcome = { result: await run(this.deps.provider, item.input) };
      } catch (error) {
        outcome = { details: activityFailure(`${item.name} failed: ${messageOf(error)}`) };
      }
    }
    this.deps.metrics.increment('result' in outcome ? 'activitySuccess' : 'activityAppErrors');
    return this.completions.acknowledge(lease, completion(item, outcome));
  }

  /** Runs a handler under a renewed lock; `lockAgeMs`: how long ago the lock was taken. */
  private async runUserActivity(
    lease: WorkItemLease,
    slot: number,
    lockAgeMs: number,
    handler: (ctx: ActivityContext, input: unknown) => unknown,
  ): Promise<WorkItemLease | null> {
    const { provider, options, runtimeId } = this.deps;
    const { item } = lease;
    const renewEveryMs = renewalIntervalMs(options.workerLockTimeoutMs, FIXED.workerRenewalBufferMs);
    // Waited in the inbox past a renewal (a slot busy with a long activity): renewed before it
    // runs, so an item whose lock ran out, and that another worker may run now, is not run here.
    let firstRenewalInMs = renewEveryMs - lockAgeMs;
    if (firstRenewalInMs <= 0) {
      const held = await this.lockStillHeld(lease, lockAgeMs);
      if (held === false) return null;
      // Unknown after a failed call: the renewer tries again at once.
      firstRenewalInMs = held === true ? renewEveryMs : 0;
    }
    const held: HeldActivity = { lease, cancellation: new CancellationToken(), renewer: null, released: false };
    let signalLost: () => void = () => undefined;
    const lockLost = new Promise<'lost'>((resolve) => (signalLost = () => resolve('lost')));
    held.renewer = new LockRenewer(
      () => provider.renewWorkItemLock(lease.lockToken, options.workerLockTimeoutMs),
      renewEveryMs,
      isLockLost,
      () => {
        held.cancellation.cancel();
        signalLost();
      },
      (error) => this.deps.faults.failed('renew_work_item_lock', error),
      () => this.deps.faults.recovered('renew_work_item_lock'),
    ).start(firstRenewalInMs);
    this.held.add(held);

    const ctx = new ActivityContext({
      instanceId: item.instance,
      executionId: item.executionId,
      orchestrationName: lease.orchestrationName,
      orchestrationVersion: lease.orchestrationVersion,
      activityName: item.name,
      activityId: item.id,
      workerId: `work-${slot}-${options.workerNodeId ?? runtimeId}`,
      sessionId: item.sessionId,
      tag: item.tag,
      provider,
      cancellation: held.cancellation,
    });
    // The handler's own run time, measured where it starts and settles: not the time this slot
    // waits for the event loop around it, which says nothing about the activity.
    let startedAt = 0;
    let runMs = 0;
    const outcome: Promise<HandlerOutcome> = Promise.resolve()
      .then(() => {
        startedAt = performance.now();
        return handler(ctx, decodeActivityInput(item.input));
      })
      .then(
        (value) => {
          runMs = performance.now() - startedAt;
          return { ok: true as const, value };
        },
        (error: unknown) => {
          runMs = performance.now() - startedAt;
          return { ok: false as const, error };
        },
      );

    let result: ActivityCompletionItem;
    try {
      const first = await Promise.race([outcome, lockLost]);
      if (first === 'lost') {
        // Cancelled (terminal orchestration, lost race) or expired: give the handler a grace
        // period to notice isCancelled(), then drop whatever it produces.
        await Promise.race([outcome, sleep(FIXED.activityCancellationGraceMs)]);
        log('info', RUNTIME_TARGET, `activity '${item.name}' lost its lock; its result is dropped`, {
          instance_id: item.instance,
        });
        return null;
      }
      held.renewer.stop();
      if (held.released) return null;
      if (!this.stopping.signal.aborted) this.resizeInbox(this.inboxCapacity.record(runMs));
      const encoded = first.ok
        ? encodeResult(item.name, first.value)
        : { details: activityFailure(thrownMessage(first.error)) };
      if (!first.ok) {
        // The stored failure holds the message (duroxide's format); the user's frames go to the log.
        log('warn', RUNTIME_TARGET, `activity '${item.name}' failed: ${thrownDescription(first.error)}`, {
          instance_id: item.instance,
          activity_id: item.id,
        });
      }
      this.deps.metrics.increment('result' in encoded ? 'activitySuccess' : 'activityAppErrors');
      result = completion(item, encoded);
    } finally {
      held.renewer.stop();
      this.held.delete(held);
    }
    return this.completions.acknowledge(lease, result);
  }

  /**
   * Renews the lock of an item that waited `lockAgeMs` for a slot: true when renewed, false when
   * lost, null when the call failed otherwise (the lock may well hold).
   */
  private async lockStillHeld(lease: WorkItemLease, lockAgeMs: number): Promise<boolean | null> {
    try {
      await this.deps.provider.renewWorkItemLock(lease.lockToken, this.deps.options.workerLockTimeoutMs);
      return true;
    } catch (error) {
      if (!isLockLost(error)) return null;
      log(
        'info',
        RUNTIME_TARGET,
        `activity '${lease.item.name}' waited ${Math.round(lockAgeMs)} ms for a free slot and lost its lock; it runs where it is delivered next`,
        { instance_id: lease.item.instance },
      );
      return false;
    }
  }

  private async abandon(lease: WorkItemLease, delayMs: number): Promise<void> {
    try {
      await this.deps.provider.abandonWorkItem(lease.lockToken, { delayMs });
    } catch (error) {
      this.deps.metrics.increment('providerErrors');
      log(
        'warn',
        RUNTIME_TARGET,
        `abandon_work_item failed; the item returns when its lock expires: ${messageOf(error)}`,
        {
          instance_id: lease.item.instance,
        },
      );
    }
  }
}
