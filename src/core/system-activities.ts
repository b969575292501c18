/**
 * Names of the built-in activities behind `ctx.utcNow()`, `ctx.newGuid()` and
 * `ctx.getValueFromInstance()`. The runtime registers their implementations; user activity names
 * with this prefix are rejected.
 */

export const SYSTEM_ACTIVITY_PREFIX = '__duroxide_syscall:';

/** Returns the current epoch milliseconds as a decimal string, e.g. `"1700000000000"`. */
export const SYSCALL_UTC_NOW_MS = '__duroxide_syscall:utc_now_ms';

/** Returns a 36-character lowercase 8-4-4-4-12 hex id as a raw (not JSON) string. */
export const SYSCALL_NEW_GUID = '__duroxide_syscall:new_guid';

/**
 * Input: JSON `{"instanceId": string, "key": string}`. Returns the JSON encoding of the other
 * instance's current value or null, i.e. `JSON.stringify(valueOrNull)`.
 */
export const SYSCALL_GET_KV_VALUE = '__duroxide_syscall:get_kv_value';

/** Input payload of {@link SYSCALL_GET_KV_VALUE}. */
export interface KvLookupInput {
  instanceId: string;
  key: string;
}

/** Whether an activity name is reserved for system activities. */
export function isSystemActivityName(name: string): boolean {
  return name.startsWith(SYSTEM_ACTIVITY_PREFIX);
}

/**
 * Input: JSON string, an instance id. Returns the JSON string of that instance's status:
 * `"NotFound"`, `"Running"`, `"Completed"` or `"Failed"` (used by schedules' overlap policies).
 */
export const SYSCALL_INSTANCE_STATUS = '__duroxide_syscall:durox_instance_status';

/** Input: JSON `{"instanceId": string, "reason": string}`. Requests its cancellation; returns `null`. */
export const SYSCALL_CANCEL_INSTANCE = '__duroxide_syscall:durox_cancel_instance';

/** Input payload of {@link SYSCALL_CANCEL_INSTANCE}. */
export interface CancelInstanceInput {
  instanceId: string;
  reason: string;
}
