/**
 * Fused start over start_orchestration_with_turn and start_orchestrations_with_turns
 * (orchestration.sql): a start that also commits the first turn its caller ran in-process, alone
 * or several in one call. Arguments are validated before any SQL, as everywhere.
 */
import type { StartOrchestrationItem } from '../core/types';
import type { FusedStart, FusedStartElementOutcome, FusedStartOutcome, StartTurn } from '../provider/contract';
import { MAX_TURNS_PER_CALL } from '../core/limits';
import { buildAckArguments, orchestratorRow } from './ack-arguments';
import { groupCommit } from './batch-operations';
import { decodeWorkLeases } from './item-decoding';
import type { ProcedureCall } from './parity-operations';
import { asRecord } from './row-decoding';
import { invalidArgument, requireInteger, type CallContext } from './validation';

/** A fused start's procedure arguments: the instance, the start message's JSON and the turn's. */
interface FusedStartArguments {
  instanceId: string;
  workItem: string;
  turn: string;
}

function fusedStartArguments(item: StartOrchestrationItem, turn: StartTurn, context: CallContext): FusedStartArguments {
  if (item?.type !== 'StartOrchestration')
    throw invalidArgument(context, 'a fused start takes a StartOrchestration item');
  if (item.flowKey !== undefined) throw invalidArgument(context, 'a start with a flowKey cannot be fused');
  const row = orchestratorRow(item, context);
  if (turn?.ack?.instanceId !== row.targetInstance)
    throw invalidArgument(context, 'the fused turn must be of the started instance');
  const nowMs = requireInteger(turn.nowMs, 'turn.nowMs', context, 0);
  const argument = buildAckArguments(turn.ack, turn.claim);
  return {
    instanceId: row.targetInstance,
    workItem: row.workItem,
    // ack and claim are JSON texts already: spliced in, not encoded again.
    turn: `{"nowMs":${nowMs},"ack":${argument.ack},"claim":${argument.claim ?? 'null'}}`,
  };
}

/** A fused start's reply; `committed` hears the record of a committed turn (its status for local waits). */
function decodeFusedStartOutcome(
  record: Record<string, unknown> | null,
  context: CallContext,
  committed: (record: Record<string, unknown>) => void,
): FusedStartOutcome {
  const nowMs = requireInteger(record?.nowMs, 'nowMs', context, 0);
  if (record?.fused !== true) return { fused: false, nowMs };
  committed(record);
  return { fused: true, claimedWorkItems: decodeWorkLeases(record.claimedWorkItems ?? [], context.operation), nowMs };
}

/** start_orchestration_with_turn: one fused start. */
export async function startOrchestrationWithTurn(
  call: ProcedureCall,
  item: StartOrchestrationItem,
  turn: StartTurn,
  committed: (record: Record<string, unknown>) => void,
): Promise<FusedStartOutcome> {
  const context: CallContext = { operation: 'start_orchestration_with_turn', instanceId: item?.instance };
  const { instanceId, workItem, turn: turnText } = fusedStartArguments(item, turn, context);
  const result = asRecord(await call(context.operation, [instanceId, workItem, turnText], instanceId));
  return decodeFusedStartOutcome(result, context, committed);
}

/** start_orchestrations_with_turns: several fused starts in one call, an outcome each. */
export async function startOrchestrationsWithTurns(
  call: ProcedureCall,
  starts: readonly FusedStart[],
  committed: (record: Record<string, unknown>) => void,
): Promise<FusedStartElementOutcome[]> {
  const operation = 'start_orchestrations_with_turns';
  return groupCommit(
    call,
    operation,
    starts,
    MAX_TURNS_PER_CALL,
    (start) => start?.item?.instance,
    (start) => {
      const context = { operation, instanceId: start?.item?.instance };
      const { instanceId, workItem, turn } = fusedStartArguments(start?.item, start?.turn, context);
      return `{"instanceId":${JSON.stringify(instanceId)},"workItem":${JSON.stringify(workItem)},"turn":${turn}}`;
    },
    (record) => ({
      ok: true as const,
      outcome: decodeFusedStartOutcome(record, { operation, instanceId: String(record.instanceId) }, committed),
    }),
  );
}
