/**
 * /metrics for a process that runs a Runtime without the dashboard: a bare node:http server
 * answering GET /metrics with the exposition text of a {@link DuroxMetrics}.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DuroxMetrics } from './prometheus';

/** A listening metrics endpoint. */
export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

/** Serves `metrics` at `http://host:port/metrics` (default 127.0.0.1, port 0 = any free port). */
export async function startMetricsServer(
  metrics: DuroxMetrics,
  options: { host?: string; port?: number } = {},
): Promise<MetricsServer> {
  const server = createServer((request, response) => {
    if (request.method !== 'GET' || (request.url ?? '').split('?')[0] !== '/metrics') {
      response
        .writeHead(404, { 'content-type': 'text/plain; charset=utf-8' })
        .end('not found: only GET /metrics is served\n');
      return;
    }
    metrics.text().then(
      (text) => response.writeHead(200, { 'content-type': metrics.contentType }).end(text),
      (error: unknown) =>
        response
          .writeHead(500, { 'content-type': 'text/plain; charset=utf-8' })
          .end(`metrics collection failed: ${error instanceof Error ? error.message : String(error)}\n`),
    );
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/metrics`,
    close: () => new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve()))),
  };
}
