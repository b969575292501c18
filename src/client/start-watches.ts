/**
 * What a Client learned about an instance it started itself, for a `waitForOrchestration` that
 * follows: without it, the wait reads the status once before it sleeps, to catch an instance that
 * already ended. The watch is opened before the start's call, so every later status hint and every
 * terminal status committed through the same provider object is caught; when the start claimed
 * the instance's first turn and that turn's history was empty (the execution had no event, so it
 * could not have ended) and nothing was heard since, the instance is still running and the wait
 * sleeps at once. The push channel must have stayed up meanwhile (same epoch): a hint sent while it
 * was down is lost.
 *
 * At most {@link MAX_WATCHES} are kept per provider object; the oldest is dropped first (its
 * instance's wait then reads, as without this).
 */
import type { InstanceStatus, OrchestrationItem, Provider } from '../provider/contract';
import { watchCommittedStatus } from '../provider/local-completions';
import { pushWakeups, type StatusWatch } from '../provider/push-wakeups';

const MAX_WATCHES = 1000;

/** A status watch opened before an instance's start. */
export class StartWatch {
  /** True once the start claimed (or committed) the instance's first turn on an empty history. */
  private startedNew = false;
  private committedStatus: InstanceStatus | null = null;
  /** Status hints the start's own commit sends (fused start), not yet taken for it. */
  private ownHints = 0;
  private listener: ((status: InstanceStatus) => void) | null = null;
  private readonly unwatchCommitted: () => void;

  constructor(
    private readonly provider: Provider,
    readonly instanceId: string,
    readonly watch: StatusWatch,
    private readonly epoch: number,
  ) {
    this.unwatchCommitted = watchCommittedStatus(provider, instanceId, (status) => {
      this.committedStatus = status;
      this.watch.fire();
      this.listener?.(status);
    });
  }

  /** The start's call answered: `claimedTurn` is the first turn it claimed, or null. */
  started(claimedTurn: OrchestrationItem | null): void {
    this.startedNew =
      claimedTurn !== null && claimedTurn.history.length === 0 && claimedTurn.historyError === undefined;
  }

  /**
   * The start's call committed the instance's first turn itself (fused start). `announcesStatus`:
   * that turn changed the custom status, so one status hint heard is the commit's own.
   */
  startedFresh(announcesStatus: boolean): void {
    this.startedNew = true;
    this.ownHints = announcesStatus ? 1 : 0;
  }

  /**
   * True, once, when the hints heard since the start are exactly the start's own (channel up all
   * along, nothing committed here since): the instance is still running. Each hint is one fire
   * of the watch (one notification each), so a hint of a later commit is never taken for it.
   */
  takeOwnHint(): boolean {
    if (this.ownHints === 0 || this.watch.fireCount !== this.ownHints || !this.stillRunning) return false;
    this.ownHints = 0;
    return true;
  }

  /** A terminal status committed through this provider object since the watch opened, if any. */
  get committed(): InstanceStatus | null {
    return this.committedStatus;
  }

  /**
   * True when the instance is known to be running: started new, nothing heard since but the
   * start's own hints, channel up all along.
   */
  get stillRunning(): boolean {
    const push = pushWakeups(this.provider);
    return (
      this.startedNew &&
      this.committedStatus === null &&
      this.watch.fireCount <= this.ownHints &&
      push.live &&
      push.epoch === this.epoch
    );
  }

  /** Hands later committed statuses to `listener` (the waiting client). */
  onCommitted(listener: (status: InstanceStatus) => void): void {
    this.listener = listener;
  }

  close(): void {
    this.unwatchCommitted();
    this.watch.close();
  }
}

const watches = new WeakMap<Provider, Map<string, StartWatch>>();

/**
 * Opens a watch for an instance about to be started through `provider`; null while the push
 * channel is down (hints could be lost). Replaces an earlier one of the same instance.
 */
export function openStartWatch(provider: Provider, instanceId: string): StartWatch | null {
  const push = pushWakeups(provider);
  if (!push.live) return null;
  let byInstance = watches.get(provider);
  if (byInstance === undefined) {
    byInstance = new Map();
    watches.set(provider, byInstance);
  }
  byInstance.get(instanceId)?.close();
  byInstance.delete(instanceId);
  if (byInstance.size >= MAX_WATCHES) {
    const [oldest] = byInstance.values();
    oldest.close();
    byInstance.delete(oldest.instanceId);
  }
  const watch = new StartWatch(provider, instanceId, push.watchStatus(instanceId), push.epoch);
  byInstance.set(instanceId, watch);
  return watch;
}

/** Drops the watch of a start that did not go through (or that nobody can use). */
export function dropStartWatch(provider: Provider, watch: StartWatch): void {
  const byInstance = watches.get(provider);
  if (byInstance?.get(watch.instanceId) === watch) byInstance.delete(watch.instanceId);
  watch.close();
}

/** Takes the watch opened at `instanceId`'s start, if one is kept; the caller closes it. */
export function takeStartWatch(provider: Provider, instanceId: string): StartWatch | null {
  const byInstance = watches.get(provider);
  const watch = byInstance?.get(instanceId) ?? null;
  if (watch !== null) byInstance?.delete(instanceId);
  return watch;
}
