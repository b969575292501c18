/**
 * `durox limits list|set|delete`: operate flow limits (Client.setFlowLimit and friends). A limit
 * applies from the next enqueue or release on; activities already waiting are admitted at once
 * when a limit is raised or deleted.
 */
import type { Command } from 'commander';
import type { FlowLimitInfo } from '../provider/contract';
import { openStore, type ConnectionOptions, type Store } from '../operator/connection';
import { capacityText, isSaturated, parseLimitNumber, rateText } from '../operator/flow-limits';
import { consoleOutput, isoTime, paint, table, type Output } from './output';

type Action = (store: Store, out: Output, args: string[], options: Record<string, unknown>) => Promise<void>;

/** Wires `action` to `command` with the global options and the store's lifetime (exit codes come from error codes). */
function run(command: Command, action: Action): Command {
  return command.action(async (...received: unknown[]) => {
    const self = received[received.length - 1] as Command;
    const globals = self.optsWithGlobals<ConnectionOptions & { json: boolean; color: boolean }>();
    const out = consoleOutput(globals.json === true, globals.color !== false);
    const store = await openStore({ ...globals, create: false });
    try {
      await action(store, out, self.args, self.opts());
    } finally {
      await store.close();
    }
  });
}

function printLimits(out: Output, limits: FlowLimitInfo[]): void {
  table<FlowLimitInfo>(out, limits, [
    { header: 'KEY', value: (l) => l.flowKey, max: 48 },
    { header: 'MAX ACTIVE', value: capacityText, colour: (l) => (l.maxActive === 0 ? 'yellow' : undefined) },
    { header: 'ACTIVE', value: (l) => String(l.active) },
    { header: 'PARKED', value: (l) => String(l.parked), colour: (l) => (isSaturated(l) ? 'yellow' : undefined) },
    { header: 'RATE', value: rateText },
    { header: 'INSTANCES RUNNING/PENDING', value: (l) => `${l.activeInstances}/${l.parkedInstances}` },
    { header: 'UPDATED', value: (l) => isoTime(l.updatedAtMs) },
  ]);
  out.line(paint(out, 'gray', `${limits.length} limit(s)`));
}

/** Registers `durox limits ...` on `program`. */
export function registerLimitCommands(program: Command): void {
  const limits = program
    .command('limits')
    .description('flow limits of activities and instances: list (with active and parked counts), set, delete');

  run(
    limits
      .command('list')
      .description('every flow limit with its permits in use and what waits (activities, instance starts)'),
    async (store, out) => {
      const list = await store.client.getFlowLimits();
      if (out.json) return out.data(list);
      printLimits(out, list);
    },
  );

  run(
    limits
      .command('set <key>')
      .description(
        'create or change the limit of <key> (activity:<name>, or a key given with withFlowKey); settings not given keep their value',
      )
      .option('--max-active <n>', 'activities queued or running at once (0 pauses the key; none lifts the cap)')
      .option('--per-second <rate>', 'dispatches per second, on average (none lifts the rate limit)')
      .option('--burst <n>', 'dispatches at once after an idle period (with a rate; default 1)'),
    async (store, out, [key], o) => {
      const current = (await store.client.getFlowLimits()).find((l) => l.flowKey === key);
      const maxActive = parseLimitNumber('--max-active', o.maxActive as string | undefined, true);
      const perSecond = parseLimitNumber('--per-second', o.perSecond as string | undefined, false);
      const burst = parseLimitNumber('--burst', o.burst as string | undefined, false);
      const rate = perSecond === undefined ? (current?.perSecond ?? null) : perSecond;
      const limit = await store.client.setFlowLimit(key, {
        maxActive: maxActive === undefined ? (current?.maxActive ?? null) : maxActive,
        perSecond: rate,
        burst: rate === null ? null : burst === undefined ? (current?.burst ?? null) : burst,
      });
      if (out.json) return out.data(limit);
      out.line(
        `${current === undefined ? 'created' : 'changed'} limit ${key}: max active ${capacityText(limit)}, rate ${rateText(limit)}`,
      );
    },
  );

  run(
    limits.command('delete <key>').description('remove the limit of <key>; its parked activities start at once'),
    async (store, out, [key]) => {
      const deleted = await store.client.deleteFlowLimit(key);
      if (out.json) return out.data({ flowKey: key, deleted });
      out.line(deleted ? `deleted limit ${key}` : `no limit on ${key}`);
    },
  );
}
