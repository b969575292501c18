/**
 * Implementations of the built-in activities behind `ctx.utcNow()`, `ctx.newGuid()` and
 * `ctx.getValueFromInstance()` (docs/runtime.md, "System activities"), and of the two that schedules
 * use to apply their overlap policy (read a run's status, cancel it). They return the raw result
 * payload the engine expects (see src/core/system-activities.ts for each format).
 */
import {
  SYSCALL_CANCEL_INSTANCE,
  SYSCALL_GET_KV_VALUE,
  SYSCALL_INSTANCE_STATUS,
  SYSCALL_NEW_GUID,
  SYSCALL_UTC_NOW_MS,
  type CancelInstanceInput,
  type KvLookupInput,
} from '../core/system-activities';
import type { Provider } from '../provider/contract';
import { notifyLocal } from '../provider/local-wakeups';

/** A system activity: raw input payload in, raw result payload out. */
export type SystemActivity = (provider: Provider, input: string) => Promise<string>;

let guidCounter = 0;

/**
 * A 36-character lowercase 8-4-4-4-12 hex id derived, like duroxide's, from a nanosecond
 * timestamp and a process counter, with random bits so that separate processes do not collide.
 */
export function newGuid(): string {
  guidCounter = (guidCounter + 1) % 0x1_0000;
  const nanos = process.hrtime.bigint() + BigInt(Date.now()) * 1_000_000n;
  const time = nanos.toString(16).padStart(16, '0').slice(-16);
  const counter = guidCounter.toString(16).padStart(4, '0');
  const random = Array.from({ length: 12 }, () => Math.floor(Math.random() * 16).toString(16)).join('');
  const hex = `${time}${counter}${random}`;
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

function parseLookup(input: string): KvLookupInput {
  const parsed = JSON.parse(input) as Partial<KvLookupInput> | null;
  if (parsed === null || typeof parsed.instanceId !== 'string' || typeof parsed.key !== 'string') {
    throw new Error(`getValueFromInstance: malformed lookup ${input}`);
  }
  return { instanceId: parsed.instanceId, key: parsed.key };
}

function parseInstanceId(input: string): string {
  const parsed = JSON.parse(input) as unknown;
  if (typeof parsed !== 'string' || parsed === '') throw new Error(`malformed instance id ${input}`);
  return parsed;
}

function parseCancel(input: string): CancelInstanceInput {
  const parsed = JSON.parse(input) as Partial<CancelInstanceInput> | null;
  if (parsed === null || typeof parsed.instanceId !== 'string' || typeof parsed.reason !== 'string') {
    throw new Error(`malformed cancellation ${input}`);
  }
  return { instanceId: parsed.instanceId, reason: parsed.reason };
}

/** The system activities by reserved name. */
export const SYSTEM_ACTIVITIES: ReadonlyMap<string, SystemActivity> = new Map<string, SystemActivity>([
  [SYSCALL_NEW_GUID, async () => newGuid()],
  [SYSCALL_UTC_NOW_MS, async () => String(Date.now())],
  [
    SYSCALL_GET_KV_VALUE,
    async (provider, input) => {
      const { instanceId, key } = parseLookup(input);
      return JSON.stringify(await provider.getKvValue(instanceId, key));
    },
  ],
  [
    SYSCALL_INSTANCE_STATUS,
    async (provider, input) => JSON.stringify((await provider.getInstanceStatus(parseInstanceId(input))).status),
  ],
  [
    SYSCALL_CANCEL_INSTANCE,
    async (provider, input) => {
      const { instanceId, reason } = parseCancel(input);
      await provider.enqueueOrchestratorWork({ type: 'CancelInstance', instance: instanceId, reason });
      notifyLocal(provider, 'orchestrator');
      return 'null';
    },
  ],
]);
