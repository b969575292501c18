/**
 * The dashboard's flow limits page in a real browser (Debian's chromium via playwright-core) on
 * a real PostgreSQL schema with a running Runtime: every limit with its active and parked counts,
 * a paused key's waiting activity counted as parked, the running and pending instances of an
 * orchestration key, and the limits API. A key holding markup
 * must be shown, never run.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { startDashboard, type RunningDashboard } from '../../src/dashboard/server';
import { openChromiumPage, SCREENSHOTS } from '../helpers/chromium';
import { until } from '../helpers/sleep';
import type { FlowLimitInfo } from '../../src/provider/contract';
import { createOperatorsFixture, HOSTILE, type OperatorsFixture } from './fixture';

describe('dashboard flow limits page in chromium', () => {
  let f: OperatorsFixture;
  let dashboard: RunningDashboard;
  let browser: Browser;
  let page: Page;
  let problems: string[] = [];

  before(async () => {
    f = await createOperatorsFixture('limpage');
    await f.client.setFlowLimit('activity:Echo', { maxActive: 0 });
    await f.client.setFlowLimit(HOSTILE, { perSecond: 5, burst: 2 });
    await f.client.setFlowLimit('orch:reports', { maxActive: 1 });
    await f.client.startOrchestration('held-by-limit', 'Hello', { name: 'later' });
    // report-1 runs (its Echo activity parked too), report-2 waits for report-1's permit.
    for (const id of ['report-1', 'report-2']) {
      await f.client.startOrchestration(id, 'Hello', { name: id }, { flowKey: 'orch:reports' });
    }
    await until('the Echo activities parked', async () => {
      const echo = (await f.client.getFlowLimits()).find((l) => l.flowKey === 'activity:Echo');
      return echo?.parked === 2 ? true : undefined;
    });
    dashboard = await startDashboard(f.client);
    ({ browser, page, problems } = await openChromiumPage({ width: 1400, height: 500 }));
  });

  after(async () => {
    await browser?.close();
    await dashboard?.close();
    await f?.close();
  });

  const cell = (key: string, field: string) => page.locator(`tr[data-limit="${key}"] [data-testid="${field}"]`);

  it('lists every limit with its active and parked counts', async () => {
    await page.goto(`${dashboard.url}/limits`);
    assert.equal(await page.locator('[data-testid="limits"] tbody tr').count(), 3);
    assert.equal((await cell('activity:Echo', 'max-active').textContent())?.trim(), 'paused (0)');
    assert.equal((await cell('activity:Echo', 'active').textContent())?.trim(), '0');
    assert.equal((await cell('activity:Echo', 'parked').textContent())?.trim(), '2');
    assert.equal((await cell('orch:reports', 'active').textContent())?.trim(), '1');
    assert.equal((await cell('orch:reports', 'parked').textContent())?.trim(), '1');
    assert.equal((await cell('orch:reports', 'instances').textContent())?.trim(), '1 / 1');
    assert.equal(
      await page.locator('tr[data-limit] td:first-child', { hasText: '<script>' }).count(),
      1,
      'the hostile key is shown as text',
    );
    assert.equal(
      await page.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned),
      undefined,
      'stored markup ran as script',
    );
    assert.equal(await page.locator('header a[aria-current="page"]').textContent(), 'Limits');
    await page.screenshot({ path: join(SCREENSHOTS, 'limits.png'), fullPage: true });

    // Raising the limit starts the parked activity; the page shows it gone.
    await f.client.setFlowLimit('activity:Echo', { maxActive: 1 });
    for (const id of ['held-by-limit', 'report-1', 'report-2']) {
      assert.equal((await f.client.waitForOrchestration(id, 20_000)).status, 'Completed');
    }
    await page.reload();
    assert.equal((await cell('activity:Echo', 'parked').textContent())?.trim(), '0');
    assert.equal((await cell('orch:reports', 'instances').textContent())?.trim(), '0 / 0');
    assert.equal((await cell('activity:Echo', 'max-active').textContent())?.trim(), '1');
    assert.deepEqual(problems, []);
  });

  it('answers the limits API', async () => {
    const response = await fetch(`${dashboard.url}/api/limits`);
    assert.equal(response.status, 200);
    const limits = (await response.json()) as FlowLimitInfo[];
    assert.deepEqual(
      limits.map((l) => [l.flowKey, l.maxActive, l.perSecond, l.burst]).sort(),
      [
        ['activity:Echo', 1, null, null],
        ['orch:reports', 1, null, null],
        [HOSTILE, null, 5, 2],
      ].sort(),
    );
  });
});
