/**
 * A fake provider for unit tests of the runtime's pieces: it offers only the push channel
 * (`subscribeToWakeups`), whose liveness and announcements the test drives. No database.
 */
import type { Provider, WakeupEvent } from '../../src/provider/contract';

export interface FakeChannel {
  provider: Provider;
  /** Delivers an event to every subscriber. */
  emit(event: WakeupEvent): void;
}

/** A provider whose push channel is live from the first subscription. */
export function fakeLiveChannel(): FakeChannel {
  const listeners = new Set<(event: WakeupEvent) => void>();
  const provider = {
    name: 'fake',
    subscribeToWakeups(listener: (event: WakeupEvent) => void) {
      listeners.add(listener);
      return { live: true, unsubscribe: () => void listeners.delete(listener) };
    },
  } as unknown as Provider;
  return { provider, emit: (event) => listeners.forEach((listener) => listener(event)) };
}

/** A provider without a push channel: workers poll. */
export function fakePollingProvider(): Provider {
  return { name: 'fake-polling' } as unknown as Provider;
}
