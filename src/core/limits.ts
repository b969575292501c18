/**
 * Per-turn limits (docs/replay.md, "Failures and limits"). A violation fails the orchestration with an
 * application error and discards the work the turn would have queued.
 */
import { utf8ByteLength } from './codec';
import type { NewEvent } from './replay-engine';
import type { KvEntry } from './turn-types';

export const MAX_CUSTOM_STATUS_BYTES = 262_144;
export const MAX_TAG_NAME_BYTES = 256;
export const MAX_KV_VALUE_BYTES = 65_536;
export const MAX_KV_KEYS = 150;
export const MAX_WORKER_TAGS = 5;
export const MAX_CARRY_FORWARD_MESSAGES = 20;

/** The first limit the turn's new events break, as a message, or null. */
export function checkTurnLimits(newEvents: NewEvent[], kv: Map<string, KvEntry>): string | null {
  let kvWritten = false;
  for (const { data } of newEvents) {
    if (data.kind === 'CustomStatusUpdated' && data.status !== null) {
      const size = utf8ByteLength(data.status);
      if (size > MAX_CUSTOM_STATUS_BYTES) return `Custom status size (${size} bytes) exceeds limit (${MAX_CUSTOM_STATUS_BYTES} bytes)`;
    } else if (data.kind === 'ActivityScheduled' && data.tag !== undefined) {
      const size = utf8ByteLength(data.tag);
      if (size > MAX_TAG_NAME_BYTES) return (`Activity tag size (${size} bytes) exceeds limit (${MAX_TAG_NAME_BYTES} bytes) ` + `for activity '${data.name}'`);
    } else if (data.kind === 'KeyValueSet') {
      kvWritten = true;
      const size = utf8ByteLength(data.value);
      if (size > MAX_KV_VALUE_BYTES) return `KV value size for key '${data.key}' (${size} bytes) exceeds limit (${MAX_KV_VALUE_BYTES} bytes)`;
    }
  }
  if (kvWritten && kv.size > MAX_KV_KEYS) return `KV key count (${kv.size}) exceeds limit (${MAX_KV_KEYS} keys)`;
  return null;
}
