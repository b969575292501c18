/**
 * Decodes the json values returned by the procedures. Drivers hand json columns over parsed
 * (`pg`, PGlite) or as text; both are accepted. Shapes are checked, because a wrong shape means a
 * corrupted store or a schema from another build, which must surface as an error, not as data.
 */
import type { HistoryEvent, OrchestratorWorkItem } from '../core/types';
import { ProviderError } from '../provider/errors';
import type { Row } from './sql-executor';

/** The `result` column of a single-row procedure call, parsed. */
export function resultValue(rows: Row[]): unknown {
  const value = rows[0]?.result;
  return typeof value === 'string' ? JSON.parse(value) : (value ?? null);
}

/** A plain object result (or null). */
export function asRecord(value: unknown): Record<string, unknown> | null {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : null;
}

/** Why `value` is not a history event, or undefined when it looks like one. */
export function historyEventProblem(value: unknown, index: number): string | undefined {
  const event = asRecord(value);
  if (event === null) return `event #${index + 1} is not an object`;
  if (typeof event.eventId !== 'number' || !Number.isSafeInteger(event.eventId))
    return `event #${index + 1} has no numeric eventId`;
  if (typeof event.kind !== 'string') return `event ${String(event.eventId)} has no kind`;
  return undefined;
}

/** Checks a history array; returns the first problem found, if any. */
export function historyProblem(value: unknown): string | undefined {
  if (!Array.isArray(value)) return 'history is not an array';
  for (let i = 0; i < value.length; i += 1) {
    const problem = historyEventProblem(value[i], i);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/** A history array that passed {@link historyProblem}, or an `internal` error naming the operation. */
export function decodeHistory(value: unknown, operation: string, instanceId: string): HistoryEvent[] {
  const problem = historyProblem(value);
  if (problem !== undefined) {
    throw new ProviderError(operation, 'internal', `stored history is corrupted: ${problem}`, { instanceId });
  }
  return value as HistoryEvent[];
}

/** Orchestrator messages of a fetched batch. */
export function decodeMessages(value: unknown, operation: string, instanceId: string): OrchestratorWorkItem[] {
  if (!Array.isArray(value) || value.some((item) => typeof asRecord(item)?.type !== 'string')) {
    throw new ProviderError(operation, 'internal', 'stored queue messages are corrupted', { instanceId });
  }
  return value as OrchestratorWorkItem[];
}

/** A number field (json numbers arrive as numbers; bigint text is accepted too). */
export function numberField(record: Record<string, unknown>, field: string): number {
  const value = record[field];
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value);
  throw new ProviderError('decode', 'internal', `procedure result field ${field} is not a number`);
}

/** A nullable number field. */
export function optionalNumberField(record: Record<string, unknown>, field: string): number | null {
  return record[field] === null || record[field] === undefined ? null : numberField(record, field);
}

/** A nullable string field. */
export function optionalStringField(record: Record<string, unknown>, field: string): string | null {
  const value = record[field];
  return typeof value === 'string' ? value : null;
}
