import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { connect, uniquePrefix, type TestClient } from '@x/testing';
import { WakeBus } from '@x/redis-core';
import { serveInspector, type InspectorServer } from '../src';
import { HOSTILE, busyRedis } from './fixtures';

/** Where the screenshot goes: `X_TEST_OUTPUT`, else `test-output/` in this package (not packed). */
const OUTPUT = process.env.X_TEST_OUTPUT ?? join(__dirname, '..', 'test-output');

describe('the x-inspect page in Chromium', () => {
  let client: TestClient;
  let busy: Awaited<ReturnType<typeof busyRedis>>;
  let server: InspectorServer;
  let browser: Browser;
  let page: Page;
  const alerts: string[] = [];
  beforeAll(async () => {
    client = await connect('standalone');
    const prefix = uniquePrefix();
    busy = await busyRedis(client, prefix);
    server = await serveInspector(client, { prefix, port: 0, allowActions: true, log: () => undefined });
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] });
    page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
    page.on('dialog', (dialog) => {
      if (dialog.type() === 'confirm') return void dialog.accept();
      alerts.push(dialog.message());
      void dialog.dismiss();
    });
    await page.goto(server.url);
    // Two snapshots: the charts have two points.
    await page.locator('#status.live').waitFor();
    await page.waitForTimeout(2200);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await busy?.release();
    await WakeBus.close(client);
    await client.close();
  });

  const row = (pkg: string, name: string) => page.locator(`#pkg-${pkg} tbody tr`).filter({ has: page.locator('td.name', { hasText: name }) }).first();

  it('shows who holds a lock, until when, and a hostile name as text', async () => {
    const orders = row('lock', 'orders');
    await expect(orders.locator('td').nth(1).textContent()).resolves.toBe('held');
    await expect(orders.locator('td').nth(3).textContent()).resolves.toBe(String(busy.lock.fence));
    expect(await orders.locator('td').nth(4).textContent()).toMatch(/^in \d+ s$/);
    expect(await orders.locator('td').nth(2).getAttribute('title')).toBe(busy.lock.token);

    const names = await page.locator('#pkg-lock td.name').allTextContents();
    expect(names).toContain(HOSTILE);
    expect(await page.locator('img').count()).toBe(0);
    expect(alerts).toEqual([]);
  });

  it('shows a full semaphore with its waiter, a queue in flight and a stream dead letter', async () => {
    const gpu = row('semaphore', 'gpu');
    await expect(gpu.locator('td').nth(1).textContent()).resolves.toBe('1 / 1 full');
    await expect(gpu.locator('td').nth(3).textContent()).resolves.toContain('1 waiting');

    const jobs = row('leasedkeyq', 'jobs');
    await expect(jobs.locator('td').nth(1).textContent()).resolves.toBe('2');
    await expect(jobs.locator('td').nth(2).textContent()).resolves.toBe('1');
    expect(await jobs.locator('svg.chart polyline').count()).toBe(2);

    const pay = row('streams', 'pay');
    expect(await pay.locator('td').nth(3).textContent()).toContain('card declined');
    expect(await row('quota', 'wallet:1').locator('td').nth(1).textContent()).toBe('100');

    mkdirSync(OUTPUT, { recursive: true });
    await page.screenshot({ path: join(OUTPUT, 'inspect.png'), fullPage: true });
  });

  it('re-drives the dead letters after the person confirms', async () => {
    const pay = row('streams', 'pay');
    await pay.getByRole('button', { name: 're-drive dead letters' }).click();
    await page.locator('#notice', { hasText: 'Done: redrive' }).waitFor();
    await page.waitForFunction(() => {
      const cells = document.querySelectorAll('#pkg-streams tbody tr td:nth-child(4) > span:first-child');
      return cells.length > 0 && cells[0]!.textContent === '0';
    });
    await expect(pay.locator('td').nth(1).textContent()).resolves.toMatch(/^2/);
  });
});
