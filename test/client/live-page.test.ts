/**
 * The live page (`GET /`) as a person sees it, in headless Chromium: the version, connection
 * and subscription counts, a row per topic with its rate, a sparkline and the subscriber lag,
 * a produce box that publishes and shows the offset (or the error's code), a tail that waits
 * for a topic named in `?topic=` before it exists, and a layout that fits a phone's width.
 * Screenshots of both widths are written to $SLUICE_SCREENSHOT_DIR (default: a directory
 * under the system's temp dir) and their paths printed, to be looked at.
 * Skips, saying why, when /usr/bin/chromium is absent (scripts/setup.sh installs it as root).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect, type SluiceClient } from '../../src/client/index.ts';
import { Client } from '../helpers/server.ts';
import { chromiumArgs, chromiumPath } from './chromium.ts';
import { type ServerProcess, root, startServer } from './server-process.ts';

const haveChromium = fs.existsSync(chromiumPath);
const shots = process.env.SLUICE_SCREENSHOT_DIR ?? path.join(os.tmpdir(), 'sluice-live-page');

interface Stats {
  version: string;
  connections: { ws?: number };
  topics: { name: string; partitions: { lag: number | null }[] }[];
}
interface PageState {
  ready?: boolean;
  stats: Stats | null;
  records: { partition: number; offset: number; value: string }[];
  published: { topic: string; partition: number; offset: number }[];
}
type Win = { sluicePage: PageState };

describe('the live page, as a person sees it', { skip: haveChromium ? false : `${chromiumPath} is absent` }, () => {
  let server: ServerProcess;
  let browser: import('playwright-core').Browser;
  let node: SluiceClient;
  let stalled: Client;
  const { version } = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };

  before(async () => {
    server = await startServer(['--partitions', '2']);
    node = await connect(server.url);
    for (let i = 0; i < 5; i++) await node.publish('orders', `order ${i}`, { key: `customer-${i % 3}` });
    await node.publish('audit', 'started');
    // A subscriber that reads nothing while 24 MB (incompressible, so stored at that size) go
    // by: more than the kernel's socket buffers hold, so the server holds it back on disk and
    // the page shows its lag.
    stalled = await Client.connect(`${server.url}/v1/ws`);
    stalled.decode = false;
    await stalled.request({ op: 'sub', topic: 'audit', from: 'latest' });
    (stalled.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const prod = node.producer({ lingerMs: 5, compression: 'none' });
    // In rounds: the SDK's publish queue is bounded (QUEUE_FULL beyond it).
    for (let round = 0; round < 12; round++) await Promise.all(Array.from({ length: 2000 }, () => prod.send('audit', crypto.getRandomValues(new Uint8Array(1000)))));
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs, headless: true });
    fs.mkdirSync(shots, { recursive: true });
  });
  after(async () => {
    await browser?.close();
    stalled?.close();
    node?.close();
    await server?.stop();
  });

  test('desktop: version, counts, a row per topic with rate, sparkline and lag; the produce box publishes', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    try {
      await page.goto(`${server.httpUrl}/?topic=orders&from=earliest`);
      await page.waitForFunction(() => (window as unknown as Win).sluicePage?.ready === true, null, { timeout: 30_000 });
      // A few seconds of traffic, so that the sparkline has a shape.
      for (let i = 0; i < 6; i++) {
        await Promise.all(Array.from({ length: 20 * (i + 1) }, (_, j) => node.publish('orders', `burst ${i}.${j}`)));
        await new Promise((r) => setTimeout(r, 1000));
      }
      await page.waitForFunction(() => ((window as unknown as Win).sluicePage.stats?.topics.find((t) => t.name === 'audit')?.partitions.some((p) => (p.lag ?? 0) > 0)) ?? false, null, { timeout: 30_000 });
      const stats = await page.evaluate(() => (window as unknown as { sluicePage: { stats: Stats & { commit: string } } }).sluicePage.stats);
      assert.equal(stats.version, version);
      assert.equal(await page.textContent('#version'), `v${version}${stats.commit === 'unknown' ? '' : ` · ${stats.commit.slice(0, 7)}`}`);
      assert.ok(Number(await page.textContent('#fig-connections')) >= 3, 'the page, the Node client and the stalled one');
      const rows = await page.$$eval('#topics tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
      const orders = rows.find((r) => r[0] === 'orders');
      const audit = rows.find((r) => r[0] === 'audit');
      assert.ok(orders && audit, JSON.stringify(rows));
      assert.equal(orders[1], '2', 'partitions');
      assert.ok(Number(audit[6].replaceAll(',', '')) > 0, `the stalled subscriber's lag shows: ${audit.join(' | ')}`);
      const points = await page.$eval('#topics tbody tr.topic td.spark polyline', (p) => p.getAttribute('points') ?? '');
      assert.ok(points.split(' ').length >= 5, `a sparkline of several seconds: ${points}`);
      // The tail follows ?topic=orders from the earliest record.
      await page.waitForFunction(() => (window as unknown as Win).sluicePage.records.length >= 5 + 20 + 40 + 60 + 80 + 100 + 120, null, { timeout: 30_000 });

      // The produce box: a record with a key, then a refused one with its code.
      await page.fill('#produce-topic', 'orders');
      await page.fill('#produce-key', 'from-the-page');
      await page.fill('#produce-value', 'typed into the page');
      await page.click('#produce-send');
      await page.waitForFunction(() => /at offset \d+/.test(document.getElementById('produce-result')?.textContent ?? ''), null, { timeout: 30_000 });
      const published = await page.evaluate(() => (window as unknown as Win).sluicePage.published);
      assert.equal(published.length, 1);
      assert.equal(await page.textContent('#produce-result'), `stored in orders partition ${published[0].partition} at offset ${published[0].offset}`);
      await page.waitForFunction(() => /typed into the page/.test(document.getElementById('tail')?.textContent ?? ''), null, { timeout: 30_000 });
      assert.match((await page.textContent('#tail')) ?? '', /\[from-the-page\]  typed into the page/);
      await page.fill('#produce-topic', 'not a topic!');
      await page.fill('#produce-value', 'x');
      await page.click('#produce-send');
      await page.waitForFunction(() => document.getElementById('produce-result')?.className === 'bad', null, { timeout: 30_000 });
      assert.match((await page.textContent('#produce-result')) ?? '', /^BAD_REQUEST: /);
      await page.fill('#produce-topic', 'orders');
      await page.fill('#produce-value', '');

      // Steady traffic while the picture is taken, so that the rates are not all zero.
      const steady = setInterval(() => void node.publish('orders', `steady ${Date.now()}`).catch(() => {}), 50);
      await new Promise((r) => setTimeout(r, 2500));
      const file = path.join(shots, 'live-page-desktop.png');
      await page.screenshot({ path: file, fullPage: true });
      clearInterval(steady);
      assert.ok(fs.statSync(file).size > 10_000);
      console.log(`# screenshot: ${file}`);
      assert.deepEqual(errors, []);
    } finally {
      await page.close();
    }
  });

  test('phone width: nothing wider than the screen, the secondary columns hidden, everything else there', async () => {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    try {
      await page.goto(`${server.httpUrl}/?topic=orders`);
      await page.waitForFunction(() => (window as unknown as Win).sluicePage?.ready === true && (window as unknown as Win).sluicePage.stats !== null, null, { timeout: 30_000 });
      await node.publish('orders', 'seen on a phone');
      await page.waitForFunction(() => /seen on a phone/.test(document.getElementById('tail')?.textContent ?? ''), null, { timeout: 30_000 });
      await new Promise((r) => setTimeout(r, 1500)); // two refreshes: rates and sparklines drawn
      const widths = await page.evaluate(() => ({ doc: document.documentElement.scrollWidth, view: window.innerWidth }));
      assert.ok(widths.doc <= widths.view, `the page is ${widths.doc} px wide on a ${widths.view} px screen`);
      const hidden = await page.$$eval('#topics th.wide', (ths) => ths.every((th) => getComputedStyle(th).display === 'none'));
      assert.ok(hidden, 'partitions, records and size columns are hidden');
      for (const id of ['#fig-connections', '#fig-in', '#produce-send', '#tail']) assert.ok(await page.isVisible(id), id);
      const file = path.join(shots, 'live-page-phone.png');
      await page.screenshot({ path: file, fullPage: true });
      console.log(`# screenshot: ${file}`);
    } finally {
      await page.close();
    }
  });

  test('?topic= of a topic that does not exist yet waits for it, then tails it from offset 0', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${server.httpUrl}/?topic=not-yet`);
      await page.waitForFunction(() => (window as unknown as Win).sluicePage?.ready === true, null, { timeout: 30_000 });
      await page.waitForFunction(() => /waiting for topic not-yet to be created/.test(document.getElementById('tail')?.textContent ?? ''), null, { timeout: 30_000 });
      await node.publish('not-yet', 'created after the page opened');
      await page.waitForFunction(() => (window as unknown as Win).sluicePage.records.length === 1, null, { timeout: 30_000 });
      const got = await page.evaluate(() => (window as unknown as Win).sluicePage.records);
      assert.deepEqual(got.map((r) => [r.offset, r.value]), [[0, 'created after the page opened']]);
    } finally {
      await page.close();
    }
  });
});
