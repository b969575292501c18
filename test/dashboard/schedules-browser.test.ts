/**
 * The dashboard's schedules page in a real browser (Debian's chromium via playwright-core) on a
 * real PostgreSQL schema with a running Runtime: the list with next fire times, the pause and
 * resume buttons doing their work, and the schedules API's status codes. A schedule id holding
 * markup must be shown, never run.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { startDashboard, type RunningDashboard } from '../../src/dashboard/server';
import { openChromiumPage, SCREENSHOTS } from '../helpers/chromium';
import { until } from '../helpers/sleep';
import type { ScheduleInfo } from '../../src/schedules/model';
import { createOperatorsFixture, HOSTILE, type OperatorsFixture } from './fixture';

describe('dashboard schedules page in chromium', () => {
  let f: OperatorsFixture;
  let dashboard: RunningDashboard;
  let browser: Browser;
  let page: Page;
  let problems: string[] = [];

  before(async () => {
    f = await createOperatorsFixture('schedpage');
    await f.client.createSchedule('nightly', {
      cron: '0 2 * * *',
      orchestration: 'Hello',
      input: { name: 'night' },
      overlap: 'skip',
    });
    await f.client.createSchedule(HOSTILE, {
      cron: '*/5 * * * *',
      timezone: 'Asia/Tokyo',
      orchestration: 'Hello',
      input: { name: 'x' },
      overlap: 'allow',
      catchUp: 'none',
    });
    await until('both schedules', async () => ((await f.client.listSchedules()).length === 2 ? true : undefined));
    dashboard = await startDashboard(f.client);
    ({ browser, page, problems } = await openChromiumPage({ width: 1400, height: 700 }));
  });

  after(async () => {
    await browser?.close();
    await dashboard?.close();
    await f?.close();
  });

  const stateOf = (id: string) => page.locator(`tr[data-schedule="${id}"] [data-testid="schedule-state"]`);

  async function waitForState(id: string, state: string): Promise<void> {
    await until(`${id} ${state}`, async () => {
      if ((await stateOf(id).textContent())?.trim() === state) return true;
      await page.reload();
      return undefined;
    });
  }

  it('lists every schedule with its next fire time and state', async () => {
    await page.goto(`${dashboard.url}/schedules`);
    assert.equal(await page.locator('[data-testid="schedules"] tbody tr').count(), 2);
    const nightly = (await f.client.listSchedules()).find((s) => s.scheduleId === 'nightly') as ScheduleInfo;
    const shown = (await page.locator('tr[data-schedule="nightly"] [data-testid="next-fire"]').textContent())?.trim();
    assert.equal(shown, new Date(nightly.nextFireAtMs as number).toISOString().replace('T', ' ').replace('Z', ''));
    assert.equal((await stateOf('nightly').textContent())?.trim(), 'Active');
    assert.equal(
      await page.locator('tr[data-schedule] td:first-child', { hasText: '<script>' }).count(),
      1,
      'the hostile id is shown as text',
    );
    assert.equal(
      await page.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned),
      undefined,
      'stored markup ran as script',
    );
    await page.screenshot({ path: join(SCREENSHOTS, 'schedules.png'), fullPage: true });
  });

  it('pauses and resumes a schedule with its buttons', async () => {
    await page.goto(`${dashboard.url}/schedules`);
    await page.click('tr[data-schedule="nightly"] button[data-schedule-action="pause"]');
    await waitForState('nightly', 'Paused');
    assert.equal(
      (await page.locator('tr[data-schedule="nightly"] [data-testid="next-fire"]').textContent())?.trim(),
      '—',
    );
    assert.ok((await f.client.getSchedule('nightly')).paused);
    await page.screenshot({ path: join(SCREENSHOTS, 'schedules-paused.png'), fullPage: true });

    await page.click('tr[data-schedule="nightly"] button[data-schedule-action="resume"]');
    await waitForState('nightly', 'Active');
    const resumed = await f.client.getSchedule('nightly');
    assert.equal(resumed.paused, false);
    assert.ok(resumed.nextFireAtMs !== null);
    assert.deepEqual(problems, []);
  });

  it('answers the schedules API with status codes and refuses a POST without the CSRF header', async () => {
    const list = await fetch(`${dashboard.url}/api/schedules`);
    assert.equal(list.status, 200);
    assert.deepEqual(
      ((await list.json()) as ScheduleInfo[]).map((s) => s.scheduleId).sort(),
      [HOSTILE, 'nightly'].sort(),
    );
    const forged = await fetch(`${dashboard.url}/api/schedules/nightly/pause`, { method: 'POST' });
    assert.equal(forged.status, 403);
    const csrf = ((await (await fetch(`${dashboard.url}/api/session`)).json()) as { csrfToken: string }).csrfToken;
    const unknown = await fetch(`${dashboard.url}/api/schedules/ghost/trigger`, {
      method: 'POST',
      headers: { 'x-durox-csrf': csrf },
    });
    assert.equal(unknown.status, 404);
    assert.equal(((await unknown.json()) as { code: string }).code, 'schedule_not_found');
    const triggered = await fetch(`${dashboard.url}/api/schedules/nightly/trigger`, {
      method: 'POST',
      headers: { 'x-durox-csrf': csrf },
    });
    assert.equal(triggered.status, 202);
    const run = await until(
      'the triggered run',
      async () => (await f.client.getSchedule('nightly')).lastRun ?? undefined,
    );
    assert.match(run.instanceId, /^nightly@/);
  });
});
