/** Builders and assertions shared by the conformance groups. */
import assert from 'node:assert/strict';
import type { OrchestrationTurnAck } from '../../src/core/turn-types';
import { started, startItem, turn } from '../helpers/work-items';

export { activity, event, started, startItem, turn } from '../helpers/work-items';
import type { OrchestrationItem, Provider } from '../../src/provider/contract';
import { ProviderError, type ProviderErrorCode } from '../../src/provider/errors';

/** Lock timeout used by the tests; expiry is simulated with the clock hook, never slept. */
export const LOCK_MS = 30_000;

/** Fetches and asserts there is an item (optionally for `instanceId`). */
export async function fetchItem(provider: Provider, instanceId?: string): Promise<OrchestrationItem> {
  const item = await provider.fetchOrchestrationItem({ lockTimeoutMs: LOCK_MS });
  assert.ok(item, 'expected an orchestration item');
  if (instanceId !== undefined) assert.equal(item.instanceId, instanceId);
  return item;
}

/** Creates `instanceId`: start message, fetch, ack of OrchestrationStarted (event 1). */
export async function seedInstance(
  provider: Provider,
  instanceId: string,
  extra: Partial<OrchestrationTurnAck> = {},
): Promise<void> {
  await provider.enqueueOrchestratorWork(startItem(instanceId));
  const item = await fetchItem(provider, instanceId);
  await provider.ackOrchestrationItem(
    item.lockToken,
    turn(instanceId, { historyDelta: [started(instanceId)], ...extra }),
  );
}

/** Asserts that `promise` rejects with a ProviderError of `code`; returns it. */
export async function rejectsWith(
  promise: Promise<unknown>,
  code: ProviderErrorCode,
  operation?: string,
): Promise<ProviderError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ProviderError, `expected ProviderError, got ${String(error)}`);
    assert.equal(error.code, code, `expected code ${code}, got ${error.code}: ${error.message}`);
    if (operation !== undefined) assert.equal(error.operation, operation);
    return error;
  }
  assert.fail(`expected a ${code} rejection`);
}
