/**
 * The demo's live progress line: counts by stage and orchestrations per second. On a terminal the
 * line is rewritten in place; when stdout is a file or a pipe, one line is printed per second so
 * logs stay readable.
 */

/** Stages an order goes through, as the demo observes them. */
export const STAGES = ['queued', 'running', 'awaiting-approval', 'completed', 'failed'] as const;
export type Stage = (typeof STAGES)[number];

export class ProgressTracker {
  private readonly stageOf = new Map<string, Stage>();
  private readonly startedAt = Date.now();
  private readonly finishedAt = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private lastLineLength = 0;

  constructor(
    private readonly out: NodeJS.WriteStream = process.stdout,
    private readonly label = 'orders',
  ) {}

  set(id: string, stage: Stage): void {
    this.stageOf.set(id, stage);
    if (stage === 'completed' || stage === 'failed') this.finishedAt.set(id, Date.now());
  }

  counts(): Record<Stage, number> {
    const counts = Object.fromEntries(STAGES.map((s) => [s, 0])) as Record<Stage, number>;
    for (const stage of this.stageOf.values()) counts[stage]++;
    return counts;
  }

  /** Finished orchestrations per second since the tracker was created. */
  rate(): number {
    const seconds = Math.max((Date.now() - this.startedAt) / 1000, 0.001);
    return this.finishedAt.size / seconds;
  }

  elapsedMs(): number {
    return Date.now() - this.startedAt;
  }

  line(): string {
    const c = this.counts();
    const parts = STAGES.map((s) => `${s} ${c[s]}`).join(' | ');
    return `${this.label}: ${parts} | ${this.rate().toFixed(1)} orch/s | ${(this.elapsedMs() / 1000).toFixed(1)} s`;
  }

  /** Starts refreshing: 10 times a second in place on a TTY, else one printed line per second. */
  start(): void {
    const tty = this.out.isTTY === true;
    this.timer = setInterval(() => this.render(tty), tty ? 100 : 1000);
    this.timer.unref();
  }

  /** Stops refreshing and leaves the final line on the screen. */
  stop(): void {
    clearInterval(this.timer);
    this.render(this.out.isTTY === true);
    if (this.out.isTTY === true) this.out.write('\n');
  }

  private render(tty: boolean): void {
    const text = this.line();
    if (tty) {
      this.out.write(`\r${text.padEnd(this.lastLineLength)}`);
      this.lastLineLength = text.length;
    } else {
      this.out.write(`${text}\n`);
    }
  }
}
