/**
 * Replay cost of async orchestrations against their generator twins, without a database: a
 * recorded history of about 1,000 or 10,000 events is replayed by one turn, and the time per
 * applied event is reported, plus the latency of a short turn (start, and a completion that
 * finishes the orchestration). Async code is driven by a microtask drain per delivery, so it
 * costs more per event than a generator; this scenario measures how much.
 */
import { performance } from 'node:perf_hooks';
import type { AsyncOrchestrationContext } from '../src/core/async-context';
import type { OrchestrationContext } from '../src/core/orchestration-context';
import { turnEngine } from '../src/core/turn';
import type { OrchestrationFunction, TurnRequest, Untyped } from '../src/core/turn-api';
import type { HistoryEvent, HistoryEventData, OrchestratorWorkItem } from '../src/core/types';

type Shape = 'sequential' | 'fan-out';

// The engine calls handlers with its own context object; `any` lets each form declare the one it gets.
const generators: Record<Shape, OrchestrationFunction<Untyped>> = {
  sequential: function* (ctx: OrchestrationContext, n: number) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += (yield ctx.scheduleActivity('Step', i)) as number;
    return sum;
  },
  'fan-out': function* (ctx: OrchestrationContext, n: number) {
    const results = (yield ctx.all(Array.from({ length: n }, (_, i) => ctx.scheduleActivity('Step', i)))) as Array<{
      ok: number;
    }>;
    return results.reduce((sum, r) => sum + r.ok, 0);
  },
};

const asyncFunctions: Record<Shape, OrchestrationFunction<Untyped>> = {
  sequential: async (ctx: AsyncOrchestrationContext, n: number) => {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += await ctx.scheduleActivity<number>('Step', i);
    return sum;
  },
  'fan-out': async (ctx: AsyncOrchestrationContext, n: number) => {
    const results = await ctx.all<number>(Array.from({ length: n }, (_, i) => ctx.scheduleActivity<number>('Step', i)));
    return results.reduce((sum, r) => sum + (r.ok ?? 0), 0);
  },
};

/** The history `n` activities write in `shape`, all completed but the last, and that last completion. */
function recorded(shape: Shape, n: number): { history: HistoryEvent[]; last: OrchestratorWorkItem } {
  const base = { instanceId: 'bench', executionId: 1, timestampMs: 0, duroxVersion: '0.1.0' };
  const history: HistoryEvent[] = [];
  const push = (data: HistoryEventData, sourceEventId?: number): number => {
    const eventId = history.length + 1;
    history.push({ ...base, eventId, ...(sourceEventId === undefined ? {} : { sourceEventId }), ...data });
    return eventId;
  };
  push({ kind: 'OrchestrationStarted', name: shape, version: '1.0.0', input: String(n) });
  const scheduled: number[] = [];
  if (shape === 'fan-out') {
    for (let i = 0; i < n; i++) scheduled.push(push({ kind: 'ActivityScheduled', name: 'Step', input: String(i) }));
    for (let i = 0; i < n - 1; i++) push({ kind: 'ActivityCompleted', result: '1' }, scheduled[i]);
  } else {
    for (let i = 0; i < n; i++) {
      scheduled.push(push({ kind: 'ActivityScheduled', name: 'Step', input: String(i) }));
      if (i < n - 1) push({ kind: 'ActivityCompleted', result: '1' }, scheduled[i]);
    }
  }
  return {
    history,
    last: { type: 'ActivityCompleted', instance: 'bench', executionId: 1, id: scheduled[n - 1], result: '1' },
  };
}

function request(
  handler: OrchestrationFunction,
  history: HistoryEvent[],
  messages: OrchestratorWorkItem[],
): TurnRequest {
  return {
    instanceId: 'bench',
    orchestrationName: 'bench',
    orchestrationVersion: null,
    executionId: 1,
    history,
    messages,
    kvSnapshot: {},
    customStatus: null,
    nowMs: 1,
    resolveHandler: () => ({ version: '1.0.0', handler }),
    trace: () => undefined,
  };
}

/** Median wall time of `runs` turns, in ms; checks every turn completes. */
async function timeTurns(
  handler: OrchestrationFunction,
  history: HistoryEvent[],
  messages: OrchestratorWorkItem[],
  runs: number,
): Promise<number> {
  const times: number[] = [];
  for (let run = 0; run < runs; run++) {
    const started = performance.now();
    const pending = turnEngine.runTurn(request(handler, history, messages));
    const result = pending instanceof Promise ? await pending : pending;
    times.push(performance.now() - started);
    if (result.kind !== 'ack' || (result.outcome.kind !== 'completed' && result.outcome.kind !== 'continue')) {
      throw new Error(
        `bench turn did not run cleanly: ${JSON.stringify(result.kind === 'ack' ? result.outcome : result)}`,
      );
    }
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

export interface AsyncReplayRow {
  [column: string]: string | number;
  shape: string;
  events: number;
  generatorNsPerEvent: number;
  asyncNsPerEvent: number;
  asyncOverGenerator: number;
}

/** Replay cost per applied event for 1,000- and 10,000-event histories, both forms. */
export async function asyncReplay(
  quick: boolean,
): Promise<{ replay: AsyncReplayRow[]; latency: Array<Record<string, string | number>> }> {
  const replay: AsyncReplayRow[] = [];
  for (const shape of ['sequential', 'fan-out'] as const) {
    for (const events of [1_000, 10_000]) {
      const n = Math.floor(events / 2);
      const { history, last } = recorded(shape, n);
      const runs = events >= 10_000 ? (quick ? 3 : 9) : quick ? 10 : 40;
      // Warm both paths up so the JIT has compiled the engine before anything is timed.
      await timeTurns(generators[shape], history, [last], 2);
      await timeTurns(asyncFunctions[shape], history, [last], 2);
      const generatorMs = await timeTurns(generators[shape], history, [last], runs);
      const asyncMs = await timeTurns(asyncFunctions[shape], history, [last], runs);
      const applied = history.length + 1;
      replay.push({
        shape,
        events: applied,
        generatorNsPerEvent: Math.round((generatorMs * 1e6) / applied),
        asyncNsPerEvent: Math.round((asyncMs * 1e6) / applied),
        asyncOverGenerator: Math.round((asyncMs / generatorMs) * 10) / 10,
      });
    }
  }
  // A short turn: the start of a one-activity orchestration, then the completion that ends it.
  const latency: Array<Record<string, string | number>> = [];
  const { history, last } = recorded('sequential', 1);
  const start: OrchestratorWorkItem = {
    type: 'StartOrchestration',
    instance: 'bench',
    orchestration: 'sequential',
    input: '1',
    version: null,
    parentInstance: null,
    parentId: null,
    parentExecutionId: null,
    executionId: 1,
  };
  const runs = quick ? 2_000 : 20_000;
  for (const [form, handlers] of [
    ['generator', generators],
    ['async', asyncFunctions],
  ] as const) {
    await timeTurns(handlers.sequential, [], [start], 200);
    latency.push({
      form,
      startTurnUs: Math.round((await timeTurns(handlers.sequential, [], [start], runs)) * 1000 * 10) / 10,
      completingTurnUs: Math.round((await timeTurns(handlers.sequential, history, [last], runs)) * 1000 * 10) / 10,
    });
  }
  return { replay, latency };
}
