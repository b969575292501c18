/**
 * A TCP proxy on 127.0.0.1 in front of PostgreSQL, for connection-loss tests: `cutAll()` resets
 * every open connection (as a network failure would), `refuse()` also closes the listening port
 * (a full outage: new connections are refused), `accept()` opens it again on the same port.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export class TcpProxy {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  /** Connections accepted since the start. */
  accepted = 0;

  private constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
    public port: number,
  ) {}

  /** Starts a proxy to `target` (a postgres:// URL) on a free port. */
  static async start(targetUrl: string): Promise<TcpProxy> {
    const target = new URL(targetUrl);
    const proxy = new TcpProxy(target.hostname, Number(target.port || 5432), 0);
    await proxy.accept();
    return proxy;
  }

  /** `url` rewritten to go through this proxy. */
  urlFor(url: string): string {
    const parsed = new URL(url);
    parsed.hostname = '127.0.0.1';
    parsed.port = String(this.port);
    return parsed.toString();
  }

  /** (Re)opens the listening port. */
  accept(): Promise<void> {
    if (this.server !== null) return Promise.resolve();
    const server = createServer((client) => this.pipe(client));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => {
        const address = server.address();
        if (typeof address === 'object' && address !== null) this.port = address.port;
        resolve();
      });
    });
  }

  private pipe(client: Socket): void {
    this.accepted += 1;
    const upstream = connect(this.targetPort, this.targetHost);
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        this.sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** Resets every open connection. */
  cutAll(): number {
    const count = this.sockets.size / 2;
    for (const socket of this.sockets) socket.resetAndDestroy();
    return count;
  }

  /** Stops accepting and cuts every open connection: the database looks down. */
  async refuse(): Promise<void> {
    const server = this.server;
    this.server = null;
    this.cutAll();
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async close(): Promise<void> {
    await this.refuse();
  }
}
