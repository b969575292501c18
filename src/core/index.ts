/** The pure orchestration core: public context, descriptors, value codec and the turn engine. */
export { OrchestrationContext } from './orchestration-context';
export type { OrchestrationContextHost, OrchestrationContextInfo, TaskStarter } from './orchestration-context';
export type { AsyncOrchestrationContext, Durable, DurableActivity } from './async-context';
export type {
  ActivityTask,
  ActivityWithRetryTask,
  JoinResult,
  RaceResult,
  RetryPolicy,
  ScheduledTask,
  ScheduledTaskType,
} from './descriptors';
export { isScheduledTask } from './descriptors';
export { turnEngine } from './turn';
export {
  SYSTEM_ACTIVITY_PREFIX,
  SYSCALL_GET_KV_VALUE,
  SYSCALL_NEW_GUID,
  SYSCALL_UTC_NOW_MS,
  isSystemActivityName,
} from './system-activities';
export type { KvLookupInput } from './system-activities';
export {
  decodeActivityInput,
  decodeOrchestrationInput,
  decodeResult,
  decodeTypedValue,
  encodeValue,
  utf8ByteLength,
} from './codec';
export {
  MAX_CARRY_FORWARD_MESSAGES,
  MAX_CUSTOM_STATUS_BYTES,
  MAX_KV_KEYS,
  MAX_KV_VALUE_BYTES,
  MAX_TAG_NAME_BYTES,
  MAX_WORKER_TAGS,
} from './limits';
export {
  applicationError,
  cancelledError,
  displayMessage,
  externallyTaggedError,
  nondeterminismError,
} from './error-details';
export * from './types';
export type * from './turn-types';
export type * from './turn-api';
