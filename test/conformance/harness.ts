/** The factory and harness a provider suite hands to the conformance kit. */
import type { Provider } from '../../src/provider/contract';

/** One fresh store plus the hooks the tests need. */
export interface ProviderTestHarness {
  provider: Provider;
  /** Another provider (own connections) on the same store, for concurrency tests. */
  openPeer: () => Promise<Provider>;
  /** Moves the store's clock forward by `ms` (cumulative), e.g. to expire locks. */
  advanceClock: (ms: number) => Promise<void>;
  /** Makes the stored history of the instance's current execution undecodable. */
  corruptHistory: (instanceId: string) => Promise<void>;
  /** Closes every provider opened by the harness and removes the store. */
  close: () => Promise<void>;
}

export interface ProviderTestFactory {
  /** Suite label, e.g. `postgres 15`. */
  name: string;
  create(): Promise<ProviderTestHarness>;
}

/** Runs `body` on a fresh harness and always closes it. */
export async function withHarness(
  factory: ProviderTestFactory,
  body: (harness: ProviderTestHarness) => Promise<void>,
): Promise<void> {
  const harness = await factory.create();
  try {
    await body(harness);
  } finally {
    await harness.close();
  }
}
