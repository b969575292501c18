/**
 * Random orchestration programs for the property tests: trees of sequence, parallel and race
 * over activities, timers, events and sub-orchestrations, turned into a generator and an async
 * function that ask for the same things in the same order.
 */
import fc from 'fast-check';
import type { AsyncOrchestrationContext } from '../../src/core/async-context';
import type { ScheduledTask } from '../../src/core/descriptors';
import type { OrchestrationContext } from '../../src/core/orchestration-context';
import type { Untyped } from '../../src/core/turn-api';

export type Leaf =
  | { t: 'act'; name: string; input: number }
  | { t: 'timer'; ms: number }
  | { t: 'event'; name: string }
  | { t: 'sub'; name: string; input: number };

export type Node =
  Leaf | { t: 'seq'; children: Node[] } | { t: 'par'; children: Node[] } | { t: 'race'; a: Leaf; b: Leaf };

export const leaf: fc.Arbitrary<Leaf> = fc.oneof(
  fc.record({
    t: fc.constant('act' as const),
    name: fc.constantFrom('A', 'B', 'FailC'),
    input: fc.integer({ min: 0, max: 2 }),
  }),
  fc.record({ t: fc.constant('timer' as const), ms: fc.integer({ min: 0, max: 50 }) }),
  fc.record({ t: fc.constant('event' as const), name: fc.constantFrom('e1', 'e2') }),
  fc.record({
    t: fc.constant('sub' as const),
    name: fc.constantFrom('Child', 'FailChild'),
    input: fc.integer({ min: 0, max: 2 }),
  }),
);

/**
 * Programs both forms can express: `par` and `race` over single tasks (a generator cannot run
 * multi-step branches in parallel; `branchy` adds those for async-only properties).
 */
export function programs(branchy: boolean): fc.Arbitrary<Node> {
  const tree = fc.letrec<{ node: Node; seq: Node; par: Node; race: Node }>((tie) => ({
    node: fc.oneof({ depthSize: 'small', maxDepth: 3 }, leaf, tie('seq'), tie('par'), tie('race')),
    seq: fc.record({ t: fc.constant('seq' as const), children: fc.array(tie('node'), { minLength: 1, maxLength: 4 }) }),
    par: fc.record({
      t: fc.constant('par' as const),
      children: fc.array(branchy ? tie('node') : leaf, { minLength: 0, maxLength: 4 }),
    }),
    race: fc.record({ t: fc.constant('race' as const), a: leaf, b: leaf }),
  }));
  return tree.node;
}

type AnyCtx = OrchestrationContext | AsyncOrchestrationContext;

function task(ctx: AnyCtx, node: Leaf): ScheduledTask {
  switch (node.t) {
    case 'act':
      return ctx.scheduleActivity(node.name, node.input);
    case 'timer':
      return ctx.scheduleTimer(node.ms);
    case 'event':
      return ctx.waitForEvent(node.name);
    case 'sub':
      return ctx.scheduleSubOrchestration(node.name, node.input);
  }
}

const isLeaf = (node: Node): node is Leaf => node.t !== 'seq' && node.t !== 'par' && node.t !== 'race';

/** The generator form of a program. */
export function generatorOf(program: Node): (ctx: OrchestrationContext) => Generator<unknown, unknown, Untyped> {
  function* run(ctx: OrchestrationContext, node: Node): Generator<unknown, unknown, Untyped> {
    if (isLeaf(node)) {
      try {
        return yield task(ctx, node);
      } catch (e) {
        return `err:${(e as Error).message}`;
      }
    }
    if (node.t === 'seq') {
      const out = [];
      for (const child of node.children) out.push(yield* run(ctx, child));
      return out;
    }
    if (node.t === 'race') return yield ctx.race(task(ctx, node.a), task(ctx, node.b));
    return yield ctx.all(node.children.map((child) => task(ctx, child as Leaf)));
  }
  return function* program_(ctx) {
    return yield* run(ctx, program);
  };
}

/** The async form of a program; `branchy` programs run multi-step branches with Promise.all. */
export function asyncOf(program: Node): (ctx: AsyncOrchestrationContext) => Promise<unknown> {
  async function run(ctx: AsyncOrchestrationContext, node: Node): Promise<unknown> {
    if (isLeaf(node)) {
      try {
        return await task(ctx, node);
      } catch (e) {
        return `err:${(e as Error).message}`;
      }
    }
    if (node.t === 'seq') {
      const out = [];
      for (const child of node.children) out.push(await run(ctx, child));
      return out;
    }
    if (node.t === 'race') return ctx.race(task(ctx, node.a), task(ctx, node.b));
    if (node.children.every(isLeaf)) return ctx.all(node.children.map((child) => task(ctx, child)));
    return Promise.all(node.children.map((child) => run(ctx, child)));
  }
  return async (ctx) => run(ctx, program);
}
