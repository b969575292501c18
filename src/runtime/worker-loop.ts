/**
 * The loop every worker of a pool runs, shared by the orchestration dispatcher's turn workers and
 * the activity worker's slots: fetch, back off after a failed fetch, and between items either
 * sleep on the pool's queue gate (push wake-ups live) or poll (channel down, or the pool asked
 * to poll). The wake-up rules it follows are written in queue-gate.ts.
 */
import type { WakeSignal } from '../provider/local-wakeups';
import type { PushWakeups } from '../provider/push-wakeups';
import type { HandOffInbox } from './handoff-inbox';
import type { QueueGate, WakeReason } from './queue-gate';
import { exponentialBackoffMs, sleep } from './timing';

/** What one pool plugs into the loop. */
export interface WorkerLoop<T> {
  signal: AbortSignal;
  push: PushWakeups;
  gate: QueueGate<T>;
  /** Items handed over while every worker was busy wait here (eager dispatch). */
  inbox: HandOffInbox<T>;
  /** The in-process signal of the queue, slept on while polling. */
  localWake: WakeSignal;
  pollIntervalMs: number;
  fetchBackoffBaseMs: number;
  fetchBackoffMaxMs: number;
  /** False while the pool must poll even though push wake-ups are live. */
  maySleepOnGate(): boolean;
  /** One fetch; `reason` says why (`safety` fetches count what they find). */
  fetch(reason: WakeReason): Promise<T | null>;
  fetchSucceeded(): void;
  fetchFailed(error: unknown): void;
  /** An item this worker got (fetched or handed over); called before it runs. */
  received(item: T, reason: WakeReason | 'handedOff'): void;
  /** Runs an item this worker fetched. */
  run(item: T): Promise<void>;
  /**
   * Runs an item another pool handed over (eager dispatch); `waitedMs` is how long it waited in
   * the inbox for a worker, its lock running meanwhile (0 when an idle worker took it at once).
   */
  runHandedOff(item: T, waitedMs: number): Promise<void>;
  /** Gives back an item fetched while the pool was stopping. */
  giveBack(item: T): Promise<void>;
}

/**
 * Runs one worker until `loop.signal` aborts. Reasons: 'drain' fetches until empty; 'once' is
 * one fetch for one announced item; 'safety' drains after the safety timer, counting what its
 * first fetch finds; 'idle' sleeps.
 */
export async function runWorkerLoop<T>(loop: WorkerLoop<T>): Promise<void> {
  const { signal, push, gate } = loop;
  let reason: WakeReason | 'idle' = 'drain';
  let failures = 0;
  while (!signal.aborted) {
    const waiting = loop.inbox.takeHandedOff();
    if (waiting !== undefined) {
      loop.received(waiting.item, 'handedOff');
      await loop.runHandedOff(waiting.item, waiting.waitedMs);
      continue;
    }
    if (reason === 'idle' && push.live && loop.maySleepOnGate()) {
      const wake = await gate.wait(signal);
      if (typeof wake === 'string') {
        reason = wake;
        continue;
      }
      loop.received(wake.handedOff, 'handedOff');
      await loop.runHandedOff(wake.handedOff, 0);
      reason = gate.take() ?? 'idle';
      continue;
    }
    const generation = loop.localWake.generation;
    const mark = gate.mark;
    const fetchReason: WakeReason = reason === 'idle' ? 'once' : reason;
    let item: T | null;
    try {
      item = await loop.fetch(fetchReason);
      loop.fetchSucceeded();
      // The store answers again after failing. While it failed, announcements kept arriving (in a
      // failover the push channel is often back before the pool is) and were spent on fetches
      // that answered nothing: drain, so whatever they announced is taken now, not by the
      // safety fetch.
      if (failures > 0 && reason !== 'safety') reason = 'drain';
      failures = 0;
    } catch (error) {
      loop.fetchFailed(error);
      await sleep(exponentialBackoffMs(failures++, loop.fetchBackoffBaseMs, loop.fetchBackoffMaxMs), signal);
      continue;
    }
    if (item === null) {
      if (push.live && loop.maySleepOnGate()) {
        // Work announced while this fetch ran woke other workers, and their fetches may have
        // taken the item this one was woken for (a scan skips rows another fetch has locked):
        // then the item they were woken for is nobody's. Look again.
        const announcedMeanwhile = gate.mark !== mark;
        gate.fetchedNothing(mark);
        reason = announcedMeanwhile ? 'once' : (gate.take() ?? 'idle');
      } else {
        await loop.localWake.wait(loop.pollIntervalMs, generation, signal);
        reason = 'drain';
      }
      continue;
    }
    loop.received(item, fetchReason);
    // What a safety fetch finds was not announced: keep draining, there may be more.
    if (reason === 'safety') reason = 'drain';
    if (signal.aborted) {
      await loop.giveBack(item);
      return;
    }
    await loop.run(item);
    if (reason !== 'drain') reason = gate.take() ?? 'idle';
  }
}
