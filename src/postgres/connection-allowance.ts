/**
 * How many pooled connections may be in use at once: a few to begin with, more only when waiting
 * callers show that another connection is worth its cost. Every new connection costs PostgreSQL a
 * backend whose first calls compile and plan each procedure they run (about 100 ms of CPU for the
 * procedures of one orchestration), and on a database with few cores more concurrent backends
 * only contend: when a burst of 40 orchestrations opened all 10 connections of the pool on this
 * project's 2-core machine, the database spent 17-18 ms of CPU per orchestration, with 4 about 10.
 *
 * A caller that waits does not by itself mean the pool is too small: a burst of quick calls drains
 * on a few connections. Two things do, and grow the allowance up to the pool's maximum (the hard
 * limit, DUROXIDE_PG_POOL_MAX):
 * - calls that hold their connection long (a distant database, where every call waits a round
 *   trip, or blocking calls): once the oldest caller has waited `growAfterMs`, the allowance grows
 *   by every caller that has waited that long;
 * - a caller starved for `starvedAfterMs` (sustained load on quick calls): one more connection,
 *   again each time a caller has waited that long.
 */
interface Waiter {
  since: number;
  admit: () => void;
}

export interface AllowanceSettings {
  /** The pool's maximum: the allowance never exceeds it. */
  max: number;
  /** Connections allowed from the start. */
  initial: number;
  /** A wait after which callers of slow calls get more connections. */
  growAfterMs: number;
  /** Time even the quickest recent calls hold their connection when calls count as slow. */
  slowHoldMs: number;
  /** A wait after which one more connection is allowed whatever the calls' speed. */
  starvedAfterMs: number;
}

/** Hold times remembered: the shortest of them tells a distant database from a busy one. */
const RECENT_HOLDS = 16;

export class ConnectionAllowance {
  private inUse = 0;
  private allowed: number;
  private readonly recentHoldsMs: number[] = new Array<number>(RECENT_HOLDS).fill(0);
  private holds = 0;
  /** When a starved caller last added a connection. */
  private lastStarvedGrowth = 0;
  private readonly waiters: Waiter[] = [];
  private growth: NodeJS.Timeout | undefined;

  constructor(private readonly settings: AllowanceSettings) {
    this.allowed = Math.max(1, Math.min(settings.max, settings.initial));
  }

  /** Connections that may be in use now (grows, never shrinks; for diagnostics and tests). */
  get current(): number {
    return this.allowed;
  }

  /** Resolves when the caller may take a connection, with the function to call once it is given back. */
  async acquire(): Promise<() => void> {
    if (this.inUse < this.allowed && this.waiters.length === 0) this.inUse += 1;
    else
      await new Promise<void>((resolve) => {
        this.waiters.push({ since: Date.now(), admit: resolve });
        this.armGrowth();
      });
    const taken = Date.now();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.recentHoldsMs[this.holds++ % this.recentHoldsMs.length] = Date.now() - taken;
      this.inUse -= 1;
      this.admitWaiting();
    };
  }

  /** Lets every waiting caller through (the pool is closing: their connect fails at once). */
  openAll(): void {
    this.allowed = Number.MAX_SAFE_INTEGER;
    this.admitWaiting();
  }

  private admitWaiting(): void {
    while (this.inUse < this.allowed && this.waiters.length > 0) {
      this.inUse += 1;
      this.waiters.shift()?.admit();
    }
    if (this.waiters.length === 0 && this.growth !== undefined) {
      clearTimeout(this.growth);
      this.growth = undefined;
    }
  }

  /**
   * Whether even the quickest recent calls held their connection `slowHoldMs`: then every call
   * waits for something other than the database's CPU (a round trip to a distant server), and more
   * connections mean more throughput. The quickest, not the average: a new connection's first
   * calls are slow on a near database too (PostgreSQL compiles and plans what they run), and a
   * busy near database still answers some calls quickly. Also read by the runtime's call batchers
   * (through `Provider.callsAreSlow`): waiting to share a call pays only where calls are quick.
   */
  callsAreSlow(): boolean {
    if (this.holds < RECENT_HOLDS / 4) return false;
    const known = this.recentHoldsMs.slice(0, Math.min(this.holds, RECENT_HOLDS));
    return Math.min(...known) >= this.settings.slowHoldMs;
  }

  /**
   * Wakes when the oldest waiter has waited long enough to grow the allowance, and grows it. A
   * starved caller adds one connection per `starvedAfterMs`, however many starve together.
   */
  private armGrowth(): void {
    if (this.growth !== undefined || this.allowed >= this.settings.max || this.waiters.length === 0) return;
    const { growAfterMs, starvedAfterMs } = this.settings;
    const slow = this.callsAreSlow();
    const due = slow
      ? this.waiters[0].since + growAfterMs
      : Math.max(this.waiters[0].since, this.lastStarvedGrowth) + starvedAfterMs;
    this.growth = setTimeout(
      () => {
        this.growth = undefined;
        const now = Date.now();
        const first = this.waiters[0];
        if (first === undefined) return;
        if (this.callsAreSlow()) {
          // At least the oldest waiter, whose wait armed this timer.
          const waitedLong = this.waiters.filter((waiter) => now - waiter.since >= growAfterMs).length;
          this.allowed = Math.min(this.settings.max, this.allowed + Math.max(1, waitedLong));
        } else if (now >= Math.max(first.since, this.lastStarvedGrowth) + starvedAfterMs) {
          this.allowed += 1;
          this.lastStarvedGrowth = now;
        }
        this.admitWaiting();
        this.armGrowth();
      },
      Math.max(0, due - Date.now()),
    );
  }
}
