/**
 * Histories of the instances whose last turn this dispatcher committed (fused completion). When
 * an activity of such an instance completes in this process, its next turn can be run here on
 * this history, before any call, and committed together with the completion
 * (`Provider.ackWorkItemWithTurn`); the store commits it only if the history is still the one
 * recorded here (same execution, same last event id), so a stale entry costs nothing but the
 * fallback. Entries end with their execution and are bounded in number.
 */
import type { OrchestrationTurnAck } from '../core/turn-types';
import type { ActivityCompletionItem, HistoryEvent } from '../core/types';
import type { KvEntry, OrchestrationItem } from '../provider/contract';

/** Most instances remembered; the least recently committed is forgotten first. */
const MAX_ENTRIES = 10_000;

interface Entry {
  orchestrationName: string;
  orchestrationVersion: string | null;
  executionId: number;
  history: HistoryEvent[];
  kvSnapshot: Record<string, KvEntry>;
  customStatus: string | null;
  /** Store clock minus local clock when the turn was fetched, to date the next turn's events. */
  storeClockOffsetMs: number;
}

export class TurnHistoryCache {
  private readonly entries = new Map<string, Entry>();

  /**
   * Records the history `item` has after `ack` committed; an execution that ended (completed,
   * failed, continued as new) is forgotten instead.
   */
  remember(item: OrchestrationItem, ack: OrchestrationTurnAck, storeClockOffsetMs: number): void {
    this.entries.delete(item.instanceId);
    if (ack.metadata.status !== undefined || ack.executionId !== item.executionId) return;
    let customStatus = item.customStatus;
    for (const event of ack.historyDelta) if (event.kind === 'CustomStatusUpdated') customStatus = event.status;
    this.entries.set(item.instanceId, {
      orchestrationName: ack.metadata.orchestrationName,
      orchestrationVersion: ack.metadata.orchestrationVersion,
      executionId: item.executionId,
      history: [...item.history, ...ack.historyDelta],
      kvSnapshot: item.kvSnapshot,
      customStatus,
      storeClockOffsetMs,
    });
    if (this.entries.size > MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value as string);
  }

  forget(instanceId: string): void {
    this.entries.delete(instanceId);
  }

  /**
   * The batch a fetch would return if `completions` (all of one instance, in that order) were the
   * instance's only messages now, built from the remembered history (no lock token: it is not
   * locked), with the id of its last event; null when this execution's history is not remembered.
   * The entry is taken: one fused attempt per committed turn. Completions of the instance that
   * arrive while that attempt is out wait for it and go together in the next one (fan-in, see
   * the activity pool); the committing attempt (or the turn worker) remembers the next history.
   */
  turnOn(
    completions: readonly ActivityCompletionItem[],
  ): { item: OrchestrationItem; lastEventId: number; storeClockOffsetMs: number } | null {
    const [first] = completions;
    const entry = first === undefined ? undefined : this.entries.get(first.instance);
    if (entry === undefined || completions.some((c) => c.executionId !== entry.executionId)) return null;
    this.entries.delete(first.instance);
    const item: OrchestrationItem = {
      instanceId: first.instance,
      orchestrationName: entry.orchestrationName,
      orchestrationVersion: entry.orchestrationVersion,
      executionId: entry.executionId,
      history: entry.history,
      messages: [...completions],
      lockToken: '',
      attemptCount: 1,
      kvSnapshot: entry.kvSnapshot,
      customStatus: entry.customStatus,
      nowMs: Date.now() + entry.storeClockOffsetMs,
    };
    return { item, lastEventId: entry.history.at(-1)?.eventId ?? 0, storeClockOffsetMs: entry.storeClockOffsetMs };
  }
}
