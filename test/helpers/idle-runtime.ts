/**
 * Positive signal that a runtime is idle: every turn worker and activity slot sleeps on its queue's
 * wake-up gate, and no wake-up but the safety fetch is armed. Tests that measure an idle runtime
 * wait for this first, so a quiet window cannot pass only because the work had not started yet.
 */
import assert from 'node:assert/strict';
import type { Provider } from '../../src/provider/contract';
import { pushWakeups } from '../../src/provider/push-wakeups';
import { QueueGate } from '../../src/runtime/queue-gate';
import { sleep } from './sleep';

/** The wake-up gates of the runtimes on `provider`. */
function gatesOf(provider: Provider): Array<QueueGate<unknown>> {
  const push = pushWakeups(provider);
  return [...push.listeners('orchestrator'), ...push.listeners('worker')].filter(
    (listener): listener is QueueGate<unknown> => listener instanceof QueueGate,
  );
}

/** How many workers sleep on the gates and which wake-ups the gates have armed. */
export function gateState(provider: Provider): { idleWorkers: number; dueArmed: number; safetyArmed: number } {
  const gates = gatesOf(provider);
  return {
    idleWorkers: gates.reduce((sum, gate) => sum + gate.idleWorkers, 0),
    dueArmed: gates.filter((gate) => gate.armedTimers.due).length,
    safetyArmed: gates.filter((gate) => gate.armedTimers.safety).length,
  };
}

/**
 * Resolves once `workers` workers (turn workers plus activity slots) sleep on the gates of
 * `provider` with no due-item wake-up armed; fails after `timeoutMs`.
 */
export async function untilIdle(provider: Provider, workers: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = gateState(provider);
    if (state.idleWorkers === workers && state.dueArmed === 0) return;
    if (Date.now() > deadline) assert.fail(`the runtime did not become idle: ${JSON.stringify(state)}`);
    await sleep(10);
  }
}
