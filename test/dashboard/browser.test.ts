/**
 * The dashboard in a real browser (Debian's chromium driven by playwright-core): the overview
 * chart, filtering the list, a failed instance's error, cancelling a running instance through the
 * confirmation dialog. Screenshots go to test-output/screenshots/. Hostile ids and errors are on
 * every page; the test fails if any of their scripts ran or the page logged an error.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { startDashboard, type RunningDashboard } from '../../src/dashboard/server';
import { openChromiumPage, SCREENSHOTS } from '../helpers/chromium';
import { createOperatorsFixture, type OperatorsFixture } from './fixture';

describe('dashboard in chromium', () => {
  let f: OperatorsFixture;
  let dashboard: RunningDashboard;
  let browser: Browser;
  let page: Page;
  let problems: string[] = [];

  before(async () => {
    f = await createOperatorsFixture('browser');
    dashboard = await startDashboard(f.client);
    ({ browser, page, problems } = await openChromiumPage({ width: 1280, height: 900 }));
    page.on('dialog', (dialog) => {
      problems.push(`unexpected ${dialog.type()} dialog: ${dialog.message()}`);
      // The dialog is already recorded as a problem; dismissing it only unblocks the page.
      void dialog.dismiss();
    });
  });

  after(async () => {
    await browser?.close();
    await dashboard?.close();
    await f?.close();
  });

  async function assertClean(): Promise<void> {
    assert.equal(
      await page.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned),
      undefined,
      'stored markup ran as script',
    );
    assert.deepEqual(problems, []);
  }

  it('loads the overview with status counts and the throughput chart', async () => {
    await page.goto(`${dashboard.url}/`);
    await page.locator('#throughput-chart[data-ready="true"]').waitFor({ timeout: 10_000 });
    assert.equal((await page.locator('[data-testid="card-failed"] .card-value').textContent())?.trim(), '2');
    assert.equal((await page.locator('[data-testid="card-running"] .card-value').textContent())?.trim(), '1');
    const datasets = await page.evaluate(() => {
      const chart = (
        globalThis as unknown as { duroxChart: { data: { datasets: Array<{ label: string; data: number[] }> } } }
      ).duroxChart;
      return chart.data.datasets.map((d) => [d.label, d.data.reduce((a, b) => a + b, 0)]);
    });
    assert.deepEqual(
      datasets.map(([label]) => label),
      ['started', 'completed', 'failed'],
    );
    assert.equal(datasets[2][1], 2, 'two failures in the last hour');
    await page.screenshot({ path: join(SCREENSHOTS, 'overview.png'), fullPage: true });
    await assertClean();
  });

  it('filters the instance list by status and name', async () => {
    await page.goto(`${dashboard.url}/instances`);
    assert.equal(await page.locator('tbody tr').count(), 6);
    assert.equal(
      await page.locator(`tr[data-instance="${f.ids.parent}"] td[data-testid="priority"]`).textContent(),
      '3',
    );
    assert.equal(
      await page.locator(`tr[data-instance="${f.ids.completed}"] td[data-testid="priority"]`).textContent(),
      '0',
    );
    await page.selectOption('select[name="status"]', 'Failed');
    await page.click('button[type="submit"]');
    await page.waitForURL(/status=Failed/);
    const ids = await page.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-instance')));
    assert.deepEqual(ids.sort(), [f.ids.failed, f.ids.hostile].sort());
    await page.screenshot({ path: join(SCREENSHOTS, 'instances-failed.png'), fullPage: true });
    await page.fill('input[name="name"]', 'Hello');
    await page.selectOption('select[name="status"]', '');
    await page.click('button[type="submit"]');
    await page.waitForURL(/name=Hello/);
    assert.equal(await page.locator('tbody tr').count(), 2);
    await page.fill('input[name="limit"]', '1');
    await page.click('button[type="submit"]');
    await page.waitForURL(/limit=1/);
    const firstPage = await page.locator('tbody tr').getAttribute('data-instance');
    await page.click('a.next');
    await page.waitForURL(/cursor=/);
    const secondPage = await page
      .locator('tbody tr')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-instance')));
    assert.equal(secondPage.length, 1);
    assert.deepEqual([firstPage, secondPage[0]].sort(), [f.ids.completed, f.ids.child].sort());
    assert.equal(await page.inputValue('input[name="name"]'), 'Hello', 'the filter is kept on the next page');
    await assertClean();
  });

  it('opens a failed instance and shows its error and history timeline', async () => {
    await page.goto(`${dashboard.url}/instances?status=Failed`);
    await page.click(`tr[data-instance="${f.ids.failed}"] a`);
    await page.waitForURL(/\/instances\/failed-/);
    assert.equal(await page.locator('[data-testid="instance-status"]').textContent(), 'Failed');
    const error = await page.locator('[data-testid="instance-error"]').textContent();
    assert.match(error ?? '', /exploded <img src=x onerror="window.__pwned=1"><script>window.__pwned=1<\/script>/);
    const kinds = await page.locator('.timeline .event-kind').allTextContents();
    assert.equal(kinds[0], 'OrchestrationStarted');
    assert.equal(kinds[kinds.length - 1], 'OrchestrationFailed');
    await page.screenshot({ path: join(SCREENSHOTS, 'instance-failed.png'), fullPage: true });
    await assertClean();
  });

  it('cancels a running instance behind the confirmation dialog and shows it change', async () => {
    const id = await f.startWaiter('browser-cancel');
    await page.goto(`${dashboard.url}/instances/${encodeURIComponent(id)}`);
    assert.equal(await page.locator('[data-testid="instance-status"]').textContent(), 'Running');
    await page.click('button[data-action="cancel"]');
    await page.locator('#confirm-dialog[open]').waitFor();
    await page.fill('#confirm-reason', 'stopped from the browser');
    await page.screenshot({ path: join(SCREENSHOTS, 'cancel-confirm.png') });
    assert.equal((await f.client.getStatus(id)).status, 'Running', 'nothing happens before confirming');
    await page.click('#confirm-ok');
    await page.locator('[data-testid="instance-status"]', { hasText: 'Failed' }).waitFor({ timeout: 15_000 });
    assert.match(
      (await page.locator('[data-testid="instance-error"]').textContent()) ?? '',
      /canceled: stopped from the browser/,
    );
    await page.screenshot({ path: join(SCREENSHOTS, 'instance-cancelled.png'), fullPage: true });
    await assertClean();
  });
});
