/**
 * Batch fetch and group commit over the group-commit procedures (orchestration.sql,
 * worker.sql): several turns per fetch, several turn or activity acks per call, each item with its own lock and outcome. Arguments are
 * validated before any SQL, as everywhere; each operation makes exactly one procedure call.
 */
import type {
  FusedAckOutcome,
  FusedWorkItemAck,
  FusedWorkItemAckOutcome,
  OrchestrationItem,
  TurnAck,
  TurnAckOutcome,
  VersionRange,
  WorkItemAck,
  WorkItemAckOutcome,
} from '../provider/contract';
import type { ProviderError } from '../provider/errors';
import { MAX_COMPLETIONS_PER_FUSED_TURN, MAX_TURNS_PER_CALL, MAX_WORK_ITEMS_PER_CALL } from '../core/limits';
import { buildAckArguments, orchestratorRow, turnClaimArgument } from './ack-arguments';
import { toProviderError } from './error-mapping';
import { decodeOrchestrationItem, decodeWorkLeases } from './item-decoding';
import { versionRangeArguments, type ProcedureCall } from './parity-operations';
import { asRecord } from './row-decoding';
import { invalidArgument, requireId, requireInteger, requirePositiveDuration, type CallContext } from './validation';

type Refusal = { ok: false; error: ProviderError };

/**
 * One group-commit call of at most `max` acks (none: no call). Each ack is encoded by `encode`
 * (JSON text); one that fails validation
 * gets its own refusal and is left out of the call, so it never fails the others. The procedure's
 * `ok` elements are decoded by `decodeOk`, its refusals become ProviderErrors naming the operation
 * and the item's instance (retryable when their SQLSTATE is).
 */
export async function groupCommit<A, T>(
  call: ProcedureCall,
  operation: string,
  acks: readonly A[],
  max: number,
  instanceOf: (ack: A) => string | undefined,
  encode: (ack: A, index: number) => string,
  decodeOk: (record: Record<string, unknown>) => T,
): Promise<Array<T | Refusal>> {
  // Checked through `unknown`: Array.isArray would otherwise widen the elements to `any`.
  const given: unknown = acks;
  if (!Array.isArray(given)) throw invalidArgument({ operation }, 'acks must be an array');
  if (acks.length > max) throw invalidArgument({ operation }, `at most ${max} acks per call, got ${acks.length}`);
  const outcomes: Array<T | Refusal | undefined> = [];
  const sent: number[] = [];
  const elements: string[] = [];
  acks.forEach((ack, index) => {
    try {
      elements.push(encode(ack, index));
      sent.push(index);
    } catch (error) {
      outcomes[index] = { ok: false, error: toProviderError(error, operation, instanceOf(ack)) };
    }
  });
  if (elements.length > 0) {
    const results = await call(operation, [`[${elements.join(',')}]`]);
    if (!Array.isArray(results) || results.length !== elements.length) {
      throw toProviderError(new Error(`${operation} returned no outcome per ack`), operation);
    }
    results.forEach((value, position) => {
      const index = sent[position];
      const record = asRecord(value) ?? {};
      if (record.ok === true) {
        outcomes[index] = decodeOk(record);
        return;
      }
      const refusal = Object.assign(new Error(String(record.message)), { code: String(record.code) });
      outcomes[index] = { ok: false, error: toProviderError(refusal, operation, instanceOf(acks[index])) };
    });
  }
  return outcomes as Array<T | Refusal>;
}

/** One element of ack_work_items' json argument, validated as ackWorkItem validates its input. */
function workItemAckElement(ack: WorkItemAck, context: CallContext, index: number): Record<string, unknown> {
  if (ack === null || typeof ack !== 'object') throw invalidArgument(context, `acks[${index}] must be an object`);
  const lockToken = requireId(ack.lockToken, `acks[${index}].lockToken`, context);
  const completion = ack.completion;
  if (completion === null || completion === undefined)
    return { lockToken, instanceId: null, kind: null, workItem: null, claimTurn: null };
  if (completion.type !== 'ActivityCompleted' && completion.type !== 'ActivityFailed') {
    throw invalidArgument(
      context,
      `acks[${index}]: a work item completion must be ActivityCompleted or ActivityFailed`,
    );
  }
  const row = orchestratorRow(completion, context);
  const claim = turnClaimArgument(ack.claim, context);
  return {
    lockToken,
    instanceId: row.targetInstance,
    kind: row.kind,
    workItem: row.workItem,
    claimTurn: claim === null ? null : JSON.parse(claim),
  };
}

/** fetch_orchestration_items: up to `maxItems` locked batches, oldest first. */
export async function fetchOrchestrationItems(
  call: ProcedureCall,
  options: { lockTimeoutMs: number; versionRange?: VersionRange | null; maxItems: number },
): Promise<OrchestrationItem[]> {
  const context = { operation: 'fetch_orchestration_items' };
  const lockTimeoutMs = requirePositiveDuration(options?.lockTimeoutMs, 'lockTimeoutMs', context);
  const maxItems = requireInteger(options.maxItems, 'maxItems', context, 1);
  if (maxItems > MAX_TURNS_PER_CALL)
    throw invalidArgument(context, `maxItems must be at most ${MAX_TURNS_PER_CALL}, got ${maxItems}`);
  const [minVersion, maxVersion] = versionRangeArguments(options.versionRange);
  const rows = await call(context.operation, [lockTimeoutMs, minVersion, maxVersion, maxItems]);
  if (!Array.isArray(rows))
    throw toProviderError(new Error('fetch_orchestration_items returned no array'), context.operation);
  return rows.map((row) => decodeOrchestrationItem(row, context.operation)).filter((item) => item !== null);
}

/** ack_orchestration_items: several turns in one call; `committed` sees each committed turn's result record. */
export async function ackOrchestrationItems(
  call: ProcedureCall,
  acks: readonly TurnAck[],
  committed: (record: Record<string, unknown>) => void = () => undefined,
): Promise<TurnAckOutcome[]> {
  const context: CallContext = { operation: 'ack_orchestration_items' };
  // Each ack is already JSON text (buildAckArguments), so elements are assembled, not re-encoded.
  return groupCommit(
    call,
    context.operation,
    acks,
    MAX_TURNS_PER_CALL,
    (element) => element?.ack?.instanceId,
    (element, index) => {
      if (element === null || typeof element !== 'object')
        throw invalidArgument(context, `acks[${index}] must be an object`);
      const lockToken = requireId(element.lockToken, `acks[${index}].lockToken`, {
        ...context,
        instanceId: element.ack?.instanceId,
      });
      const argument = buildAckArguments(element.ack, element.claim);
      return `{"lockToken":${JSON.stringify(lockToken)},"ack":${argument.ack},"claim":${argument.claim ?? 'null'}}`;
    },
    (record) => {
      committed(record);
      return { ok: true, claimedWorkItems: decodeWorkLeases(record.claimedWorkItems ?? [], context.operation) };
    },
  );
}

/** ack_work_items: several activity acks in one call, an outcome each. */
export async function ackWorkItems(call: ProcedureCall, acks: readonly WorkItemAck[]): Promise<WorkItemAckOutcome[]> {
  const context: CallContext = { operation: 'ack_work_items' };
  return groupCommit(
    call,
    context.operation,
    acks,
    MAX_WORK_ITEMS_PER_CALL,
    (ack) => ack?.completion?.instance,
    (ack, index) =>
      JSON.stringify(
        workItemAckElement(ack, { operation: context.operation, instanceId: ack?.completion?.instance }, index),
      ),
    (record) => ({ ok: true, claimedTurn: decodeOrchestrationItem(record.claimedTurn, context.operation) }),
  );
}

/**
 * The arguments of one fused completion (ack_work_item_with_turn, or an element of
 * ack_work_items_with_turns), validated before any SQL; `claimTurn` and `turn` are JSON texts.
 */
export function fusedAckArguments(
  ack: FusedWorkItemAck,
  context: CallContext,
): { lockToken: string; instanceId: string; kind: string; workItem: string; claimTurn: string; turn: string } {
  if (ack === null || typeof ack !== 'object') throw invalidArgument(context, 'a fused ack must be an object');
  const lockToken = requireId(ack.lockToken, 'lockToken', context);
  const { completion, turn } = ack;
  if (completion?.type !== 'ActivityCompleted' && completion?.type !== 'ActivityFailed') {
    throw invalidArgument(context, 'a work item completion must be ActivityCompleted or ActivityFailed');
  }
  const row = orchestratorRow(completion, context);
  const claimTurn = turnClaimArgument(ack.claim, context);
  if (claimTurn === null) throw invalidArgument(context, 'a fused ack needs a turn claim');
  if (turn?.ack?.instanceId !== row.targetInstance)
    throw invalidArgument(context, "the fused turn must be of the completion's instance");
  const executionId = requireInteger(turn.executionId, 'turn.executionId', context, 1);
  const lastEventId = requireInteger(turn.lastEventId, 'turn.lastEventId', context, 0);
  const fallback = turn.fallback ?? 'claim';
  if (fallback !== 'claim' && fallback !== 'release')
    throw invalidArgument(context, `turn.fallback must be 'claim' or 'release', got ${JSON.stringify(fallback)}`);
  const argument = buildAckArguments(turn.ack, turn.claim);
  const alsoCompleted = (turn.alsoCompleted ?? []).map((other, index) => {
    const name = `turn.alsoCompleted[${index}]`;
    const otherToken = requireId(other?.lockToken, `${name}.lockToken`, context);
    const { completion: otherCompletion } = other;
    if (otherCompletion?.type !== 'ActivityCompleted' && otherCompletion?.type !== 'ActivityFailed') {
      throw invalidArgument(context, `${name}.completion must be ActivityCompleted or ActivityFailed`);
    }
    const otherRow = orchestratorRow(otherCompletion, context);
    if (otherRow.targetInstance !== row.targetInstance || otherToken === lockToken)
      throw invalidArgument(context, `${name} must be another work item of the completion's instance`);
    return { lockToken: otherToken, kind: otherRow.kind, workItem: otherRow.workItem };
  });
  if (alsoCompleted.length >= MAX_COMPLETIONS_PER_FUSED_TURN)
    throw invalidArgument(context, `a fused turn runs on at most ${MAX_COMPLETIONS_PER_FUSED_TURN} completions`);
  const also = alsoCompleted.length === 0 ? '' : `,"alsoCompleted":${JSON.stringify(alsoCompleted)}`;
  return {
    lockToken,
    instanceId: row.targetInstance,
    kind: row.kind,
    workItem: row.workItem,
    claimTurn,
    turn: `{"executionId":${executionId},"lastEventId":${lastEventId},"fallback":"${fallback}","ack":${argument.ack},"claim":${argument.claim ?? 'null'}${also}}`,
  };
}

/** A fused completion's result record as a {@link FusedAckOutcome}; `committed` sees a committed turn's record. */
export function decodeFusedOutcome(
  record: Record<string, unknown> | null,
  operation: string,
  committed: (record: Record<string, unknown>) => void,
): FusedAckOutcome {
  if (record?.fused !== true)
    return { fused: false, claimedTurn: decodeOrchestrationItem(record?.claimedTurn, operation) };
  committed(record);
  return { fused: true, claimedWorkItems: decodeWorkLeases(record.claimedWorkItems ?? [], operation) };
}

/** ack_work_items_with_turns: several fused completions in one call, an outcome each. */
export async function ackWorkItemsWithTurns(
  call: ProcedureCall,
  acks: readonly FusedWorkItemAck[],
  committed: (record: Record<string, unknown>) => void,
): Promise<FusedWorkItemAckOutcome[]> {
  const operation = 'ack_work_items_with_turns';
  return groupCommit(
    call,
    operation,
    acks,
    MAX_TURNS_PER_CALL,
    (ack) => ack?.completion?.instance,
    (ack) => {
      // claimTurn and turn are JSON texts already: spliced in, not encoded again.
      const { claimTurn, turn, ...plain } = fusedAckArguments(ack, {
        operation,
        instanceId: ack?.completion?.instance,
      });
      return `${JSON.stringify(plain).slice(0, -1)},"claimTurn":${claimTurn},"turn":${turn}}`;
    },
    (record) => ({ ok: true as const, outcome: decodeFusedOutcome(record, operation, committed) }),
  );
}
