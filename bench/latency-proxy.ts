/**
 * A small TCP proxy on 127.0.0.1 in front of PostgreSQL that delays every chunk by a fixed time in
 * each direction (so a round trip costs 2 x delay more), and counts round trips at the wire:
 * every simple query ('Q') and every extended-protocol Sync ('S') the client sends.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

/** Parses the client -> server byte stream message by message (startup packet first). */
class FrontendCounter {
  private buffer: Buffer = Buffer.alloc(0);
  private started = false;

  constructor(private readonly onRoundTrip: () => void) {}

  feed(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    for (;;) {
      if (!this.started) {
        // Startup packet (or SSLRequest): int32 length, no type byte.
        if (this.buffer.length < 4) return;
        const length = this.buffer.readInt32BE(0);
        if (this.buffer.length < length) return;
        const code = this.buffer.readInt32BE(4);
        this.buffer = this.buffer.subarray(length);
        // 80877103 = SSLRequest, 80877104 = GSSENCRequest: another startup packet follows.
        if (code !== 80877103 && code !== 80877104) this.started = true;
        continue;
      }
      if (this.buffer.length < 5) return;
      const type = String.fromCharCode(this.buffer[0]);
      const length = this.buffer.readInt32BE(1);
      if (this.buffer.length < 1 + length) return;
      if (type === 'Q' || type === 'S') this.onRoundTrip();
      this.buffer = this.buffer.subarray(1 + length);
    }
  }
}

/** Forwards chunks in order, each `delayMs` after it arrived. */
function delayedPipe(from: Socket, to: Socket, delayMs: number, inspect?: (chunk: Buffer) => void): void {
  const queue: Array<{ at: number; chunk: Buffer }> = [];
  let timer: NodeJS.Timeout | null = null;
  const flush = (): void => {
    timer = null;
    const now = performance.now();
    while (queue.length > 0 && queue[0].at <= now) to.write(queue.shift()!.chunk);
    if (queue.length > 0) timer = setTimeout(flush, Math.max(0, queue[0].at - performance.now()));
  };
  from.on('data', (chunk: Buffer) => {
    inspect?.(chunk);
    if (delayMs <= 0) {
      to.write(chunk);
      return;
    }
    queue.push({ at: performance.now() + delayMs, chunk });
    if (timer === null) timer = setTimeout(flush, delayMs);
  });
  from.on('end', () => {
    const close = (): void => {
      if (queue.length > 0) setTimeout(close, delayMs);
      else to.end();
    };
    close();
  });
}

export class LatencyProxy {
  /** Round trips (Q + Sync messages) seen since start or the last {@link take}. */
  roundTrips = 0;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    /** The local port clients connect to. */
    readonly port: number,
  ) {}

  /** Starts a proxy to `target` ("host:port") adding `delayMs` each way. */
  static start(targetHost: string, targetPort: number, delayMs: number): Promise<LatencyProxy> {
    let proxy: LatencyProxy | undefined;
    const server = createServer((client) => {
      const upstream = connect(targetPort, targetHost);
      client.setNoDelay(true);
      upstream.setNoDelay(true);
      proxy?.sockets.add(client).add(upstream);
      const counter = new FrontendCounter(() => {
        if (proxy !== undefined) proxy.roundTrips += 1;
      });
      delayedPipe(client, upstream, delayMs, (chunk) => counter.feed(chunk));
      delayedPipe(upstream, client, delayMs);
      const drop = (): void => {
        client.destroy();
        upstream.destroy();
        proxy?.sockets.delete(client);
        proxy?.sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        if (address === null || typeof address === 'string') return reject(new Error('proxy has no port'));
        proxy = new LatencyProxy(server, address.port);
        resolve(proxy);
      });
    });
  }

  /** Round trips counted so far; resets the counter. */
  take(): number {
    const n = this.roundTrips;
    this.roundTrips = 0;
    return n;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
