/**
 * Runs an orchestration to its end against a scripted environment, in the core harness (no
 * database): every activity, timer, child and subscription the turns create is answered, a few
 * answers per turn as a seeded generator decides. Two forms of one program that write the same
 * history receive the same answers in the same turns, so their histories can be compared event
 * by event, and each form can replay the other's history turn by turn.
 */
import assert from 'node:assert/strict';
import { SYSCALL_GET_KV_VALUE, SYSCALL_NEW_GUID, SYSCALL_UTC_NOW_MS } from '../../src/core/system-activities';
import type { TurnResult } from '../../src/core/turn-api';
import type { KvEntry } from '../../src/core/turn-types';
import type { HistoryEvent, OrchestratorWorkItem } from '../../src/core/types';
import { Sim, outcomeOf, type Handlers } from './harness';

/** A small deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Outstanding =
  | { kind: 'activity'; id: number; name: string; input: string }
  | { kind: 'timer'; id: number }
  | { kind: 'sub'; id: number; name: string; input: string }
  | { kind: 'event'; id: number; name: string }
  | { kind: 'queue'; id: number; name: string };

/** Environment state of one run: how many times each activity name was attempted. */
interface Env {
  attempts: Map<string, number>;
  raised: number;
}

/** The answer to one outstanding item. Activities named `Fail*` fail; `Flaky*` fail on their first attempt. */
function answer(sim: Sim, env: Env, item: Outstanding): OrchestratorWorkItem {
  switch (item.kind) {
    case 'activity': {
      if (item.name === SYSCALL_UTC_NOW_MS) return sim.done(item.id, '1700000000123', true);
      if (item.name === SYSCALL_NEW_GUID)
        return sim.done(item.id, `0000000${item.id}-0000-0000-0000-000000000000`.slice(-36), true);
      if (item.name === SYSCALL_GET_KV_VALUE) return sim.done(item.id, JSON.stringify(`kv:${item.input}`), true);
      const attempt = (env.attempts.get(item.name) ?? 0) + 1;
      env.attempts.set(item.name, attempt);
      if (item.name.startsWith('Fail') || (item.name.startsWith('Flaky') && attempt === 1))
        return sim.failed(item.id, `boom:${item.name}`);
      return sim.done(item.id, `${item.name}(${item.input})`);
    }
    case 'timer':
      return sim.fired(item.id);
    case 'sub':
      return item.name.startsWith('Fail')
        ? sim.subFailed(item.id, `child failed:${item.name}`)
        : sim.subDone(item.id, `child:${item.name}(${item.input})`);
    case 'event':
      return sim.raise(item.name, `event:${item.name}:${++env.raised}`);
    case 'queue':
      return sim.enqueue(item.name, `message:${item.name}:${++env.raised}`);
  }
}

/** What a turn left outstanding for the environment to answer. */
function collect(sim: Sim, result: TurnResult, outstanding: Outstanding[]): void {
  if (result.kind !== 'ack') return;
  const { ack } = result;
  for (const w of ack.workerItems) outstanding.push({ kind: 'activity', id: w.id, name: w.name, input: w.input });
  for (const o of ack.orchestratorItems) {
    if (o.type === 'TimerFired') outstanding.push({ kind: 'timer', id: o.id });
    else if (o.type === 'StartOrchestration' && o.parentInstance === sim.instanceId && o.parentId !== null) {
      outstanding.push({ kind: 'sub', id: o.parentId, name: o.orchestration, input: o.input });
    }
  }
  const cancelled = new Set(ack.cancelledActivities.map((c) => c.activityId));
  for (const event of ack.historyDelta) {
    if (event.kind === 'ExternalSubscribed') outstanding.push({ kind: 'event', id: event.eventId, name: event.name });
    else if (event.kind === 'QueueSubscribed') outstanding.push({ kind: 'queue', id: event.eventId, name: event.name });
    else if (
      (event.kind === 'ExternalSubscribedCancelled' ||
        event.kind === 'QueueSubscriptionCancelled' ||
        event.kind === 'SubOrchestrationCancelRequested') &&
      event.sourceEventId !== undefined
    ) {
      cancelled.add(event.sourceEventId);
    }
  }
  for (let i = outstanding.length - 1; i >= 0; i--) if (cancelled.has(outstanding[i].id)) outstanding.splice(i, 1);
}

/** The state a turn starts from, to replay a turn with another handler. */
export interface Snapshot {
  history: HistoryEvent[];
  executionId: number;
  kv: Record<string, KvEntry>;
  customStatus: string | null;
  nowMs: number;
}

export interface Run {
  outcome: string;
  history: HistoryEvent[];
  /** Every execution's history, in order (continue-as-new starts a new one). */
  executions: HistoryEvent[][];
  /** Message batch of each turn, and the state before it. */
  turns: Array<{ before: Snapshot; messages: OrchestratorWorkItem[]; delta: HistoryEvent[] }>;
  sim: Sim;
}

export interface RunOptions {
  seed?: number;
  /** Largest number of answers delivered in one turn (1 = one completion per turn). */
  maxBatch?: number;
  /** Turn limit (a safety net against runaway programs). */
  maxTurns?: number;
}

const TERMINAL = new Set(['OrchestrationCompleted', 'OrchestrationFailed']);

/** Runs `name` to a terminal state (or until nothing is left to answer). */
export async function runToEnd(
  handlers: Handlers,
  name: string,
  input: unknown,
  options: RunOptions = {},
): Promise<Run> {
  const random = rng(options.seed ?? 1);
  const maxBatch = options.maxBatch ?? 1;
  const sim = new Sim(handlers);
  const env: Env = { attempts: new Map(), raised: 0 };
  const outstanding: Outstanding[] = [];
  const turns: Run['turns'] = [];
  const executions: HistoryEvent[][] = [];
  let messages: OrchestratorWorkItem[] = [sim.start(name, input)];
  let outcome = 'stuck';
  for (let turn = 0; turn < (options.maxTurns ?? 500); turn++) {
    const before: Snapshot = {
      history: sim.history,
      executionId: sim.executionId,
      kv: { ...sim.kv },
      customStatus: sim.customStatus,
      nowMs: sim.nowMs,
    };
    const result = await sim.turnAsync(messages);
    if (sim.executionId !== before.executionId) executions.push(before.history);
    turns.push({ before, messages, delta: result.kind === 'ack' ? result.ack.historyDelta : [] });
    outcome = outcomeOf(result);
    collect(sim, result, outstanding);
    if (result.kind === 'ack' && result.outcome.kind === 'continuedAsNew') {
      // The next execution starts from the ContinueAsNew message the turn queued.
      messages = result.ack.orchestratorItems.filter((m) => m.type === 'ContinueAsNew');
      outstanding.length = 0;
      sim.nowMs += 1000;
      continue;
    }
    if (sim.history.some((e) => TERMINAL.has(e.kind)) || outstanding.length === 0) break;
    const count = 1 + Math.floor(random() * Math.min(maxBatch, outstanding.length));
    messages = [];
    for (let i = 0; i < count; i++) {
      const [item] = outstanding.splice(Math.floor(random() * outstanding.length), 1);
      messages.push(answer(sim, env, item));
    }
    sim.nowMs += 1000;
  }
  executions.push(sim.history);
  return { outcome, history: sim.history, executions, turns, sim };
}

/** The first line of a text: failure messages of thrown errors end with a stack that names the code's own frames. */
export function firstLine(text: string): string {
  return text.split('\n')[0];
}

/** An event without what only the clock decides (timestamps, writer version) and without stack frames. */
export function normalise(event: HistoryEvent): Record<string, unknown> {
  const { timestampMs: _t, duroxVersion: _v, ...rest } = event;
  if (rest.kind === 'OrchestrationFailed' && rest.details.category === 'application') {
    return { ...rest, details: { ...rest.details, message: firstLine(rest.details.message) } };
  }
  return rest;
}

/** Asserts that two runs wrote the same histories, event by event. */
export function assertSameHistory(a: Run, b: Run, label: string): void {
  assert.equal(firstLine(a.outcome), firstLine(b.outcome), `${label}: outcome`);
  assert.equal(a.executions.length, b.executions.length, `${label}: executions`);
  a.executions.forEach((history, i) =>
    assert.deepEqual(b.executions[i].map(normalise), history.map(normalise), `${label}: history of execution ${i + 1}`),
  );
}

/**
 * Replays every turn of `recorded` with `handlers` instead of the ones that wrote it: each turn
 * starts from the recorded state and must append exactly the recorded events.
 */
export async function assertReplays(recorded: Run, handlers: Handlers, label: string): Promise<void> {
  for (const [index, turn] of recorded.turns.entries()) {
    const sim = new Sim(handlers);
    sim.history = turn.before.history;
    sim.executionId = turn.before.executionId;
    sim.kv = turn.before.kv;
    sim.customStatus = turn.before.customStatus;
    sim.nowMs = turn.before.nowMs;
    const result = await sim.turnAsync(turn.messages);
    assert.equal(result.kind, 'ack', `${label}: turn ${index + 1} acknowledged`);
    const delta = result.kind === 'ack' ? result.ack.historyDelta : [];
    assert.deepEqual(
      delta.map(normalise),
      turn.delta.map(normalise),
      `${label}: turn ${index + 1} replays the recorded events`,
    );
  }
}

/** Events a terminal turn writes because it is terminal, not because the code asked. */
function terminalOnly(event: HistoryEvent): boolean {
  const reason = (event as { reason?: unknown }).reason;
  return TERMINAL.has(event.kind) || (typeof reason === 'string' && reason.startsWith('orchestration_terminal'));
}

const DELIVERIES = new Set([
  'ActivityCompleted',
  'ActivityFailed',
  'TimerFired',
  'SubOrchestrationCompleted',
  'SubOrchestrationFailed',
  'ExternalEvent',
  'QueueEventDelivered',
]);

/**
 * Replays a finished history in a single turn: everything up to the last delivery is persisted
 * and no message comes in, so every delivery is applied during one replay. The code must reach
 * the same end and write exactly what the last turn of the recorded run wrote.
 */
export async function replayInOneTurn(recorded: Run, handlers: Handlers): Promise<string> {
  const sim = new Sim(handlers);
  const last = recorded.executions[recorded.executions.length - 1];
  let cut = last.length;
  // OrchestrationStarted stays persisted even when the code finished without any delivery.
  while (cut > 1 && !DELIVERIES.has(last[cut - 1].kind)) cut--;
  sim.history = last.slice(0, cut);
  sim.executionId = last[0].executionId;
  sim.nowMs = recorded.turns[recorded.turns.length - 1].before.nowMs;
  const result = await sim.turnAsync([]);
  const written = sim.history
    .slice(cut)
    .filter((e) => !terminalOnly(e))
    .map(normalise);
  assert.deepEqual(
    written,
    last
      .slice(cut)
      .filter((e) => !terminalOnly(e))
      .map(normalise),
    'replaying the whole history writes what the last turn wrote',
  );
  return outcomeOf(result);
}

/** What a delivery answers, independent of event ids: `kind|name|input#occurrence`. */
function deliveryKey(history: HistoryEvent[], message: OrchestratorWorkItem, raisedSoFar: Map<string, number>): string {
  const occurrence = (target: HistoryEvent, same: (e: HistoryEvent) => boolean): number =>
    history.filter((e) => e.eventId < target.eventId && same(e)).length;
  const byId = (id: number): HistoryEvent => history.find((e) => e.eventId === id)!;
  switch (message.type) {
    case 'ActivityCompleted':
    case 'ActivityFailed': {
      const s = byId(message.id) as HistoryEvent & { name: string; input: string };
      return `activity|${s.name}|${s.input}#${occurrence(s, (e) => e.kind === 'ActivityScheduled' && e.name === s.name && e.input === s.input)}`;
    }
    case 'TimerFired':
      return `timer#${occurrence(byId(message.id), (e) => e.kind === 'TimerCreated')}`;
    case 'SubOrchCompleted':
    case 'SubOrchFailed': {
      const s = byId(message.parentId) as HistoryEvent & { name: string; input: string };
      return `sub|${s.name}|${s.input}#${occurrence(s, (e) => e.kind === 'SubOrchestrationScheduled' && e.name === s.name && e.input === s.input)}`;
    }
    case 'ExternalRaised':
    case 'QueueMessage': {
      const key = `${message.type}|${message.name}`;
      const n = raisedSoFar.get(key) ?? 0;
      raisedSoFar.set(key, n + 1);
      return `${key}#${n}`;
    }
    default:
      throw new Error(`no key for ${message.type}`);
  }
}

/** The delivery for `key` against the current history, or null while its schedule is not there yet. */
function messageFor(sim: Sim, key: string, template: OrchestratorWorkItem): OrchestratorWorkItem | null {
  const [what, occurrenceText] = key.split('#') as [string, string];
  const occurrence = Number(occurrenceText);
  const [, name, input] = what.split('|');
  const nth = (match: (e: HistoryEvent) => boolean): HistoryEvent | undefined => sim.history.filter(match)[occurrence];
  switch (template.type) {
    case 'ActivityCompleted':
    case 'ActivityFailed': {
      const s = nth((e) => e.kind === 'ActivityScheduled' && `activity|${e.name}|${e.input}` === what);
      return s === undefined ? null : { ...template, id: s.eventId };
    }
    case 'TimerFired': {
      const s = nth((e) => e.kind === 'TimerCreated');
      return s === undefined || s.kind !== 'TimerCreated' ? null : { ...template, id: s.eventId, fireAtMs: s.fireAtMs };
    }
    case 'SubOrchCompleted':
    case 'SubOrchFailed': {
      const s = nth((e) => e.kind === 'SubOrchestrationScheduled' && e.name === name && e.input === input);
      return s === undefined ? null : { ...template, parentId: s.eventId };
    }
    case 'ExternalRaised': {
      // Raised only while a recorded subscription waits for it, as in the recorded run (an event
      // with no waiting subscription is dropped by design, whatever the grouping).
      const cancelled = new Set(
        sim.history.filter((e) => e.kind === 'ExternalSubscribedCancelled').map((e) => e.sourceEventId),
      );
      const waiting = sim.history.filter(
        (e) => e.kind === 'ExternalSubscribed' && e.name === name && !cancelled.has(e.eventId),
      ).length;
      const delivered = sim.history.filter((e) => e.kind === 'ExternalEvent' && e.name === name).length;
      return waiting > delivered ? template : null;
    }
    case 'QueueMessage':
      return nth((e) => e.kind === 'QueueSubscribed' && e.name === name) === undefined ? null : template;
    default:
      return null;
  }
}

/**
 * Runs `recorded` again with `handlers`, delivering the same completions in the same order but
 * grouped into turns differently (up to `maxBatch` per turn, as many as already have their
 * schedule). Returns the new run; a delivery whose schedule never appears fails the test.
 */
export async function replayRegrouped(recorded: Run, handlers: Handlers, seed: number, maxBatch: number): Promise<Run> {
  const random = rng(seed);
  const raised = new Map<string, number>();
  const deliveries: Array<{ key: string; template: OrchestratorWorkItem }> = [];
  for (const turn of recorded.turns.slice(1)) {
    for (const message of turn.messages)
      deliveries.push({ key: deliveryKey(turn.before.history, message, raised), template: message });
  }
  const sim = new Sim(handlers);
  const turns: Run['turns'] = [];
  let messages: OrchestratorWorkItem[] = [recorded.turns[0].messages[0]];
  let outcome: string;
  for (;;) {
    const before: Snapshot = {
      history: sim.history,
      executionId: sim.executionId,
      kv: { ...sim.kv },
      customStatus: sim.customStatus,
      nowMs: sim.nowMs,
    };
    const result = await sim.turnAsync(messages);
    turns.push({ before, messages, delta: result.kind === 'ack' ? result.ack.historyDelta : [] });
    outcome = outcomeOf(result);
    if (deliveries.length === 0 || sim.history.some((e) => TERMINAL.has(e.kind))) break;
    const wanted = 1 + Math.floor(random() * maxBatch);
    messages = [];
    while (messages.length < wanted && deliveries.length > 0) {
      // An external event goes to whichever subscription waits when it is applied, so it opens a
      // group: a delivery before it in the same turn could change who waits (by design of events).
      if (messages.length > 0 && deliveries[0].template.type === 'ExternalRaised') break;
      const message = messageFor(sim, deliveries[0].key, deliveries[0].template);
      if (message === null) break;
      messages.push(message);
      deliveries.shift();
    }
    assert.ok(messages.length > 0, `the schedule of ${deliveries[0]?.key} never appeared: the regrouped run diverged`);
    sim.nowMs += 1000;
  }
  return { outcome, history: sim.history, executions: [sim.history], turns, sim };
}

/** The schedule and side-effect events of a history, without ids: the order the code asked for things. */
export function actionsOf(history: HistoryEvent[]): string[] {
  return history
    .filter((e) =>
      [
        'ActivityScheduled',
        'TimerCreated',
        'ExternalSubscribed',
        'QueueSubscribed',
        'SubOrchestrationScheduled',
        'OrchestrationChained',
        'CustomStatusUpdated',
        'KeyValueSet',
      ].includes(e.kind),
    )
    .map((e) => {
      const {
        eventId: _e,
        timestampMs: _t,
        duroxVersion: _v,
        fireAtMs: _f,
        instance: _i,
        lastUpdatedAtMs: _l,
        ...rest
      } = e as HistoryEvent & { fireAtMs?: number; instance?: string; lastUpdatedAtMs?: number };
      return JSON.stringify(rest);
    });
}
