/**
 * The provider conformance kit: behaviour every Durox provider must show
 * (docs/provider-contract.md). A provider suite calls {@link defineProviderConformanceTests}
 * with a factory that creates a fresh, empty store per test.
 */
import type { ProviderTestFactory } from './harness';
import { defineAtomicityTests } from './groups/atomicity';
import { defineLockingTests } from './groups/locking';
import { defineQueueTests } from './groups/queues';
import { defineStateTests } from './groups/state';
import { defineCapabilityTests } from './groups/capabilities';
import { defineDeletionTests } from './groups/deletion';
import { defineSessionTests } from './groups/sessions';
import { defineBatchingTests } from './groups/batching';
import { defineFusedStartTests } from './groups/fused-start';
import { defineFlowTests } from './groups/flow';
import { definePriorityTests } from './groups/priorities';

/** Registers the conformance suite for a provider (node:test describe/it). */
export function defineProviderConformanceTests(factory: ProviderTestFactory): void {
  defineAtomicityTests(factory);
  defineLockingTests(factory);
  defineQueueTests(factory);
  defineStateTests(factory);
  defineSessionTests(factory);
  defineDeletionTests(factory);
  defineCapabilityTests(factory);
  defineBatchingTests(factory);
  defineFusedStartTests(factory);
  defineFlowTests(factory);
  definePriorityTests(factory);
}

export { withHarness, type ProviderTestFactory, type ProviderTestHarness } from './harness';
