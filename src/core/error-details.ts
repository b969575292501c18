import type { ErrorDetails, PoisonMessageType } from './types';

/**
 * The one-line text of an error, as seen by a parent orchestration, in `status.error` and in
 * `InstanceInfo.output` (docs/replay.md, "Failures and limits").
 */
export function displayMessage(details: ErrorDetails): string {
  switch (details.category) {
    case 'application':
      if (details.kind === 'Cancelled') return `canceled: ${details.reason ?? ''}`;
      if (details.kind === 'Panicked') return `orchestration panicked: ${details.message}`;
      return details.message;
    case 'configuration':
      return `nondeterministic: ${details.message ?? details.resource}`;
    case 'infrastructure':
      return `infrastructure:${details.operation}: ${details.message}`;
    case 'poison':
      return (
        `poison: ${describePoisonSource(details.messageType)} exceeded ` +
        `${details.attemptCount} attempts (max ${details.maxAttempts})`
      );
  }
}

function describePoisonSource(source: PoisonMessageType): string {
  switch (source.kind) {
    case 'Orchestration':
    case 'FailedDeserialization':
      return `orchestration ${source.instance}`;
    case 'Activity':
      return `activity ${source.activityName}#${source.activityId}`;
  }
}

/** An application error raised by user code (activity throw, orchestration throw). */
export function applicationError(
  kind: 'ActivityFailed' | 'OrchestrationFailed' | 'Panicked',
  message: string,
): ErrorDetails {
  return { category: 'application', kind, message, retryable: false };
}

/** The failure recorded when an orchestration is cancelled. */
export function cancelledError(reason: string): ErrorDetails {
  return { category: 'application', kind: 'Cancelled', message: '', reason, retryable: false };
}

/** A nondeterminism failure: the code no longer matches its recorded history. */
export function nondeterminismError(message: string): ErrorDetails {
  return { category: 'configuration', kind: 'Nondeterminism', resource: '', message };
}

/**
 * The externally tagged JSON form of error details that the `duroxide` package shows in
 * `JsEvent.data`, e.g. `{"Application":{"kind":"ActivityFailed","message":"…","retryable":false}}`.
 */
export function externallyTaggedError(details: ErrorDetails): Record<string, unknown> {
  switch (details.category) {
    case 'application':
      return {
        Application: {
          kind: details.kind === 'Cancelled' ? { Cancelled: { reason: details.reason ?? '' } } : details.kind,
          message: details.message,
          retryable: details.retryable,
        },
      };
    case 'configuration':
      return { Configuration: { kind: details.kind, resource: details.resource, message: details.message } };
    case 'infrastructure':
      return {
        Infrastructure: { operation: details.operation, message: details.message, retryable: details.retryable },
      };
    case 'poison': {
      const { kind, ...fields } = details.messageType;
      return {
        Poison: {
          attempt_count: details.attemptCount,
          max_attempts: details.maxAttempts,
          message_type: { [kind]: fields },
          message: details.message,
        },
      };
    }
  }
}
