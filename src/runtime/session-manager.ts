/**
 * Worker sessions of one runtime (docs/runtime.md, "Sessions").
 *
 * - Owner identity: `workerNodeId` when set (shared by every slot, so a restarted node keeps its
 *   sessions), otherwise one identity per slot, `work-<idx>-<runtimeId>`.
 * - Capacity: a runtime works on at most `maxSessionsPerRuntime` distinct sessions at once (those
 *   with an activity running here, plus fetches that could claim one). Below that its slots fetch
 *   with a session config (session items become eligible); at capacity they fetch only items
 *   without a session, so further sessions go to other runtimes.
 * - A background task renews the locks of sessions that are not idle and sweeps orphaned session
 *   rows. A session unpins once it has been idle for `sessionIdleTimeoutMs`: its lock is no longer
 *   renewed and lapses at most one session lock later. The session lock is 30 s, shortened to the
 *   idle timeout when that is smaller, so a short idle timeout also unpins quickly.
 */
import type { Provider, SessionFetchConfig } from '../provider/contract';
import type { FaultLog } from './fault-log';
import { renewalIntervalMs } from './lock-renewal';

/** Session lease length of duroxide (not configurable from JS). */
export const SESSION_LOCK_TIMEOUT_MS = 30_000;
/** Renewal buffer of session locks (section 1.10). */
export const SESSION_RENEWAL_BUFFER_MS = 5_000;
/** How often expired sessions without work items are removed. */
export const SESSION_CLEANUP_INTERVAL_MS = 5 * 60_000;

export interface SessionManagerOptions {
  maxSessionsPerRuntime: number;
  sessionIdleTimeoutMs: number;
  workerNodeId: string | null;
  runtimeId: string;
}

export class SessionManager {
  /** Session id -> number of its activities running on this runtime. */
  private readonly running = new Map<string, number>();
  /** Local time (ms) this runtime last started or finished a session activity. */
  private lastSessionWork: number | null = null;
  /** Session-capable fetches in flight: each may claim one more session. */
  private pendingFetches = 0;
  private readonly lockTimeoutMs: number;
  private renewTimer: NodeJS.Timeout | null = null;
  private cleanupTimer: NodeJS.Timeout | null = null;
  private ownerIds: string[] = [];

  constructor(
    private readonly provider: Provider,
    private readonly options: SessionManagerOptions,
    private readonly faults: FaultLog,
  ) {
    this.lockTimeoutMs = Math.min(SESSION_LOCK_TIMEOUT_MS, options.sessionIdleTimeoutMs);
  }

  /** The session owner identity of worker slot `slot`. */
  ownerFor(slot: number): string {
    return this.options.workerNodeId ?? `work-${slot}-${this.options.runtimeId}`;
  }

  /**
   * Session side of the next fetch of `slot`, reserved until `release` is called (right after the
   * fetch). At capacity the fetch serves only sessions the slot's identity already owns.
   */
  reserveFetch(slot: number): { config: SessionFetchConfig; release: () => void } {
    if (this.running.size + this.pendingFetches >= this.options.maxSessionsPerRuntime) {
      return {
        config: { ownerId: this.ownerFor(slot), lockTimeoutMs: this.lockTimeoutMs, claimNewSessions: false },
        release: () => undefined,
      };
    }
    this.pendingFetches += 1;
    let released = false;
    return {
      config: { ownerId: this.ownerFor(slot), lockTimeoutMs: this.lockTimeoutMs },
      release: () => {
        if (!released) this.pendingFetches -= 1;
        released = true;
      },
    };
  }

  /** Counts an activity of `sessionId` running here; call the returned function when it ends. */
  begin(sessionId: string | null): () => void {
    if (sessionId === null) return () => undefined;
    this.running.set(sessionId, (this.running.get(sessionId) ?? 0) + 1);
    this.lastSessionWork = Date.now();
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.lastSessionWork = Date.now();
      const left = (this.running.get(sessionId) ?? 1) - 1;
      if (left <= 0) this.running.delete(sessionId);
      else this.running.set(sessionId, left);
    };
  }

  /**
   * True while this runtime worked on a session within the idle timeout. The next item of a
   * session can only be fetched by its owner identity, and a push wake-up may be consumed by a
   * worker that cannot take it, so slots keep polling while sessions are in use here.
   */
  get holdsSessions(): boolean {
    return this.lastSessionWork !== null && Date.now() - this.lastSessionWork < this.options.sessionIdleTimeoutMs;
  }

  /** Distinct sessions with an activity running on this runtime. */
  get activeCount(): number {
    return this.running.size;
  }

  /** Starts renewal and cleanup for the owner identities of `slots` worker slots. */
  start(slots: number): void {
    if (slots === 0) return;
    this.ownerIds =
      this.options.workerNodeId !== null
        ? [this.options.workerNodeId]
        : Array.from({ length: slots }, (_, slot) => this.ownerFor(slot));
    const renewEvery = renewalIntervalMs(this.lockTimeoutMs, SESSION_RENEWAL_BUFFER_MS);
    // renew() and cleanup() report their failures to the fault log and never reject; a slow call
    // must not hold up the worker slots that start() is called for.
    this.renewTimer = setInterval(() => void this.renew(), renewEvery);
    this.renewTimer.unref();
    this.cleanupTimer = setInterval(() => void this.cleanup(), SESSION_CLEANUP_INTERVAL_MS);
    this.cleanupTimer.unref();
    void this.cleanup();
  }

  stop(): void {
    if (this.renewTimer !== null) clearInterval(this.renewTimer);
    if (this.cleanupTimer !== null) clearInterval(this.cleanupTimer);
    this.renewTimer = null;
    this.cleanupTimer = null;
  }

  private async renew(): Promise<void> {
    try {
      await this.provider.renewSessionLocks(this.ownerIds, this.lockTimeoutMs, this.options.sessionIdleTimeoutMs);
      this.faults.recovered('renew_session_locks');
    } catch (error) {
      this.faults.failed('renew_session_locks', error);
    }
  }

  private async cleanup(): Promise<void> {
    try {
      await this.provider.cleanupOrphanedSessions();
      this.faults.recovered('cleanup_orphaned_sessions');
    } catch (error) {
      this.faults.failed('cleanup_orphaned_sessions', error);
    }
  }
}
