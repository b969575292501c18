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

/** Longest accepted instance id or name (orchestration, activity, event, queue, key, version), in UTF-8 bytes. */
export const MAX_NAME_BYTES = 512;
/**
 * Largest accepted encoded value (input, event data, output, work item), in UTF-8 bytes of its
 * JSON text: 16 MiB. PostgreSQL accepts up to 1 GB per value, but a turn carries its whole
 * history in one fetch, so one oversized payload would slow every later turn of its instance.
 */
export const MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;
/** Longest session owner id, in UTF-8 bytes. */
export const MAX_SESSION_OWNER_BYTES = 512;

/** Most turns one store call may fetch or acknowledge (the procedures enforce the same bound). */
export const MAX_TURNS_PER_CALL = 100;
/** Most work items one store call may fetch or acknowledge (the procedures enforce the same bound). */
export const MAX_WORK_ITEMS_PER_CALL = 1000;
/** Most completions one fused turn runs on (its own and `alsoCompleted`; the store accepts no more). */
export const MAX_COMPLETIONS_PER_FUSED_TURN = 100;
/** Most rows of one page of instances (the procedure enforces the same bound). */
export const MAX_PAGE_ROWS = 1000;
/** Most root instances one bulk delete or prune touches unless its filter says otherwise (as the procedure). */
export const DEFAULT_BULK_LIMIT = 1000;

/** The first limit the turn's new events break, as a message, or null. */
export function checkTurnLimits(newEvents: NewEvent[], kv: Map<string, KvEntry>): string | null {
  let kvWritten = false;
  for (const { data } of newEvents) {
    if (data.kind === 'CustomStatusUpdated' && data.status !== null) {
      const size = utf8ByteLength(data.status);
      if (size > MAX_CUSTOM_STATUS_BYTES)
        return `Custom status size (${size} bytes) exceeds limit (${MAX_CUSTOM_STATUS_BYTES} bytes)`;
    } else if (data.kind === 'ActivityScheduled' && data.tag !== undefined) {
      const size = utf8ByteLength(data.tag);
      if (size > MAX_TAG_NAME_BYTES)
        return (
          `Activity tag size (${size} bytes) exceeds limit (${MAX_TAG_NAME_BYTES} bytes) ` +
          `for activity '${data.name}'`
        );
    } else if (data.kind === 'KeyValueSet') {
      kvWritten = true;
      const size = utf8ByteLength(data.value);
      if (size > MAX_KV_VALUE_BYTES)
        return `KV value size for key '${data.key}' (${size} bytes) exceeds limit (${MAX_KV_VALUE_BYTES} bytes)`;
    }
  }
  if (kvWritten && kv.size > MAX_KV_KEYS) return `KV key count (${kv.size}) exceeds limit (${MAX_KV_KEYS} keys)`;
  return null;
}
