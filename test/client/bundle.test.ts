/**
 * The browser bundle of the SDK (the same esbuild options as `npm run build:client`): it
 * builds, it names no Node module (`ws` is loaded at run time in Node only), and it stays
 * small.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import zlib from 'node:zlib';
import { buildClientBundle } from '../../src/gateway/static.ts';

/** Budgets with headroom over today's 38 KB / 13.6 KB (31 KB / 11.8 KB before multi-URL failover, token refresh and auth refusals). */
const bundleBytesMax = 48 * 1024;
const bundleGzipBytesMax = 16 * 1024;

test('the browser bundle builds, names no Node module, and stays within its size budget', async () => {
  const js = (await buildClientBundle()).toString('utf8');
  assert.doesNotMatch(js, /["']node:/, 'no node: imports');
  assert.doesNotMatch(js, /import\(["']ws["']\)|from ?["']ws["']/, 'ws is neither bundled nor named');
  assert.doesNotMatch(js, /\bBuffer\.|\brequire\(/, 'no Node globals');
  assert.match(js, /export\{/, 'an ES module');
  const gz = zlib.gzipSync(js, { level: 9 }).length;
  assert.ok(js.length <= bundleBytesMax, `${js.length} bytes minified`);
  assert.ok(gz <= bundleGzipBytesMax, `${gz} bytes gzipped`);
});
