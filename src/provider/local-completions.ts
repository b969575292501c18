/**
 * Terminal statuses committed through a provider object in this process. A store whose turn ack
 * commits a Completed or Failed execution publishes here the status that `getInstanceStatus`
 * returns from then on (read in the committing transaction); a Client waiting on the same
 * provider object resolves from it without reading the status again. The Client and the store
 * meet here, as they meet in ./local-turns, without the Client knowing the runtime.
 */
import type { InstanceStatus, Provider } from './contract';

type CommittedListener = (status: InstanceStatus) => void;

const listeners = new WeakMap<Provider, Map<string, Set<CommittedListener>>>();
/** Turn acks in flight through a provider object, by instance, with who waits for them to settle. */
const inFlight = new WeakMap<Provider, Map<string, { acks: number; settled: Array<() => void> }>>();

/**
 * Marks a turn ack of `instanceId` as sent through `provider` (store side); call the returned
 * function once its outcome is known (after publishing a committed status). The store's status
 * notification of that commit can arrive before the ack's reply: a waiting client that sees it
 * waits for the ack instead of reading the status.
 */
export function beginTurnAck(provider: Provider, instanceId: string): () => void {
  let byInstance = inFlight.get(provider);
  if (byInstance === undefined) {
    byInstance = new Map();
    inFlight.set(provider, byInstance);
  }
  let entry = byInstance.get(instanceId);
  if (entry === undefined) {
    entry = { acks: 0, settled: [] };
    byInstance.set(instanceId, entry);
  }
  entry.acks += 1;
  const acking = entry;
  const instances = byInstance;
  let ended = false;
  return () => {
    if (ended) return;
    ended = true;
    acking.acks -= 1;
    if (acking.acks > 0) return;
    instances.delete(instanceId);
    for (const settle of acking.settled) settle();
  };
}

/**
 * Resolves once no turn ack of `instanceId` is in flight through `provider` (at once when none
 * is), or after `timeoutMs` at the latest.
 */
export function turnAcksSettled(provider: Provider, instanceId: string, timeoutMs: number): Promise<void> {
  const entry = inFlight.get(provider)?.get(instanceId);
  if (entry === undefined || timeoutMs <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    entry.settled.push(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Calls `onCommitted` when a turn committed through `provider` ends `instanceId`'s current
 * execution Completed or Failed (continue-as-new is not an end). Watch before reading the status,
 * so a commit during the read is not missed; returns the withdrawal.
 */
export function watchCommittedStatus(
  provider: Provider,
  instanceId: string,
  onCommitted: CommittedListener,
): () => void {
  let byInstance = listeners.get(provider);
  if (byInstance === undefined) {
    byInstance = new Map();
    listeners.set(provider, byInstance);
  }
  let set = byInstance.get(instanceId);
  if (set === undefined) {
    set = new Set();
    byInstance.set(instanceId, set);
  }
  set.add(onCommitted);
  const watched = set;
  return () => {
    watched.delete(onCommitted);
    if (watched.size === 0 && byInstance.get(instanceId) === watched) byInstance.delete(instanceId);
  };
}

/** Tells the watchers of `instanceId` on `provider` its committed terminal status (store side). */
export function publishCommittedStatus(provider: Provider, instanceId: string, status: InstanceStatus): void {
  if (status.status !== 'Completed' && status.status !== 'Failed') return;
  for (const listener of [...(listeners.get(provider)?.get(instanceId) ?? [])]) listener(status);
}
