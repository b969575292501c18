/**
 * A real browser for the dashboard tests: Debian's chromium driven by playwright-core, one page
 * whose script errors and console errors are collected in `problems` (a test asserts it empty).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

const CHROMIUM = process.env.DUROX_CHROMIUM || '/usr/bin/chromium';

/** Where the tests' screenshots go (test-output/screenshots at the repository root). */
export const SCREENSHOTS = join(__dirname, '..', '..', '..', 'test-output', 'screenshots');

/** One headless chromium with one page. */
export interface ChromiumPage {
  browser: Browser;
  page: Page;
  /** Page errors and console errors seen so far. */
  problems: string[];
}

/** Launches chromium (failing clearly when it is not installed) and opens a page of `viewport`. */
export async function openChromiumPage(viewport: { width: number; height: number }): Promise<ChromiumPage> {
  assert.ok(
    existsSync(CHROMIUM),
    `${CHROMIUM} is missing: install it with apt-get install -y chromium (.ci/run does), or set DUROX_CHROMIUM`,
  );
  mkdirSync(SCREENSHOTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport });
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });
  return { browser, page, problems };
}
