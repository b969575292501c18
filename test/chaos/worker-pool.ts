/**
 * Worker processes for the chaos tests: starts N copies of worker-process.js on one schema, kills
 * them with SIGKILL (or stops them with SIGSTOP) on request and restarts them, and keeps track of
 * the activities and turns each one had in flight from the lines it prints.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

interface Worker {
  slot: number;
  child: ChildProcess;
  ready: Promise<void>;
  inFlight: Set<string>;
  turnsInFlight: Set<string>;
  exited: Promise<void>;
}

/** What one kill hit. */
export interface KillRecord {
  slot: number;
  activitiesInFlight: number;
  turnsInFlight: number;
}

export class WorkerPool {
  private readonly workers: Worker[] = [];
  readonly kills: KillRecord[] = [];
  /** stderr of workers that exited on their own (a crash that is not ours). */
  readonly unexpectedExits: string[] = [];
  private stopping = false;

  constructor(
    private readonly databaseUrl: string,
    private readonly schema: string,
    private readonly script = join(__dirname, 'worker-process.js'),
  ) {}

  /** Starts `count` workers and waits until each has started its runtime. */
  async start(count: number): Promise<void> {
    for (let slot = 0; slot < count; slot += 1) this.workers.push(this.spawnWorker(slot));
    await Promise.all(this.workers.map((w) => w.ready));
  }

  private spawnWorker(slot: number): Worker {
    const child = spawn(process.execPath, [this.script, this.databaseUrl, this.schema], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const inFlight = new Set<string>();
    const turnsInFlight = new Set<string>();
    let stderr = '';
    let buffer = '';
    let markReady: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => (markReady = resolve));
    child.stdout?.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop() ?? '';
      for (const line of lines) {
        if (line === 'ready') markReady();
        else if (line.startsWith('activity+ ')) inFlight.add(line.slice(10));
        else if (line.startsWith('activity- ')) inFlight.delete(line.slice(10));
        else if (line.startsWith('turn+ ')) turnsInFlight.add(line.slice(6));
        else if (line.startsWith('turn- ')) turnsInFlight.delete(line.slice(6));
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<void>((resolve) =>
      child.on('exit', (code, signal) => {
        markReady();
        if (signal !== 'SIGKILL' && !this.stopping)
          this.unexpectedExits.push(`worker ${slot} exited (${code ?? signal}): ${stderr.slice(-2000)}`);
        resolve();
      }),
    );
    return { slot, child, ready, inFlight, turnsInFlight, exited };
  }

  /** SIGKILLs a random worker, waits for it to die and starts a replacement in its slot. */
  async killRandom(): Promise<KillRecord> {
    const slot = Math.floor(Math.random() * this.workers.length);
    const worker = this.workers[slot];
    const record = { slot, activitiesInFlight: worker.inFlight.size, turnsInFlight: worker.turnsInFlight.size };
    worker.child.kill('SIGKILL');
    await worker.exited;
    this.kills.push(record);
    const replacement = this.spawnWorker(slot);
    this.workers[slot] = replacement;
    await replacement.ready;
    return record;
  }

  /** Kills every worker (end of test). */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const worker of this.workers) worker.child.kill('SIGKILL');
    await Promise.all(this.workers.map((w) => w.exited));
  }
}
