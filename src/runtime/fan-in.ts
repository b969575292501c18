/**
 * Fan-in of fused completions (docs/runtime.md, "Fan-in"): while a fused ack of an instance is
 * out, the completions of that instance that arrive wait here instead of each going its own
 * way, and go together in the instance's next fused turn, one call for all of them. A fan-out of
 * 100 activities then costs one turn per group of completions that arrived during the previous
 * call, and none of those completions is queued, fetched or read back from the store.
 */
import { MAX_COMPLETIONS_PER_FUSED_TURN } from '../core/limits';
import type { ActivityCompletionItem } from '../core/types';
import type { WorkItemLease } from '../provider/contract';

/** A completion waiting for its instance's fused ack in flight. */
export interface WaitingCompletion {
  lease: WorkItemLease;
  result: ActivityCompletionItem;
  /** Called once it is acknowledged, one way or the other. */
  done: () => void;
}

export class FanIn {
  /** Instances with a fused ack out, and the completions that arrived since. */
  private readonly waiting = new Map<string, WaitingCompletion[]>();

  /**
   * Joins the completion to its instance's next fused turn when a fused ack of the instance is
   * out: resolves once it is acknowledged. Null when none is out (the caller sends its own).
   */
  join(lease: WorkItemLease, result: ActivityCompletionItem): Promise<void> | null {
    const queue = this.waiting.get(result.instance);
    if (queue === undefined) return null;
    return new Promise((done) => queue.push({ lease, result, done }));
  }

  /** The caller sends a fused ack of `instance`: completions that arrive meanwhile join the next one. */
  begin(instance: string): void {
    this.waiting.set(instance, []);
  }

  /**
   * The fused ack of `instance` came back: the completions that waited (at most as many as one
   * turn runs on), for which the caller now sends the next one; none when nothing waited, and
   * then no fused ack of the instance is out any more.
   */
  next(instance: string): WaitingCompletion[] {
    const queue = this.waiting.get(instance) ?? [];
    if (queue.length === 0) {
      this.waiting.delete(instance);
      return [];
    }
    this.waiting.set(instance, queue.slice(MAX_COMPLETIONS_PER_FUSED_TURN));
    return queue.slice(0, MAX_COMPLETIONS_PER_FUSED_TURN);
  }

  /** No fused ack of `instance` goes out after all: everything that waited, to acknowledge plainly. */
  end(instance: string): WaitingCompletion[] {
    const queue = this.waiting.get(instance) ?? [];
    this.waiting.delete(instance);
    return queue;
  }
}
