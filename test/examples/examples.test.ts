/**
 * Every example in examples/ runs against a real server here, so none of them can rot:
 * the batching producer, the bulk replay, the Node subscriber that resumes from its
 * checkpoint across runs, kcat and the WebSocket on one log, and the browser chat page in
 * Chromium.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromiumArgs, chromiumPath } from '../client/chromium.ts';
import { Client, type ServerProcess, http, startServer, tempDir } from '../helpers/server.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const run = promisify(execFile);

/** Runs an example to its end (bounded) and returns what it printed. */
async function example(file: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, ['--import', 'tsx', path.join('examples', file), ...args], { cwd: root, timeout: 60_000 });
}

describe('examples', () => {
  let srv: ServerProcess;
  before(async () => {
    srv = await startServer();
  });
  after(async () => {
    await srv.stop();
  });

  test('batching-producer acks every record, then bulk-replay reads them all back over the replay port', async () => {
    const produced = await example('batching-producer.ts', ['--url', `ws://127.0.0.1:${srv.port}`, '--topic', 'events', '--records', '2000']);
    const p = JSON.parse(produced.stdout.trim());
    assert.equal(p.acked, 2000);
    assert.deepEqual(p.partitions, [0]);
    const replayed = await example('bulk-replay.ts', ['--replay-url', `tcp://127.0.0.1:${srv.replayPort}`, '--topic', 'events', '--from', 'earliest']);
    const r = JSON.parse(replayed.stdout.trim());
    assert.equal(r.records, 2000);
    assert.equal(r.next, 2000);
    assert.equal(r.hw, 2000);
  });

  test('node-subscriber resumes from its checkpoint across runs, with no gap and no duplicate', async () => {
    const c = await Client.connect(srv.url);
    try {
      for (let i = 0; i < 10; i++) await c.request({ op: 'pub', topic: 'demo', value: `v${i}` });
      const checkpoint = path.join(tempDir(), 'demo.checkpoint.json');
      const args = ['--url', `ws://127.0.0.1:${srv.port}`, '--topic', 'demo', '--checkpoint', checkpoint, '--count'];
      const first = await example('node-subscriber.ts', [...args, '5']);
      assert.deepEqual(first.stdout.trim().split('\n'), ['0 v0', '1 v1', '2 v2', '3 v3', '4 v4']);
      assert.match(first.stderr, /subscribed: initial/);
      const second = await example('node-subscriber.ts', [...args, '5']);
      assert.deepEqual(second.stdout.trim().split('\n'), ['5 v5', '6 v6', '7 v7', '8 v8', '9 v9']);
      assert.match(second.stderr, /resumed exactly/);
      await c.request({ op: 'pub', topic: 'demo', value: 'v10' });
      const third = await example('node-subscriber.ts', [...args, '1']);
      assert.equal(third.stdout.trim(), '10 v10');
      assert.deepEqual(JSON.parse(fs.readFileSync(checkpoint, 'utf8')).offset, 11);
    } finally {
      c.close();
    }
  });

  test('kcat-bridge: what kcat produces the WebSocket reads, and what the WebSocket publishes kcat consumes, with the same offsets and keys', async () => {
    const out = await run('bash', ['examples/kcat-bridge.sh'], {
      cwd: root,
      timeout: 60_000,
      env: { ...process.env, BROKER: `127.0.0.1:${srv.kafkaPort}`, SLUICE_URL: `ws://127.0.0.1:${srv.port}`, TOPIC: 'orders', SLUICE: `${process.execPath} bin/sluice.js` },
    });
    assert.deepEqual(out.stdout.trim().split('\n'), [
      '# read over the WebSocket gateway',
      '0 alice placed',
      '1 bob paid',
      '2 carol shipped',
      '# read by kcat from the Kafka port',
      '0 alice placed',
      '1 bob paid',
      '2 carol shipped',
      '3 dave returned',
    ]);
  });

  const haveChromium = fs.existsSync(chromiumPath);
  test('the browser chat page shows what Node publishes and publishes what is typed', { skip: haveChromium ? false : `${chromiumPath} is absent` }, async () => {
    const page = spawn(process.execPath, ['--import', 'tsx', 'examples/browser-page/serve.ts', '--port', '0', '--sluice', srv.http], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs, headless: true });
    const c = await Client.connect(srv.url);
    try {
      const port = await new Promise<number>((resolve, reject) => {
        readline.createInterface({ input: page.stdout! }).on('line', (l) => resolve(JSON.parse(l).port));
        page.once('exit', (code) => reject(new Error(`serve.ts exited ${code}`)));
      });
      await c.request({ op: 'pub', topic: 'chat', value: 'hello from node' });
      const tab = await browser.newPage();
      await tab.goto(`http://127.0.0.1:${port}/?sluice=ws://127.0.0.1:${srv.port}&topic=chat`);
      await tab.waitForFunction(() => (window as unknown as { chatReady?: boolean }).chatReady === true, null, { timeout: 30_000 });
      await tab.waitForFunction(() => document.querySelector('#log')?.textContent?.includes('hello from node'), null, { timeout: 30_000 });
      await tab.fill('#text', 'hello from the page');
      await tab.click('button');
      await tab.waitForFunction(() => document.querySelector('#log')?.textContent?.includes('hello from the page'), null, { timeout: 30_000 });
      const stored = await http('GET', `${srv.http}/v1/topics/chat/records?from=earliest`);
      assert.deepEqual(
        stored.body.records.map((r: { value: string }) => r.value),
        ['hello from node', 'hello from the page'],
      );
      assert.equal(await tab.locator('#log li').count(), 2, 'each message shown once');
    } finally {
      c.close();
      await browser.close();
      page.kill();
    }
  });
});
