/** Everything an operator wants to see about one instance, gathered through the Client. */
import type { Client } from '../client/client';
import type { JsEvent } from '../client/history-shapes';
import type { JsExecutionInfo, JsInstanceInfo, JsOrchestrationStatus, JsSystemStats } from '../client/status-shapes';
import { notFoundError } from './errors';
import { executionInput } from './timeline';

/** One instance as `durox show` and the dashboard's instance page present it. */
export interface InstanceDetails {
  info: JsInstanceInfo;
  status: JsOrchestrationStatus;
  /** Input of the current execution (JSON text), when its start event is stored. */
  input?: string;
  executions: JsExecutionInfo[];
  /** Sub-orchestrations (descendant ids, the instance itself excluded). */
  children: string[];
  stats: JsSystemStats | null;
  /** History of the current execution. */
  history: JsEvent[];
}

/** @throws the Client's NotFoundError (code `not_found`) for an unknown instance. */
export async function loadInstanceDetails(client: Client, instanceId: string): Promise<InstanceDetails> {
  const info = await client.getInstanceInfo(instanceId);
  const [status, executionIds, history, stats, tree] = await Promise.all([
    client.getStatus(instanceId),
    client.listExecutions(instanceId),
    client.readExecutionHistory(instanceId, info.currentExecutionId),
    client.getOrchestrationStats(instanceId),
    client.getInstanceTree(instanceId),
  ]);
  const executions = await Promise.all(executionIds.map((id) => client.getExecutionInfo(instanceId, id)));
  const details: InstanceDetails = {
    info,
    status,
    executions,
    children: tree.allIds.filter((id) => id !== instanceId),
    stats,
    history,
  };
  const input = executionInput(history);
  if (input !== undefined) details.input = input;
  return details;
}

/** The execution id named by `--execution`, or the current one; not-found error when it does not exist. */
export async function resolveExecution(
  client: Client,
  instanceId: string,
  requested: number | undefined,
): Promise<number> {
  const executions = await client.listExecutions(instanceId);
  if (executions.length === 0) throw notFoundError(`Instance ${instanceId} not found`);
  if (requested === undefined) return executions[executions.length - 1];
  if (!executions.includes(requested))
    throw notFoundError(`Execution ${requested} of instance ${instanceId} not found`);
  return requested;
}
