/**
 * The Durox web dashboard: HTML pages, a JSON API and Prometheus metrics over one Client (it never
 * talks to a provider or to SQL). Served by Hono on Node's HTTP server, 127.0.0.1 by default.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { getCookie, setCookie } from 'hono/cookie';
import { secureHeaders } from 'hono/secure-headers';
import type { Client } from '../client/client';
import { loadInstanceDetails, resolveExecution } from '../operator/details';
import { httpStatusOf, notFoundError, usageError } from '../operator/errors';
import { parseInteger, parseStatus, parseTime } from '../operator/parsing';
import { timeline } from '../operator/timeline';
import type { DuroxMetrics } from '../observability/prometheus';
import { DASHBOARD_CSS, DASHBOARD_JS } from './assets';
import { errorBody, page, type PageFrame } from './html';
import { instanceBody, instancesBody, loginBody, overviewBody, type ListFormValues } from './pages';
import { registerScheduleRoutes } from './schedules-page';
import { registerLimitRoutes } from './limits-page';
import { CSRF_HEADER, DashboardSecurity, SESSION_COOKIE, crossSite } from './security';

/** Options of {@link createDashboard}. */
export interface DashboardOptions {
  /** Required for every request when set (Bearer header or the sign-in form); at least 8 characters. */
  token?: string;
  /** Refuse every action (cancel, raise, delete) with 403 and hide their buttons. */
  readOnly?: boolean;
  /** Served at /metrics when given (queue depths are read through the dashboard's Client). */
  metrics?: DuroxMetrics;
}

/** A listening dashboard. */
export interface RunningDashboard {
  /** A URL that reaches the dashboard from this machine (127.0.0.1 when bound to every interface). */
  url: string;
  /** The address actually listened on, e.g. `http://0.0.0.0:8080`. */
  listening: string;
  /** True when the address is reachable from other machines (not loopback). */
  beyondLoopback: boolean;
  close(): Promise<void>;
}

const HOUR_MS = 3_600_000;
const MINUTE_MS = 60_000;
const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const CHART_JS = join(dirname(require.resolve('chart.js')), 'chart.umd.min.js');

type Env = { Variables: { bearer: boolean } };

/** The statuses the dashboard answers with. */
type Status = 200 | 202 | 400 | 401 | 403 | 404 | 409 | 500 | 503;

/** HTTP status for an error of the Client, a provider or argument parsing (derived from its code). */
function statusOf(error: unknown): Status {
  return httpStatusOf(error) as Status;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isApi(path: string): boolean {
  return path.startsWith('/api/') || path === '/metrics';
}

/** The Hono application (exported for embedding in another server). */
export function createDashboard(
  client: Client,
  options: DashboardOptions = {},
  security = new DashboardSecurity(options.token),
): Hono<Env> {
  const readOnly = options.readOnly === true;
  const app = new Hono<Env>();
  const frame = (title: string, section: PageFrame['section']): PageFrame => ({
    title,
    section,
    readOnly,
    csrfToken: security.csrfToken,
  });
  const htmlPage = (
    c: Context,
    title: string,
    section: PageFrame['section'],
    body: Parameters<typeof page>[1],
    status: Status = 200,
  ) => c.html(page(frame(title, section), body), status);

  app.use(
    '*',
    secureHeaders({
      contentSecurityPolicy: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        frameAncestors: ["'none'"],
        formAction: ["'self'"],
      },
      referrerPolicy: 'no-referrer',
    }),
  );

  // Typed here: hono's `use` would type the request input as `any`.
  app.use('*', async (c: Context<Env, '*'>, next) => {
    if (!security.hostAllowed(c.req.header('host'))) return c.json({ error: 'unexpected Host header' }, 403);
    const path = c.req.path;
    if (path === '/healthz' || path.startsWith('/static/') || path === '/login') return next();
    const bearer = /^Bearer (.+)$/.exec(c.req.header('authorization') ?? '');
    c.set('bearer', bearer !== null);
    const authenticated =
      bearer !== null ? security.tokenMatches(bearer[1]) : security.sessionValid(getCookie(c, SESSION_COOKIE));
    if (!authenticated) {
      if (isApi(path) || bearer !== null)
        return c.json({ error: bearer === null ? 'a token is required' : 'wrong token' }, 401);
      return htmlPage(c, 'Sign in', 'login', loginBody(false), 401);
    }
    if (MUTATING.has(c.req.method)) {
      if (readOnly) return c.json({ error: 'the dashboard is read-only' }, 403);
      // A Bearer header is never sent by a browser on its own, so only cookie or anonymous requests can be forged.
      if (
        bearer === null &&
        (!security.csrfValid(c.req.header(CSRF_HEADER)) ||
          crossSite(c.req.header('origin'), c.req.header('sec-fetch-site'), c.req.header('host')))
      ) {
        return c.json({ error: 'cross-site request refused: missing or wrong X-Durox-Csrf header' }, 403);
      }
    }
    return next();
  });

  app.onError((error, c) => {
    const status = statusOf(error);
    if (isApi(c.req.path)) return c.json({ error: messageOf(error) }, status);
    return htmlPage(
      c,
      'Error',
      'instances',
      errorBody(status === 404 ? 'Not found' : 'Error', messageOf(error)),
      status,
    );
  });
  app.notFound((c) =>
    isApi(c.req.path)
      ? c.json({ error: `no route ${c.req.method} ${c.req.path}` }, 404)
      : htmlPage(c, 'Not found', 'overview', errorBody('Not found', `No page at ${c.req.path}`), 404),
  );

  // --- static files and sign-in -------------------------------------------------------------
  const chartJs = readFileSync(CHART_JS, 'utf8');
  const staticFile = (body: string, type: string) => (c: Context) =>
    c.body(body, 200, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'max-age=300' });
  app.get('/static/chart.umd.min.js', staticFile(chartJs, 'text/javascript'));
  app.get('/static/dashboard.js', staticFile(DASHBOARD_JS, 'text/javascript'));
  app.get('/static/dashboard.css', staticFile(DASHBOARD_CSS, 'text/css'));
  app.get('/healthz', (c) => c.json({ ok: true }));
  app.get('/login', (c) => htmlPage(c, 'Sign in', 'login', loginBody(false)));
  app.post('/login', bodyLimit({ maxSize: 4096 }), async (c) => {
    if (crossSite(c.req.header('origin'), c.req.header('sec-fetch-site'), c.req.header('host')))
      return c.json({ error: 'cross-site sign-in refused' }, 403);
    const form = await c.req.parseBody();
    const token = typeof form.token === 'string' ? form.token : undefined;
    if (!security.requiresToken || !security.tokenMatches(token))
      return htmlPage(c, 'Sign in', 'login', loginBody(true), 401);
    setCookie(c, SESSION_COOKIE, security.sessionValue(), { httpOnly: true, sameSite: 'Strict', path: '/' });
    return c.redirect('/', 303);
  });

  // --- pages ----------------------------------------------------------------------------------
  const overview = async () => {
    const now = Date.now();
    const [metrics, queues, throughput] = await Promise.all([
      client.getSystemMetrics(),
      client.getQueueDepths(),
      client.getThroughput(now - HOUR_MS, MINUTE_MS),
    ]);
    return { metrics, queues, throughput };
  };
  app.get('/', async (c) => {
    const o = await overview();
    return htmlPage(c, 'Overview', 'overview', overviewBody(o.metrics, o.queues, o.throughput));
  });
  app.get('/instances', async (c) => {
    const values = listValues(c);
    try {
      const result = await client.listInstancesPage(listFilter(values, c.req.query('cursor')));
      return htmlPage(c, 'Instances', 'instances', instancesBody(values, result, null));
    } catch (error) {
      const status = statusOf(error);
      if (status !== 400) throw error;
      return htmlPage(c, 'Instances', 'instances', instancesBody(values, null, messageOf(error)), 400);
    }
  });
  app.get('/instances/:id', async (c) => {
    const id = c.req.param('id');
    const details = await loadInstanceDetails(client, id);
    const requested = c.req.query('execution');
    const executionId = await resolveExecution(
      client,
      id,
      requested === undefined ? undefined : parseInteger('execution', requested, 1, Number.MAX_SAFE_INTEGER),
    );
    const events =
      executionId === details.info.currentExecutionId
        ? details.history
        : await client.readExecutionHistory(id, executionId);
    return htmlPage(c, `Instance ${id}`, 'instances', instanceBody(details, executionId, timeline(events), readOnly));
  });

  // --- JSON API -------------------------------------------------------------------------------
  app.get('/api/session', (c) => c.json({ csrfToken: security.csrfToken, readOnly }));
  app.get('/api/overview', async (c) => c.json(await overview()));
  app.get('/api/instances', async (c) =>
    c.json(await client.listInstancesPage(listFilter(listValues(c), c.req.query('cursor')))),
  );
  app.get('/api/instances/:id', async (c) => {
    const d = await loadInstanceDetails(client, c.req.param('id'));
    return c.json({ ...d, history: undefined });
  });
  app.get('/api/instances/:id/history', async (c) => {
    const id = c.req.param('id');
    const requested = c.req.query('execution');
    const executionId = await resolveExecution(
      client,
      id,
      requested === undefined ? undefined : parseInteger('execution', requested, 1, Number.MAX_SAFE_INTEGER),
    );
    return c.json({
      instanceId: id,
      executionId,
      events: timeline(await client.readExecutionHistory(id, executionId)),
    });
  });
  app.post('/api/instances/:id/cancel', bodyLimit({ maxSize: 65_536 }), async (c) => {
    const id = c.req.param('id');
    const body = await jsonBody(c);
    if (body.reason !== undefined && typeof body.reason !== 'string') throw usageError('reason must be a string');
    await requireExisting(client, id);
    await client.cancelInstance(id, body.reason ?? '');
    return c.json({ instanceId: id, cancelRequested: true }, 202);
  });
  app.post('/api/instances/:id/events', bodyLimit({ maxSize: 1_048_576 }), async (c) => {
    const id = c.req.param('id');
    const body = await jsonBody(c);
    if (typeof body.name !== 'string' || body.name === '') throw usageError('name must be a non-empty string');
    await requireExisting(client, id);
    await client.raiseEvent(id, body.name, body.data ?? null);
    return c.json({ instanceId: id, event: body.name, raised: true }, 202);
  });
  app.delete('/api/instances/:id', async (c) => {
    const force = c.req.query('force');
    if (force !== undefined && force !== 'true' && force !== 'false') throw usageError('force must be true or false');
    return c.json(await client.deleteInstance(c.req.param('id'), force === 'true'));
  });
  registerScheduleRoutes(app, client, { readOnly, page: (c, title, body) => htmlPage(c, title, 'schedules', body) });
  registerLimitRoutes(app, client, { page: (c, title, body) => htmlPage(c, title, 'limits', body) });
  app.get('/metrics', async (c) => {
    if (options.metrics === undefined) return c.json({ error: 'metrics are not enabled on this dashboard' }, 404);
    return c.body(await options.metrics.text(), 200, { 'content-type': options.metrics.contentType });
  });
  return app;
}

function listValues(c: Context): ListFormValues {
  const pick = (name: string): string | undefined => {
    const v = c.req.query(name);
    return v === undefined || v.trim() === '' ? undefined : v;
  };
  return {
    status: pick('status'),
    name: pick('name'),
    since: pick('since'),
    until: pick('until'),
    limit: pick('limit'),
  };
}

function listFilter(values: ListFormValues, cursor: string | undefined) {
  return {
    status: values.status === undefined ? undefined : parseStatus('status', values.status),
    orchestrationName: values.name,
    createdFrom: values.since === undefined ? undefined : parseTime('since', values.since),
    createdTo: values.until === undefined ? undefined : parseTime('until', values.until),
    limit: values.limit === undefined ? 50 : parseInteger('limit', values.limit, 1, 1000),
    cursor: cursor === undefined || cursor === '' ? undefined : cursor,
  };
}

async function jsonBody(c: Context): Promise<Record<string, unknown>> {
  if (!/^application\/json\b/i.test(c.req.header('content-type') ?? ''))
    throw usageError('the request body must be application/json');
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    throw usageError('the request body is not valid JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw usageError('the request body must be a JSON object');
  return body as Record<string, unknown>;
}

async function requireExisting(client: Client, id: string): Promise<void> {
  if ((await client.getStatus(id)).status === 'NotFound') throw notFoundError(`Instance ${id} not found`);
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || h === '::ffff:127.0.0.1';
}

/**
 * Starts the dashboard on `host:port` (default 127.0.0.1, port 0 = any free port).
 * Binding to a non-loopback address exposes it to the network: use a token then.
 */
export async function startDashboard(
  client: Client,
  options: DashboardOptions & { host?: string; port?: number } = {},
): Promise<RunningDashboard> {
  const host = options.host ?? '127.0.0.1';
  const security = new DashboardSecurity(options.token);
  const app = createDashboard(client, options, security);
  const boundToAll = host === '0.0.0.0' || host === '::';
  const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: options.port ?? 0, hostname: host }, () => resolve(s));
    s.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  security.allowHosts(host, port);
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${boundToAll ? '127.0.0.1' : shownHost}:${port}`,
    listening: `http://${shownHost}:${port}`,
    beyondLoopback: !isLoopback(host),
    close: () => new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve()))),
  };
}
