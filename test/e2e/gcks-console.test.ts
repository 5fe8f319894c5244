import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGcks, type TestGcks } from '../support/gcks-test-app.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env.CI) throw new Error(`CI must run the console test: ${CHROMIUM} is missing`);
if (!haveChromium) console.warn(`skipping console browser test: ${CHROMIUM} is not installed (Debian package chromium)`);

describe.skipIf(!haveChromium)('web console in headless Chromium', () => {
  let gcks: TestGcks;
  let browser: Browser;
  let page: Page;
  let base: string;

  beforeAll(async () => {
    gcks = await startTestGcks();
    await gcks.app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${(gcks.app.getHttpServer().address() as AddressInfo).port}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(10_000);
    // The console must only ever talk to its own GCKS.
    await page.route('**/*', (route) => (route.request().url().startsWith(base) ? route.continue() : route.abort()));
  });

  afterAll(async () => {
    await browser?.close();
    await gcks?.close();
  });

  it('refuses a wrong token, then signs in with the real one', async () => {
    await page.goto(`${base}/`);
    await page.fill('#token', 'not-the-token');
    await page.click('button[type=submit]');
    await expect.poll(() => page.textContent('.error-box')).toContain('not accepted');
    await page.fill('#token', gcks.token);
    await page.click('button[type=submit]');
    await page.waitForSelector('h1:has-text("Groups")');
    expect(await page.textContent('.empty')).toContain('No groups yet');
  });

  it('creates a group with a policy and sees both listed', async () => {
    await page.click('summary:has-text("New group")');
    await page.fill('#group-name', 'browser-group');
    await page.fill('#group-address', '10.0.0.1');
    await page.click('button:has-text("Create group")');
    // A unicast address is refused, with the field marked.
    await page.waitForSelector('#group-address.invalid');
    expect(await page.textContent('.error-box')).toContain('address');
    await page.fill('#group-address', '239.10.20.30');
    await page.click('button:has-text("Create group")');
    await page.waitForSelector('h1:has-text("Group browser-group")');

    await page.click('summary:has-text("New policy")');
    await page.fill('#policy-name', 'video');
    await page.selectOption('#policy-espTransform', 'aes-gcm-128');
    await page.fill('#policy-atd', '20');
    await page.click('button:has-text("Add policy")');
    await page.waitForSelector('#policies td:has-text("video")');
    expect(await page.textContent('#policies')).toContain('239.10.20.30/32');
    expect(await page.textContent('#policies')).toContain('aes-gcm-128');

    await page.goto(`${base}/#/groups`);
    await page.waitForSelector('td a:has-text("browser-group")');
    expect(await page.textContent('table')).toContain('239.10.20.30');
    // Set GROUPSEC_CONSOLE_SCREENSHOTS=<dir> to keep screenshots for a look at the layout.
    const shots = process.env.GROUPSEC_CONSOLE_SCREENSHOTS ?? gcks.config.dataDir;
    await page.screenshot({ path: join(shots, 'console-groups.png'), fullPage: true });

    const policies = await gcks.ds.query(`SELECT name, espTransform, atd FROM policies`);
    expect(policies).toEqual([{ name: 'video', espTransform: 'aes-gcm-128', atd: 20 }]);
    const groups = await gcks.ds.query(`SELECT name, address, enabled, serviceModel FROM groups`);
    expect(groups).toEqual([{ name: 'browser-group', address: '239.10.20.30', enabled: 1, serviceModel: 'per-speaker' }]);
    const rollover = await gcks.ds.query(`SELECT rekeyRollover, udpEncapsulation FROM policies`);
    expect(rollover).toEqual([{ rekeyRollover: 1, udpEncapsulation: 0 }]);
  });

  it('edits a policy, shows the audit log, and deletes the group', async () => {
    await page.click('td a:has-text("browser-group")');
    await page.click('#policies button:has-text("Edit")');
    await page.fill('#policy-dtd', '40');
    await page.click('button:has-text("Save policy")');
    await expect.poll(() => page.textContent('#policies')).toContain('DTD 40s');
    await page.click('summary:has-text("New PAD rule")');
    await page.selectOption('#pad-idType', 'san-dns');
    await page.fill('#pad-pattern', '*.viewers.example.com');
    await page.click('button:has-text("Add rule")');
    await page.waitForSelector('td:has-text("san-dns: *.viewers.example.com")');
    await page.click('tr:has-text("viewers") button:has-text("Edit")');
    await page.selectOption('#pad-role', 'both');
    await page.click('button:has-text("Save rule")');
    await page.waitForSelector('tr:has-text("viewers") td:text-is("both")');
    expect(await gcks.ds.query(`SELECT pattern, role FROM pad_rules`)).toEqual([{ pattern: '*.viewers.example.com', role: 'both' }]);
    await page.click('summary:has-text("New PAD rule")');
    await page.screenshot({ path: join(process.env.GROUPSEC_CONSOLE_SCREENSHOTS ?? gcks.config.dataDir, 'console-group.png'), fullPage: true });
    await page.click('a:has-text("Audit log of this group")');
    await page.waitForSelector('td:has-text("update policy")');
    expect(await page.textContent('table')).toContain('dtd: 15 → 40');
    page.once('dialog', (d) => void d.accept());
    await page.goto(`${base}/#/groups`);
    await page.click('tr:has-text("browser-group") button:has-text("Delete")');
    await page.waitForSelector('.empty');
    expect(await gcks.ds.query(`SELECT count(*) AS n FROM groups`)).toEqual([{ n: 0 }]);
  });
});
