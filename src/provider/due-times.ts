/**
 * When announced delayed items (timers, retries, abandons with a delay) become visible. A push
 * channel announces each one once; whoever starts listening later (a new subscriber of a live
 * channel, a worker pool that opens after the announcement) learns them from here.
 */
export class DueTimes {
  /** Absolute times (Date.now() scale), unsorted; past ones are dropped on each use. */
  private at: number[] = [];

  /** Remembers an item that becomes visible in `dueInMs`. */
  add(dueInMs: number, now = Date.now()): void {
    this.prune(now);
    this.at.push(now + dueInMs);
  }

  /** The remembered items not yet visible, as ms from now, soonest first. */
  pending(now = Date.now()): number[] {
    this.prune(now);
    return this.at.map((at) => at - now).sort((a, b) => a - b);
  }

  clear(): void {
    this.at = [];
  }

  private prune(now: number): void {
    this.at = this.at.filter((at) => at > now);
  }
}
