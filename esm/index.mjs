// ESM entry point: re-exports the CommonJS build's named exports so that
// `import { Runtime, Client, PostgresProvider } from 'durox'` works.
import durox from '../dist/src/index.js';

export const {
  Runtime,
  Client,
  PostgresProvider,
  SqliteProvider,
  PGliteProvider,
  OrchestrationContext,
  ActivityContext,
  initTracing,
  safetyFetchHits,
  MAX_WORKER_TAGS,
  MAX_TAG_NAME_BYTES,
  MAX_KV_KEYS,
  MAX_KV_VALUE_BYTES,
  MAX_NAME_BYTES,
  MAX_PAYLOAD_BYTES,
  ClientError,
  InvalidArgumentError,
  NotFoundError,
  TimeoutError,
  OrchestrationFailedError,
  UnsupportedError,
  ProviderError,
  isRetryable,
} = durox;

export default durox;
