/**
 * The live page in headless Chromium (playwright-core driving /usr/bin/chromium): the page,
 * built on the browser bundle of the SDK, connects; a record published from Node appears on
 * it; and after the server restarts the browser SDK resumes without a gap or a duplicate.
 * With auth on, a refused token is shown on the page as UNAUTHORIZED at once.
 * Skips, saying why, when /usr/bin/chromium is absent (scripts/setup.sh installs it as root).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { mintToken } from '../../src/cli/token.ts';
import { connect } from '../../src/client/index.ts';
import { chromiumArgs, chromiumPath } from './chromium.ts';
import { type ServerProcess, startServer } from './server-process.ts';


const haveChromium = fs.existsSync(chromiumPath);
if (!haveChromium) console.log(`# browser test skipped: ${chromiumPath} is absent (apt-get install -y chromium, or run scripts/setup.sh as root)`);

interface PageState {
  ready?: boolean;
  state?: string;
  records: { partition: number; offset: number; value: string }[];
  events: { type: string; resumed?: boolean; reason?: string }[];
}

describe('live page in Chromium', { skip: haveChromium ? false : `${chromiumPath} is absent` }, () => {
  let server: ServerProcess;
  // playwright-core's types are loaded lazily, like the module itself.
  let browser: import('playwright-core').Browser;

  before(async () => {
    server = await startServer();
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs, headless: true });
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('the page follows a topic live and resumes without gap after a server restart', async () => {
    const node = await connect(server.url);
    try {
      await node.publish('browser', 'first, before the page');
      const page = await browser.newPage();
      const logs: string[] = [];
      page.on('console', (m) => logs.push(m.text()));
      page.on('pageerror', (e) => logs.push(String(e)));
      await page.goto(`${server.httpUrl}/?topic=browser&from=earliest`);
      await page.waitForFunction(() => (window as unknown as { sluicePage: PageState }).sluicePage?.ready === true, null, { timeout: 30_000 });
      const records = (): Promise<PageState['records']> => page.evaluate(() => (window as unknown as { sluicePage: PageState }).sluicePage.records);
      const waitCount = (n: number): Promise<unknown> =>
        page.waitForFunction((k) => (window as unknown as { sluicePage: PageState }).sluicePage.records.length >= k, n, { timeout: 30_000 });

      await node.publish('browser', 'hello from node');
      await waitCount(2);
      assert.deepEqual((await records()).map((r) => r.value), ['first, before the page', 'hello from node']);
      // The record is on the page itself, not only in the SDK.
      assert.match(await page.textContent('#tail') ?? '', /hello from node/);
      assert.match(await page.textContent('#topics') ?? '', /browser/);

      await server.restart();
      await page.waitForFunction(() => (window as unknown as { sluicePage: PageState }).sluicePage.state === 'connected', null, { timeout: 30_000 });
      await node.connect();
      const acks = [];
      for (let i = 0; i < 20; i++) acks.push(await node.publish('browser', `after restart ${i}`));
      assert.equal(acks.at(-1)!.offset, 21);
      await waitCount(22);
      const got = await records();
      assert.deepEqual(
        got.map((r) => r.offset),
        Array.from({ length: 22 }, (_, i) => i),
        'no gap, no duplicate',
      );
      assert.equal(got[21].value, 'after restart 19');
      const events = await page.evaluate(() => (window as unknown as { sluicePage: PageState }).sluicePage.events);
      const last = events.filter((e) => e.type === 'subscribed').at(-1)!;
      assert.equal(last.resumed, true, `resumed exactly (${JSON.stringify(events)}; console: ${logs.join(' | ')})`);
      await page.close();
    } finally {
      node.close();
    }
  });
});

describe('live page in Chromium, auth on', { skip: haveChromium ? false : `${chromiumPath} is absent` }, () => {
  const secret = 'browser-test-secret-at-least-32-bytes!!';
  let server: ServerProcess;
  let browser: import('playwright-core').Browser;

  before(async () => {
    server = await startServer(['--auth-secret', secret]);
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs, headless: true });
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('a refused token is shown as UNAUTHORIZED at once, not retried in silence; a good one works', async () => {
    const page = await browser.newPage();
    try {
      const expired = await mintToken({ secret, acl: { pub: ['*'], sub: ['*'] }, ttlSec: 1, now: Date.now() - 3_600_000 });
      await page.goto(`${server.httpUrl}/?token=${encodeURIComponent(expired)}`);
      // connectTimeoutMs is 30 s on the page: an answer well before it is the refusal, not a timeout.
      await page.waitForFunction(() => (window as unknown as { sluicePage: { error?: unknown } }).sluicePage.error !== undefined, null, { timeout: 20_000 });
      const shown = await page.evaluate(() => {
        const p = (window as unknown as { sluicePage: { error: { code: string; message: string }; state: string } }).sluicePage;
        return { error: p.error, state: p.state };
      });
      assert.equal(shown.error.code, 'UNAUTHORIZED');
      assert.match(shown.error.message, /expired/);
      assert.equal(shown.state, 'closed');
      assert.match((await page.textContent('#error')) ?? '', /^UNAUTHORIZED: /);

      const good = await mintToken({ secret, acl: { pub: ['*'], sub: ['*'] } });
      await page.goto(`${server.httpUrl}/?token=${encodeURIComponent(good)}`);
      await page.waitForFunction(() => (window as unknown as { sluicePage: { ready?: boolean } }).sluicePage.ready === true, null, { timeout: 30_000 });
      assert.equal(await page.evaluate(() => (window as unknown as { sluicePage: { state: string } }).sluicePage.state), 'connected');
    } finally {
      await page.close();
    }
  });
});
