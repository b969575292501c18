/** `durox dashboard`: serves the web dashboard (and /metrics) until interrupted. */
import type { Command } from 'commander';
import { openStore, type ConnectionOptions } from '../operator/connection';
import { parseInteger } from '../operator/parsing';

/** Registers `dashboard` on `program` (the durox command line, see src/bin/durox.ts). */
export function registerDashboardCommand(program: Command): void {
  program
    .command('dashboard')
    .description('serve the web dashboard (127.0.0.1 only unless --host says otherwise)')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0 = any free port)', '8080')
    .option('--token <token>', 'require this token (default: $DUROX_DASHBOARD_TOKEN; none = no sign-in)')
    .option('--read-only', 'hide and refuse every action (cancel, raise, delete)')
    .action(async (_options: unknown, self: Command) => {
      const globals = self.optsWithGlobals<
        ConnectionOptions & { json: boolean; host: string; port: string; token?: string; readOnly?: boolean }
      >();
      const json = globals.json === true;
      const port = parseInteger('--port', globals.port, 0, 65_535);
      const token = globals.token ?? process.env.DUROX_DASHBOARD_TOKEN;
      // Loaded here so the other commands do not pay for the HTTP server and prom-client at start-up.
      const { startDashboard } = await import('./server');
      const { DuroxMetrics } = await import('../observability/prometheus');
      const store = await openStore(globals);
      const metrics = new DuroxMetrics().attachClient(store.client);
      try {
        const dashboard = await startDashboard(store.client, {
          host: globals.host,
          port,
          token,
          readOnly: globals.readOnly === true,
          metrics,
        });
        // Listen for the stop signals before the banner announces the dashboard: whoever reads
        // the banner may stop it at once.
        const stopped = new Promise<void>((resolve) => {
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        });
        const open = token === undefined && dashboard.beyondLoopback;
        if (open) {
          process.stderr.write(
            `durox: WARNING: the dashboard listens on ${dashboard.listening}, beyond this machine, without a token: ` +
              'anyone who can reach it can read every instance' +
              (globals.readOnly === true ? '' : ' and cancel, raise or delete') +
              '. Pass --token (or set DUROX_DASHBOARD_TOKEN), or listen on 127.0.0.1.\n',
          );
        }
        if (json) {
          printLine(
            JSON.stringify(
              {
                url: dashboard.url,
                listening: dashboard.listening,
                location: store.location,
                readOnly: globals.readOnly === true,
                token: token !== undefined,
              },
              null,
              2,
            ),
          );
        } else {
          const where =
            dashboard.listening === dashboard.url
              ? dashboard.url
              : `${dashboard.listening} (from this machine: ${dashboard.url})`;
          printLine(
            `Durox dashboard for ${store.location} listening on ${where}${token === undefined ? '' : ' (token required)'}`,
          );
        }
        await stopped;
        await dashboard.close();
      } finally {
        await store.close();
      }
    });
}

function printLine(text: string): void {
  process.stdout.write(`${text}\n`);
}
