/**
 * What the server says and refuses at startup: it will not run on uWebSockets.js's slow
 * JavaScript fallback (and leaves its data directory unlocked), and it names the native
 * codecs it loaded.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { startServer, tempDir } from '../helpers/server.ts';

test('the server refuses to start on the JavaScript fallback of uWebSockets.js', async () => {
  const dataDir = tempDir();
  await assert.rejects(startServer({ dataDir, env: { UWS_USE_FALLBACK: '1' } }), (err: Error) => {
    assert.match(err.message, /server exited \(1\) before listening/);
    assert.match(err.message, /fell back to JavaScript/);
    assert.match(err.message, /UWS_NOT_NATIVE/);
    return true;
  });
  assert.equal(fs.existsSync(path.join(dataDir, '.lock')), false, 'the data dir lock is released');
  // The same directory then serves a normal start.
  const srv = await startServer({ dataDir });
  assert.equal(await srv.stop(), 0);
});

test('startup names the native codecs it loaded', async () => {
  const srv = await startServer({ args: ['--log-level', 'info'] });
  try {
    // Logs go to stderr asynchronously: wait for the line (a hang guard, not a timing claim).
    for (let i = 0; i < 100 && !srv.stderr().includes('native codecs loaded'); i++) await new Promise((r) => setTimeout(r, 50));
    const lines = srv
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg?: string; crc32c?: string; lz4?: string; utf8?: string });
    const codecs = lines.find((l) => l.msg === 'native codecs loaded');
    assert.ok(codecs, `no codec line in:\n${srv.stderr().slice(0, 2000)}`);
    assert.match(codecs.crc32c ?? '', /^native/);
    assert.match(codecs.lz4 ?? '', /^native/);
    assert.match(codecs.utf8 ?? '', /^native/);
  } finally {
    assert.equal(await srv.stop(), 0);
  }
});
