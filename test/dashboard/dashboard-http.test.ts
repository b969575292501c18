/**
 * The dashboard over real HTTP on a real schema: status codes, escaping of hostile ids and errors,
 * token sign-in, read-only mode, cross-site request protection and /metrics.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { startDashboard, type RunningDashboard } from '../../src/dashboard/server';
import { DuroxMetrics } from '../../src/observability/prometheus';
import { createOperatorsFixture, HOSTILE, type OperatorsFixture } from './fixture';

const TOKEN = 'correct-horse-battery';

async function session(base: string, init: RequestInit = {}): Promise<string> {
  const response = await fetch(`${base}/api/session`, init);
  assert.equal(response.status, 200);
  return ((await response.json()) as { csrfToken: string }).csrfToken;
}

function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

/** A raw request with a chosen Host header (fetch does not let callers set it). */
function withHost(url: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

function assertNoRawMarkup(body: string): void {
  assert.ok(!body.includes('<script>window.__pwned'), 'script from stored data reached the page unescaped');
  assert.ok(!body.includes('<img src=x'), 'markup from stored data reached the page unescaped');
}

describe('dashboard HTTP', () => {
  let f: OperatorsFixture;
  let open: RunningDashboard;
  let locked: RunningDashboard;
  let readOnly: RunningDashboard;
  before(async () => {
    f = await createOperatorsFixture('dash');
    open = await startDashboard(f.client, { metrics: new DuroxMetrics().attachClient(f.client) });
    locked = await startDashboard(f.client, { token: TOKEN });
    readOnly = await startDashboard(f.client, { readOnly: true });
  });
  after(async () => {
    await Promise.all([open.close(), locked.close(), readOnly.close()]);
    await f.close();
  });

  it('serves the overview with counts, the chart library and a strict content security policy', async () => {
    assert.match(open.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const response = await fetch(`${open.url}/`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
    const body = await response.text();
    assert.match(body, /data-testid="card-failed"><span class="card-value">2</);
    assert.match(body, /id="throughput-data">\[\{"bucketStart"/);
    const chart = await fetch(`${open.url}/static/chart.umd.min.js`);
    assert.equal(chart.status, 200);
    assert.match(await chart.text(), /Chart/);
    const overview = (await (await fetch(`${open.url}/api/overview`)).json()) as {
      metrics: { failedInstances: number };
      throughput: Array<{ started: number }>;
    };
    assert.equal(overview.metrics.failedInstances, 2);
    assert.ok(overview.throughput.reduce((n, b) => n + b.started, 0) >= 6);
  });

  it('lists with filters and escapes hostile ids and errors in the list and on the instance page', async () => {
    const list = await fetch(`${open.url}/instances?status=Failed`);
    assert.equal(list.status, 200);
    const body = await list.text();
    assertNoRawMarkup(body);
    assert.ok(body.includes('&#60;script&#62;window.__pwned=1&#60;/script&#62;'));
    assert.ok(body.includes(`>${f.ids.failed}</a>`));
    assert.ok(!body.includes(`>${f.ids.completed}</a>`));

    const page = await fetch(`${open.url}/instances/${encodeURIComponent(f.ids.hostile)}`);
    assert.equal(page.status, 200);
    const html = await page.text();
    assertNoRawMarkup(html);
    assert.match(html, /data-testid="instance-error">[^<]*&#60;img src=x onerror=&#34;window.__pwned=1&#34;&#62;/);
    assert.doesNotMatch(html, /instance-priority/, 'the default level is not shown');
    const parentPage = await (await fetch(`${open.url}/instances/${encodeURIComponent(f.ids.parent)}`)).text();
    assert.match(parentPage, /priority <span data-testid="instance-priority">3<\/span>/);

    const api = (await (await fetch(`${open.url}/api/instances?status=Failed&limit=1`)).json()) as {
      items: unknown[];
      nextCursor: string;
    };
    assert.equal(api.items.length, 1);
    const next = (await (
      await fetch(`${open.url}/api/instances?status=Failed&limit=1&cursor=${api.nextCursor}`)
    ).json()) as { items: unknown[] };
    assert.equal(next.items.length, 1);
    assert.notDeepEqual(next.items[0], api.items[0]);
  });

  it('answers bad input with 400 and unknown ids with 404', async () => {
    for (const query of [
      'limit=100000',
      'limit=0',
      'limit=abc',
      'status=Sleeping',
      'since=tomorrowish',
      'cursor=%3Cscript%3E',
    ]) {
      const api = await fetch(`${open.url}/api/instances?${query}`);
      assert.equal(api.status, 400, query);
      assert.match(((await api.json()) as { error: string }).error, /must/);
      const html = await fetch(`${open.url}/instances?${query}`);
      assert.equal(html.status, 400, query);
      assertNoRawMarkup(await html.text());
    }
    const missing = await fetch(`${open.url}/instances/${encodeURIComponent(HOSTILE)}`);
    assert.equal(missing.status, 404);
    assertNoRawMarkup(await missing.text());
    assert.equal((await fetch(`${open.url}/api/instances/nope`)).status, 404);
    assert.equal((await fetch(`${open.url}/api/instances/nope/history`)).status, 404);
    assert.equal((await fetch(`${open.url}/api/instances/${f.ids.completed}/history?execution=7`)).status, 404);
    assert.equal((await fetch(`${open.url}/api/nothing-here`)).status, 404);
  });

  it('refuses cross-site and header-less actions with 403 and changes nothing', async () => {
    const id = await f.startWaiter('csrf');
    const url = `${open.url}/api/instances/${id}/cancel`;
    assert.equal((await post(url, { reason: 'x' })).status, 403);
    const csrf = await session(open.url);
    assert.equal((await post(url, { reason: 'x' }, { 'x-durox-csrf': 'wrong' })).status, 403);
    assert.equal(
      (await post(url, { reason: 'x' }, { 'x-durox-csrf': csrf, origin: 'https://evil.example' })).status,
      403,
    );
    assert.equal(
      (await post(url, { reason: 'x' }, { 'x-durox-csrf': csrf, 'sec-fetch-site': 'cross-site' })).status,
      403,
    );
    const form = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'reason=x',
    });
    assert.equal(form.status, 403);
    assert.equal((await fetch(`${open.url}/api/instances/${id}`, { method: 'DELETE' })).status, 403);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal((await f.client.getStatus(id)).status, 'Running');
    assert.equal(await withHost(`${open.url}/`, 'evil.example'), 403);

    assert.equal((await post(`${open.url}/api/instances/nope/cancel`, {}, { 'x-durox-csrf': csrf })).status, 404);
    const badJson = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-durox-csrf': csrf },
      body: '{nope',
    });
    assert.equal(badJson.status, 400);
    assert.equal(
      (await post(`${open.url}/api/instances/${id}/events`, { data: 1 }, { 'x-durox-csrf': csrf })).status,
      400,
    );
    const refusedDelete = await fetch(`${open.url}/api/instances/${id}`, {
      method: 'DELETE',
      headers: { 'x-durox-csrf': csrf },
    });
    assert.equal(refusedDelete.status, 409);
    assert.match(((await refusedDelete.json()) as { error: string }).error, /still running/);

    assert.equal((await post(url, { reason: 'from test' }, { 'x-durox-csrf': csrf, origin: open.url })).status, 202);
    const done = await f.client.waitForOrchestration(id, 10_000);
    assert.match(done.error ?? '', /canceled: from test/);
    const deleted = await fetch(`${open.url}/api/instances/${id}`, {
      method: 'DELETE',
      headers: { 'x-durox-csrf': csrf },
    });
    assert.equal(deleted.status, 200);
    assert.equal(((await deleted.json()) as { instancesDeleted: number }).instancesDeleted, 1);
  });

  it('raises an event through the API', async () => {
    const id = await f.startWaiter('raise');
    const csrf = await session(open.url);
    const raised = await post(
      `${open.url}/api/instances/${id}/events`,
      { name: 'go', data: { via: 'dashboard' } },
      { 'x-durox-csrf': csrf },
    );
    assert.equal(raised.status, 202);
    assert.deepEqual((await f.client.waitForOrchestration(id, 10_000)).output, { via: 'dashboard' });
  });

  it('requires the token when one is set: 401 without or with a wrong one, sign-in sets a session cookie', async () => {
    assert.equal((await fetch(`${locked.url}/api/overview`)).status, 401);
    assert.equal(
      (await fetch(`${locked.url}/api/overview`, { headers: { authorization: 'Bearer wrong-token-123' } })).status,
      401,
    );
    assert.equal(
      (await fetch(`${locked.url}/api/overview`, { headers: { authorization: `Bearer ${TOKEN}` } })).status,
      200,
    );
    const page = await fetch(`${locked.url}/instances`);
    assert.equal(page.status, 401);
    assert.match(await page.text(), /Dashboard token/);
    const form = (token: string) =>
      fetch(`${locked.url}/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `token=${encodeURIComponent(token)}`,
      });
    const wrong = await form('nope-nope-nope');
    assert.equal(wrong.status, 401);
    assert.equal(wrong.headers.get('set-cookie'), null);
    const right = await form(TOKEN);
    assert.equal(right.status, 303);
    const cookie = (right.headers.get('set-cookie') ?? '').split(';')[0];
    assert.match(right.headers.get('set-cookie') ?? '', /HttpOnly.*SameSite=Strict|SameSite=Strict.*HttpOnly/);
    assert.ok(!cookie.includes(TOKEN));
    assert.equal((await fetch(`${locked.url}/instances`, { headers: { cookie } })).status, 200);
    const id = await f.startWaiter('token');
    const cookieOnly = await post(`${locked.url}/api/instances/${id}/cancel`, {}, { cookie });
    assert.equal(cookieOnly.status, 403, 'a session cookie alone must not authorise an action');
    const bearer = await post(
      `${locked.url}/api/instances/${id}/cancel`,
      { reason: 'bearer' },
      { authorization: `Bearer ${TOKEN}` },
    );
    assert.equal(bearer.status, 202);
    assert.match((await f.client.waitForOrchestration(id, 10_000)).error ?? '', /canceled: bearer/);
  });

  it('read-only mode hides the actions and refuses them with 403', async () => {
    const page = await (await fetch(`${readOnly.url}/instances/${f.ids.waiting}`)).text();
    assert.ok(!page.includes('data-action="cancel"'));
    assert.match(page, /read-only/);
    const csrf = await session(readOnly.url);
    const refused = await post(`${readOnly.url}/api/instances/${f.ids.waiting}/cancel`, {}, { 'x-durox-csrf': csrf });
    assert.equal(refused.status, 403);
    assert.match(((await refused.json()) as { error: string }).error, /read-only/);
    assert.equal((await f.client.getStatus(f.ids.waiting)).status, 'Running');
  });

  it('serves Prometheus metrics with queue depths and instance counts read from the store', async () => {
    const response = await fetch(`${open.url}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /text\/plain/);
    const text = await response.text();
    assert.match(text, /durox_queue_depth\{queue="worker"\} \d+/);
    assert.match(text, /durox_instances\{status="failed"\} \d+/);
    assert.equal((await fetch(`${readOnly.url}/metrics`)).status, 404);
  });
  it('marks an external event that arrived before anyone waited for it as dropped in the timeline', async () => {
    const id = await f.startWaiter('early');
    await f.client.raiseEvent(id, 'nobody-waits-for-this', 1);
    const deadline = Date.now() + 15_000;
    while (!(await f.client.readExecutionHistory(id, 1)).some((e) => e.kind === 'ExternalEvent')) {
      assert.ok(Date.now() < deadline, 'the event reaches the history');
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const html = await (await fetch(`${open.url}/instances/${encodeURIComponent(id)}`)).text();
    assert.match(
      html,
      /<li class="event kind-ExternalEvent dropped" data-testid="dropped-event">[\s\S]*?DROPPED: no waitForEvent was pending/,
    );
    await f.client.raiseEvent(id, 'go', 'done');
  });
});
