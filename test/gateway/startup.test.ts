/**
 * What the server says and refuses at startup: it will not run on uWebSockets.js's slow
 * JavaScript fallback (and leaves its data directory unlocked), it names the native codecs
 * it loaded, and it will not share a port another server holds (src/common/listen.ts).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type ServerProcess, http, startServer, tempDir } from '../helpers/server.ts';

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

describe('a port already in use', () => {
  let first: ServerProcess;
  before(async () => {
    first = await startServer();
    const created = await http('PUT', `${first.http}/v1/topics/only-in-the-first`, { partitions: 1 });
    assert.equal(created.status, 201);
  });
  after(async () => {
    await first?.stop();
  });

  /** Every answer comes from the first server's log: nothing split the port. */
  async function firstAnswersAlone(): Promise<void> {
    for (let i = 0; i < 6; i++) {
      const r = await http('GET', `${first.http}/v1/topics`);
      assert.deepEqual(r.body.topics.map((t: { name: string }) => t.name), ['only-in-the-first'], `call ${i + 1}`);
    }
  }

  test('a second server on the same --port does not start, says which port and flag, and leaves the first one alone', async () => {
    const dataDir = tempDir();
    await assert.rejects(startServer({ dataDir, args: ['--port', String(first.port)] }), (err: Error) => {
      assert.match(err.message, /server exited \(1\) before listening/);
      assert.match(err.message, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${first.port} \\(the gateway, --port\\): the port is already in use`));
      assert.match(err.message, /PORT_IN_USE/);
      return true;
    });
    assert.equal(fs.existsSync(path.join(dataDir, '.lock')), false, 'the data dir lock is released');
    await firstAnswersAlone();
  });

  test('nor on the same --kafka-port', async () => {
    await assert.rejects(startServer({ args: ['--kafka-port', String(first.kafkaPort)] }), (err: Error) => {
      assert.match(err.message, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${first.kafkaPort} \\(the Kafka listener, --kafka-port\\): the port is already in use`));
      return true;
    });
    await firstAnswersAlone();
  });

  test('a second server on the same --replay-port does not start either', async () => {
    await assert.rejects(startServer({ args: ['--replay-port', String(first.replayPort)] }), (err: Error) => {
      assert.match(err.message, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${first.replayPort} \\(the replay server, --replay-port\\): the port is already in use`));
      return true;
    });
    await firstAnswersAlone();
  });
});
