/** The durox subcommands. Each opens the store, does one thing through the Client and prints. */
import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { DEFAULT_BULK_LIMIT, MAX_PAGE_ROWS } from '../core/limits';
import type { InstanceSummary } from '../provider/contract';
import { loadInstanceDetails, resolveExecution } from '../operator/details';
import { conflictError, notFoundError, usageError } from '../operator/errors';
import { openStore, type ConnectionOptions, type Store } from '../operator/connection';
import { consoleOutput, fields, isoTime, paint, statusColour, table, type Output } from './output';
import { parseInteger, parseJson, parseStatus, parseTime } from '../operator/parsing';
import { formatOffset, timeline } from '../operator/timeline';

/** Options every command inherits from the program. */
interface GlobalOptions extends ConnectionOptions {
  json: boolean;
  color: boolean;
}

type Action = (store: Store, out: Output, args: string[], options: Record<string, unknown>) => Promise<void>;

/** Wires `action` to `command`: global options, the store's lifetime and the output. */
function run(command: Command, action: Action, create = false): Command {
  return command.action(async (...received: unknown[]) => {
    const self = received[received.length - 1] as Command;
    const globals = self.optsWithGlobals<GlobalOptions>();
    const out = consoleOutput(globals.json === true, globals.color !== false);
    const store = await openStore({ ...globals, create });
    try {
      await action(store, out, self.args, self.opts());
    } finally {
      await store.close();
    }
  });
}

async function requireInstance(store: Store, instanceId: string): Promise<void> {
  const status = await store.client.getStatus(instanceId);
  if (status.status === 'NotFound') throw notFoundError(`Instance ${instanceId} not found`);
}

function optional<T>(value: unknown, parse: (text: string) => T): T | undefined {
  return typeof value === 'string' ? parse(value) : undefined;
}

/** Registers every subcommand on `program`. */
export function registerCommands(program: Command): void {
  run(
    program
      .command('migrate')
      .alias('init')
      .description('create the store, or upgrade it to this version of Durox (the only command that creates one)'),
    async (store, out) => {
      const result = { location: store.location, schemaVersion: store.schemaVersion };
      if (out.json) out.data(result);
      else out.line(`${store.location} is at migration ${result.schemaVersion}`);
    },
    true,
  );

  run(
    program
      .command('list')
      .description('list instances, newest first')
      .option('--status <status>', 'status of the current execution: Running, Completed, Failed, ContinuedAsNew')
      .option('--name <orchestration>', 'orchestration name')
      .option('--since <time>', 'created at or after (ISO date, epoch ms, or 15m/2h/7d ago)')
      .option('--until <time>', 'created before (same formats)')
      .option('--limit <n>', `rows per page, 1..${MAX_PAGE_ROWS}`, '50')
      .option('--cursor <cursor>', 'continue after a previous page (its nextCursor)'),
    async (store, out, _args, o) => {
      const page = await store.client.listInstancesPage({
        status: optional(o.status, (t) => parseStatus('--status', t)),
        orchestrationName: optional(o.name, (t) => t),
        createdFrom: optional(o.since, (t) => parseTime('--since', t)),
        createdTo: optional(o.until, (t) => parseTime('--until', t)),
        limit: parseInteger('--limit', String(o.limit), 1, MAX_PAGE_ROWS),
        cursor: optional(o.cursor, (t) => t),
      });
      if (out.json) return out.data(page);
      table<InstanceSummary>(out, page.items, [
        { header: 'INSTANCE', value: (r) => r.instanceId, max: 48 },
        { header: 'ORCHESTRATION', value: (r) => r.orchestrationName, max: 32 },
        { header: 'VERSION', value: (r) => r.orchestrationVersion },
        { header: 'STATUS', value: (r) => r.status, colour: (r) => statusColour(r.status) },
        { header: 'PRIORITY', value: (r) => String(r.priority) },
        { header: 'EXEC', value: (r) => String(r.currentExecutionId) },
        { header: 'CREATED', value: (r) => isoTime(r.createdAt) },
        { header: 'ERROR', value: (r) => r.error ?? '', max: 60 },
      ]);
      out.line(
        paint(
          out,
          'gray',
          `${page.items.length} ` +
            `instance(s)${page.nextCursor === null ? '' : `; next page: --cursor ${page.nextCursor}`}`,
        ),
      );
    },
  );

  run(
    program
      .command('show <instanceId>')
      .description('status, input, output, error, custom status and executions of an instance'),
    async (store, out, [id]) => {
      const d = await loadInstanceDetails(store.client, id);
      if (out.json) return out.data(d);
      fields(out, [
        ['instance', d.info.instanceId],
        ['orchestration', `${d.info.orchestrationName} ${d.info.orchestrationVersion}`],
        ['status', d.status.status, statusColour(d.status.status)],
        ['parent', d.info.parentInstanceId],
        ['priority', d.info.priority === undefined ? undefined : String(d.info.priority)],
        ['created', isoTime(d.info.createdAt)],
        ['updated', isoTime(d.info.updatedAt)],
        ['input', d.input],
        ['output', d.status.output],
        ['error', d.status.error, 'red'],
        [
          'custom status',
          d.status.customStatus === undefined
            ? undefined
            : `${d.status.customStatus} (version ${d.status.customStatusVersion})`,
        ],
        ['sub-orchestrations', d.children.length === 0 ? undefined : d.children.join(', ')],
        [
          'history',
          d.stats === null
            ? undefined
            : `${d.stats.historyEventCount} events, ${d.stats.historySizeBytes} bytes; ` +
              `${d.stats.queuePendingCount} queued message(s)`,
        ],
      ]);
      out.line();
      table(out, d.executions, [
        { header: 'EXECUTION', value: (e) => String(e.executionId) },
        { header: 'STATUS', value: (e) => e.status, colour: (e) => statusColour(e.status) },
        { header: 'STARTED', value: (e) => isoTime(e.startedAt) },
        { header: 'COMPLETED', value: (e) => isoTime(e.completedAt) },
        { header: 'EVENTS', value: (e) => String(e.eventCount) },
      ]);
    },
  );

  run(
    program
      .command('history <instanceId>')
      .description('the history of an execution as a timeline')
      .option('--execution <n>', 'execution id (default: the current one)'),
    async (store, out, [id], o) => {
      const requested = optional(o.execution, (t) => parseInteger('--execution', t, 1, Number.MAX_SAFE_INTEGER));
      const executionId = await resolveExecution(store.client, id, requested);
      const entries = timeline(await store.client.readExecutionHistory(id, executionId));
      if (out.json) return out.data({ instanceId: id, executionId, events: entries });
      out.line(paint(out, 'bold', `${id} execution ${executionId}`));
      for (const e of entries) {
        const colour = /Failed/.test(e.kind) ? 'red' : /Completed/.test(e.kind) ? 'green' : 'blue';
        const source = e.sourceEventId === undefined ? '' : paint(out, 'gray', ` (for #${e.sourceEventId})`);
        out.line(
          `${paint(out, 'gray', isoTime(e.timestampMs))} ` +
            `${formatOffset(e.offsetMs).padStart(10)}  #${String(e.eventId).padEnd(4)} ` +
            `${paint(out, colour, e.kind)}${source} ${e.summary}`,
        );
      }
    },
  );

  run(
    program
      .command('start <orchestration>')
      .description('start an orchestration instance')
      .option('--input <json>', 'input as JSON', 'null')
      .option('--id <instanceId>', 'instance id (default: a random UUID)')
      .option('--version <version>', 'pin an orchestration version'),
    async (store, out, [name], o) => {
      const input = parseJson('--input', String(o.input));
      const id = typeof o.id === 'string' ? o.id : randomUUID();
      if ((await store.client.getStatus(id)).status !== 'NotFound') {
        throw conflictError(`Instance ${id} already exists`);
      }
      if (typeof o.version === 'string') await store.client.startOrchestrationVersioned(id, name, input, o.version);
      else await store.client.startOrchestration(id, name, input);
      if (out.json) out.data({ instanceId: id, orchestration: name });
      else out.line(id);
    },
  );

  run(
    program
      .command('raise <instanceId> <event>')
      .description('raise an external event')
      .option('--data <json>', 'event data as JSON', 'null'),
    async (store, out, [id, event], o) => {
      const data = parseJson('--data', String(o.data));
      await requireInstance(store, id);
      await store.client.raiseEvent(id, event, data);
      if (out.json) out.data({ instanceId: id, event, raised: true });
      else out.line(`raised ${event} on ${id}`);
    },
  );

  run(
    program
      .command('cancel <instanceId>')
      .description('cancel a running instance')
      .option('--reason <text>', 'reason recorded in the error', ''),
    async (store, out, [id], o) => {
      await requireInstance(store, id);
      await store.client.cancelInstance(id, String(o.reason));
      if (out.json) out.data({ instanceId: id, cancelRequested: true });
      else out.line(`cancellation requested for ${id}`);
    },
  );

  run(
    program
      .command('delete [instanceId]')
      .description('delete an instance with its sub-orchestrations, or terminal root instances in bulk')
      .option('--force', 'also delete a running instance (work in flight is dropped)')
      .option('--completed-before <time>', 'bulk: terminal instances completed before this time')
      .option('--limit <n>', 'bulk: at most this many root instances', String(DEFAULT_BULK_LIMIT)),
    async (store, out, [id], o) => {
      let result;
      if (id !== undefined) {
        if (o.completedBefore !== undefined)
          throw usageError('give either an instance id or --completed-before, not both');
        result = await store.client.deleteInstance(id, o.force === true);
      } else {
        if (o.completedBefore === undefined)
          throw usageError('give an instance id, or --completed-before <time> for a bulk delete');
        result = await store.client.deleteInstanceBulk({
          completedBefore: parseTime('--completed-before', o.completedBefore as string),
          limit: parseInteger('--limit', String(o.limit), 1, 100_000),
        });
      }
      if (out.json) out.data(result);
      else
        out.line(
          `deleted ${result.instancesDeleted} instance(s), ${result.executionsDeleted} ` +
            `execution(s), ${result.eventsDeleted} event(s)`,
        );
    },
  );

  run(
    program
      .command('prune [instanceId]')
      .description('delete old executions (never the current one) of an instance, or of all instances')
      .option('--keep-last <n>', 'keep the newest n executions')
      .option('--completed-before <time>', 'only executions completed before this time')
      .option('--all', 'prune every instance'),
    async (store, out, [id], o) => {
      const options = {
        keepLast: optional(o.keepLast, (t) => parseInteger('--keep-last', t, 0, 1_000_000)),
        completedBefore: optional(o.completedBefore, (t) => parseTime('--completed-before', t)),
      };
      if ((id === undefined) === (o.all !== true)) throw usageError('give either an instance id or --all');
      const result =
        id !== undefined
          ? await store.client.pruneExecutions(id, options)
          : await store.client.pruneExecutionsBulk({}, options);
      if (out.json) out.data(result);
      else
        out.line(
          `pruned ${result.executionsDeleted} execution(s) and ${result.eventsDeleted} ` +
            `event(s) of ${result.instancesProcessed} instance(s)`,
        );
    },
  );

  run(program.command('metrics').description('instance counts and queue depths'), async (store, out) => {
    const [system, queues] = await Promise.all([store.client.getSystemMetrics(), store.client.getQueueDepths()]);
    if (out.json) return out.data({ system, queues });
    fields(out, [
      ['instances', String(system.totalInstances)],
      ['running', String(system.runningInstances), 'yellow'],
      ['completed', String(system.completedInstances), 'green'],
      ['failed', String(system.failedInstances), 'red'],
      ['executions', String(system.totalExecutions)],
      ['events', String(system.totalEvents)],
      ['orchestrator queue', String(queues.orchestratorQueue)],
      ['worker queue', String(queues.workerQueue)],
    ]);
  });
}
