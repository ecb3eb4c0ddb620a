/**
 * The browser bundle of the SDK that the build writes (dist/page/sluice-client.js, served
 * by the live page): it names no Node module (`ws` is loaded at run time in Node only), and
 * it stays small. The test runner builds before the tests run.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import zlib from 'node:zlib';
import { pageDir } from '../../src/gateway/static.ts';

/** Budgets with headroom over today's 38 KB / 13.6 KB (31 KB / 11.8 KB before multi-URL failover, token refresh and auth refusals). */
const bundleBytesMax = 48 * 1024;
const bundleGzipBytesMax = 16 * 1024;

test('the browser bundle is built, names no Node module, and stays within its size budget', () => {
  const js = fs.readFileSync(path.join(pageDir(), 'sluice-client.js'), 'utf8');
  assert.doesNotMatch(js, /["']node:/, 'no node: imports');
  assert.doesNotMatch(js, /import\(["']ws["']\)|from ?["']ws["']/, 'ws is neither bundled nor named');
  assert.doesNotMatch(js, /\bBuffer\.|\brequire\(/, 'no Node globals');
  assert.match(js, /export\{/, 'an ES module');
  const gz = zlib.gzipSync(js, { level: 9 }).length;
  assert.ok(js.length <= bundleBytesMax, `${js.length} bytes minified`);
  assert.ok(gz <= bundleGzipBytesMax, `${gz} bytes gzipped`);
});
