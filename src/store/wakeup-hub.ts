/**
 * Push wake-ups of one provider: a single LISTEN connection (opened through the executor's
 * optional `subscribe`) shared by every subscriber in the process, decoded into
 * {@link WakeupEvent}s. Payloads are written by src/store/sql/procedures/notifications.sql.
 */
import type { WakeupEvent, WakeupSubscription } from '../provider/contract';
import { DueTimes } from '../provider/due-times';
import type { NotificationEvent, Row, SqlExecutor } from './sql-executor';

type Listener = (event: WakeupEvent) => void;

/** How long the connection stays open after the last subscriber left (a new wait reuses it). */
const LINGER_MS = 5000;

function count(value: unknown): number {
  const n = Number(value ?? 0);
  return Number.isFinite(n) && n > 0 ? n : 0;
}

function delay(value: unknown): number | null {
  if (value === null || value === undefined || value === '') return null;
  const n = Number(value);
  return Number.isFinite(n) ? Math.max(0, n) : null;
}

function delays(value: unknown): number[] {
  if (!Array.isArray(value)) return [];
  return value.map(delay).filter((d): d is number => d !== null);
}

/** Decodes one payload of our channel; unknown payloads yield null (ignored). */
export function decodeWakeupPayload(payload: string): WakeupEvent | null {
  if (payload.startsWith('s:')) return { kind: 'status', instanceId: payload.slice(2) };
  const match = /^([ow]):(\d+):(\d*)(?::\d+)?$/.exec(payload);
  if (match === null) return null;
  return {
    kind: 'queue',
    queue: match[1] === 'o' ? 'orchestrator' : 'worker',
    ready: count(match[2]),
    dueInMs: delay(match[3]),
  };
}

function liveEvent(rows: Row[]): WakeupEvent & { kind: 'live' } {
  const raw = rows[0]?.result;
  const state = (typeof raw === 'string' ? JSON.parse(raw) : (raw ?? {})) as Record<string, unknown>;
  return {
    kind: 'live',
    orchestratorReady: count(state.orchestratorReady),
    orchestratorDueInMs: delays(state.orchestratorDueInMs),
    workerReady: count(state.workerReady),
    workerDueInMs: delays(state.workerDueInMs),
  };
}

export class WakeupHub {
  private readonly listeners = new Set<Listener>();
  private stop: (() => Promise<void>) | null = null;
  private linger: NodeJS.Timeout | undefined;
  private channel: string | null = null;
  private closed = false;
  /** True while the LISTEN connection is up. */
  live = false;
  /** Delayed items announced on this connection, replayed to subscribers that join while live. */
  private readonly dueTimes = { orchestrator: new DueTimes(), worker: new DueTimes() };
  /**
   * Notifications heard before the connection's `connected` event. The server delivers a
   * notification as soon as the LISTEN has committed, and a client may read it in the same chunk
   * as the set-up's result, so it is emitted before the awaited result is: it comes from a commit
   * after the set-up's snapshot (else the set-up counted it), and dropping it loses that wake-up.
   * Delivered right after `connected`, once the channel is known.
   */
  private early: NotificationEvent[] = [];

  /** @param setupText the `listen_for_wakeups()` procedure call of the provider's schema. */
  constructor(
    private readonly executor: SqlExecutor,
    private readonly setupText: string,
  ) {}

  subscribe(listener: Listener): WakeupSubscription {
    if (this.closed || this.executor.subscribe === undefined) return { live: false, unsubscribe: () => undefined };
    this.listeners.add(listener);
    clearTimeout(this.linger);
    if (this.stop === null) this.stop = this.executor.subscribe(this.setupText, (event) => this.onEvent(event));
    // Joining a connection that is live already: no `connected` comes for this subscriber, so
    // tell it now what the connection knows is waiting (it drains what is visible itself).
    else if (this.live) queueMicrotask(() => this.replayTo(listener));
    const isLive = (): boolean => this.live && this.listeners.has(listener);
    return {
      get live() {
        return isLive();
      },
      unsubscribe: () => {
        if (!this.listeners.delete(listener) || this.listeners.size > 0) return;
        clearTimeout(this.linger);
        // Nobody waits for the listening connection to close; both executors' unsubscribe functions
        // swallow close errors, so disconnect() never rejects.
        this.linger = setTimeout(() => void this.disconnect(), LINGER_MS);
        this.linger.unref();
      },
    };
  }

  /** Closes the connection for good. */
  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    clearTimeout(this.linger);
    await this.disconnect();
  }

  private async disconnect(): Promise<void> {
    if (this.listeners.size > 0) return;
    const stop = this.stop;
    this.stop = null;
    this.live = false;
    if (stop !== null) await stop();
  }

  private replayTo(listener: Listener): void {
    if (!this.live || !this.listeners.has(listener)) return;
    listener({
      kind: 'live',
      orchestratorReady: 0,
      orchestratorDueInMs: this.dueTimes.orchestrator.pending(),
      workerReady: 0,
      workerDueInMs: this.dueTimes.worker.pending(),
    });
  }

  private onEvent(event: NotificationEvent): void {
    let decoded: WakeupEvent | null;
    if (event.type === 'connected') {
      const live = liveEvent(event.rows);
      const raw = event.rows[0]?.result;
      const state = (typeof raw === 'string' ? JSON.parse(raw) : (raw ?? {})) as Record<string, unknown>;
      this.channel = typeof state.channel === 'string' ? state.channel : null;
      this.live = true;
      for (const queue of ['orchestrator', 'worker'] as const) {
        this.dueTimes[queue].clear();
        for (const dueInMs of queue === 'orchestrator' ? live.orchestratorDueInMs : live.workerDueInMs)
          this.dueTimes[queue].add(dueInMs);
      }
      decoded = live;
    } else if (event.type === 'disconnected') {
      this.early = [];
      if (!this.live && this.channel !== null) return;
      this.live = false;
      decoded = { kind: 'lost', error: event.error };
    } else {
      if (!this.live) {
        this.early.push(event);
        return;
      }
      if (event.channel !== this.channel) return;
      decoded = decodeWakeupPayload(event.payload);
      if (decoded?.kind === 'queue' && decoded.dueInMs !== null) this.dueTimes[decoded.queue].add(decoded.dueInMs);
    }
    if (decoded === null) return;
    for (const listener of [...this.listeners]) listener(decoded);
    if (event.type === 'connected') for (const heard of this.early.splice(0)) this.onEvent(heard);
  }
}
