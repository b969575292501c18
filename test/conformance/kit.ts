/**
 * The provider conformance kit: behaviour every Durox provider must show (postgres-provider.md
 * section 4, with the fixes of section 6). A provider suite calls
 * {@link defineProviderConformanceTests} with a factory that creates a fresh, empty store per test.
 */
import type { Provider } from '../../src/provider/contract';
import { defineAtomicityTests } from './groups/atomicity';
import { defineLockingTests } from './groups/locking';
import { defineQueueTests } from './groups/queues';
import { defineStateTests } from './groups/state';

/** One fresh store plus the hooks the tests need. */
export interface ProviderTestHarness {
  provider: Provider;
  /** Another provider (own connections) on the same store, for concurrency tests. */
  openPeer(): Promise<Provider>;
  /** Moves the store's clock forward by `ms` (cumulative), e.g. to expire locks. */
  advanceClock(ms: number): Promise<void>;
  /** Makes the stored history of the instance's current execution undecodable. */
  corruptHistory(instanceId: string): Promise<void>;
  /** Closes every provider opened by the harness and removes the store. */
  close(): Promise<void>;
}

export interface ProviderTestFactory {
  /** Suite label, e.g. `postgres 15`. */
  name: string;
  create(): Promise<ProviderTestHarness>;
}

/** Registers the conformance suite for a provider (node:test describe/it). */
export function defineProviderConformanceTests(factory: ProviderTestFactory): void {
  defineAtomicityTests(factory);
  defineLockingTests(factory);
  defineQueueTests(factory);
  defineStateTests(factory);
}

/** Runs `body` on a fresh harness and always closes it. */
export async function withHarness(factory: ProviderTestFactory, body: (harness: ProviderTestHarness) => Promise<void>): Promise<void> {
  const harness = await factory.create();
  try {
    await body(harness);
  } finally {
    await harness.close();
  }
}
