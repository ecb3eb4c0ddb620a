// sendFileRange over real loopback TCP connections, for the native sendfile(2) path and
// both fallbacks (fs.read, and an in-memory view standing in for an mmap): every byte the
// receiver gets is compared with the file. Nothing here asserts a duration; the few
// timers only pace a slow reader or give a transfer time to park.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  ADDON_PATH,
  loadSendfile,
  SendfileError,
  sendFileRange,
  type SendFileRangeOptions,
  type SendfileStats,
} from '../../src/common/sendfile.ts';

const FILE_BYTES = (16 << 20) + 4099; // several times what a paused reader's kernel buffers hold
const TEST_TIMEOUT_MS = 60_000; // a hang fails the test instead of CI
const READER_CHUNKS_MAX = 100_000;

let dir = '';
let contents = Buffer.alloc(0);
let fileFd = -1;

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-sendfile-'));
  contents = randomBytes(FILE_BYTES);
  fs.writeFileSync(path.join(dir, 'segment.log'), contents);
  fileFd = fs.openSync(path.join(dir, 'segment.log'), 'r');
});

after(() => {
  fs.closeSync(fileFd);
  fs.rmSync(dir, { recursive: true, force: true });
});

const binding = loadSendfile();
const nativeOff = process.env.SLUICE_SENDFILE === 'off';

interface Receiver {
  socket: net.Socket;
  received(): number;
  hold(): void;
  release(): void;
  /** Everything received, once the connection has closed. */
  closed: Promise<Buffer>;
}

/** A reader; `paced` pauses after every chunk so that the sender keeps hitting a full buffer. */
function receive(socket: net.Socket, opts: { held?: boolean; paced?: boolean } = {}): Receiver {
  const chunks: Buffer[] = [];
  let bytes = 0;
  let held = opts.held ?? false;
  socket.on('error', () => {});
  socket.on('data', (chunk: Buffer) => {
    assert.ok(chunks.length < READER_CHUNKS_MAX);
    chunks.push(chunk);
    bytes += chunk.length;
    if (opts.paced) {
      socket.pause();
      setTimeout(() => held || socket.resume(), 1);
    }
  });
  if (held) socket.pause();
  const closed = once(socket, 'close').then(() => Buffer.concat(chunks));
  return {
    socket,
    received: () => bytes,
    hold: () => ((held = true), socket.pause()),
    release: () => ((held = false), socket.resume()),
    closed,
  };
}

async function connectPair(opts: { held?: boolean; paced?: boolean } = {}) {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const receiver = receive(client, opts);
  const [sender] = (await accepted) as [net.Socket];
  server.close();
  sender.on('error', () => {}); // as a server must: a peer that resets shows up there too
  return { sender, receiver };
}

function range(position: number, length: number): Buffer {
  return contents.subarray(position, position + length);
}

async function rejection(promise: Promise<unknown>): Promise<SendfileError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof SendfileError, `not a SendfileError: ${err}`);
    return err;
  }
  assert.fail('expected a rejection');
}

/** Opens files until one gets `fd` (the number a destroyed socket just gave back). */
function takeFdNumber(fd: number): { fds: number[]; paths: string[] } {
  const fds: number[] = [];
  const paths: string[] = [];
  for (let i = 0; i < 64 && !fds.includes(fd); i++) {
    const p = path.join(dir, `squatter-${fd}-${i}`);
    paths.push(p);
    fds.push(fs.openSync(p, 'w'));
  }
  assert.ok(fds.includes(fd), `fd ${fd} was not reused, so this test would prove nothing`);
  return { fds, paths };
}

test('the addon is built and loads (set SLUICE_SENDFILE=off to run without it)', (t) => {
  if (nativeOff) return t.skip('SLUICE_SENDFILE=off');
  assert.ok(binding, 'native/sendfile/build/Release/sendfile.node did not load: see the npm ci output');
});

test('loadSendfile returns null for a missing addon and tells the logger once', () => {
  const warnings: string[] = [];
  const logger = { warn: (message: string) => warnings.push(message) };
  const missing = path.join(os.tmpdir(), 'sluice-no-such-addon.node');
  assert.equal(loadSendfile(logger, missing), null);
  assert.equal(loadSendfile(logger, missing), null);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /read \+ write/);
});

interface Variant {
  name: string;
  native: boolean;
  opts: () => SendFileRangeOptions;
}
const variants: Variant[] = [
  { name: 'native sendfile', native: true, opts: () => ({ mode: 'native' }) },
  { name: 'fallback fs.read', native: false, opts: () => ({ mode: 'fallback' }) },
  { name: 'fallback view', native: false, opts: () => ({ mode: 'fallback', view: contents, chunkBytes: 100_003 }) },
];

for (const variant of variants) {
  const skip = variant.native && (nativeOff || binding === null);
  describe(variant.name, { skip, timeout: TEST_TIMEOUT_MS }, () => {
    test('odd ranges back to back behind ordinary writes arrive byte for byte', async () => {
      const { sender, receiver } = await connectPair();
      const ranges: [number, number][] = [
        [0, 0],
        [0, 1],
        [1, 1],
        [FILE_BYTES - 1, 1],
        [3, 1_000_003],
        [12_345, 3_000_001],
        [0, FILE_BYTES],
        [FILE_BYTES - 777_777, 777_777],
      ];
      const expected: Buffer[] = [];
      // Larger than the socket buffer, so it is still queued in Node when the first range
      // starts: the range must wait for it.
      const blob = randomBytes(6 << 20);
      sender.write(blob);
      expected.push(blob);
      const paths: string[] = [];
      for (const [i, [position, length]] of ranges.entries()) {
        const header = Buffer.from(`range ${i}:`);
        sender.write(header);
        expected.push(header, range(position, length));
        const opts = { ...variant.opts(), onStats: (stats: SendfileStats) => paths.push(stats.path) };
        assert.equal(await sendFileRange(sender, fileFd, position, length, opts), length);
      }
      // Every range but the empty one ran, on the path this variant is about.
      assert.deepEqual(paths, Array(ranges.length - 1).fill(variant.native ? 'native' : 'fallback'));
      sender.end();
      assert.ok((await receiver.closed).equals(Buffer.concat(expected)));
    });

    test('a slow reader that pauses after every chunk gets every byte', async () => {
      const { sender, receiver } = await connectPair({ paced: true });
      assert.equal(await sendFileRange(sender, fileFd, 7, FILE_BYTES - 7, variant.opts()), FILE_BYTES - 7);
      sender.end();
      assert.ok((await receiver.closed).equals(range(7, FILE_BYTES - 7)));
    });

    test('a peer that closes mid-transfer gives a clean rejection', async () => {
      const { sender, receiver } = await connectPair({ paced: true });
      receiver.socket.on('data', () => receiver.received() >= 1 << 20 && receiver.socket.destroy());
      const err = await rejection(sendFileRange(sender, fileFd, 0, FILE_BYTES, variant.opts()));
      assert.ok(
        ['EPIPE', 'ECONNRESET', 'SENDFILE_CLOSED'].includes(err.systemCode ?? err.reason),
        `unexpected reason ${err.reason} ${err.systemCode}`,
      );
      assert.ok(err.bytesSent < FILE_BYTES);
      const got = await receiver.closed;
      assert.ok(got.equals(range(0, got.length)));
      sender.destroy();
    });

    test('a socket destroyed mid-transfer: no byte reaches the next owner of its fd', async () => {
      const { sender, receiver } = await connectPair({ held: true });
      const sending = rejection(sendFileRange(sender, fileFd, 0, FILE_BYTES, variant.opts()));
      await sleep(30); // the reader is held: the transfer fills the socket buffer and parks
      const fd = (sender as unknown as { _handle: { fd: number } })._handle.fd;
      sender.destroy();
      const squatters = takeFdNumber(fd);
      receiver.release();
      const err = await sending;
      assert.equal(err.reason, 'SENDFILE_CLOSED');
      const got = await receiver.closed; // the connection really ends
      assert.ok(got.length < FILE_BYTES);
      assert.ok(got.equals(range(0, got.length)));
      for (const squatter of squatters.fds) fs.closeSync(squatter);
      for (const p of squatters.paths) assert.equal(fs.statSync(p).size, 0, `${p} received bytes`);
    });

    test('many concurrent transfers on their own connections', async () => {
      const pairs = await Promise.all(Array.from({ length: 12 }, (_, i) => connectPair({ paced: i % 3 === 0 })));
      const ranges = pairs.map((_, i) => [i * 1_234_567 + i, FILE_BYTES - i * 1_234_567 - 2 * i] as const);
      const sent = await Promise.all(
        pairs.map(({ sender }, i) => sendFileRange(sender, fileFd, ranges[i][0], ranges[i][1], variant.opts())),
      );
      assert.deepEqual(sent, ranges.map(([, length]) => length));
      for (const { sender } of pairs) sender.end();
      const received = await Promise.all(pairs.map(({ receiver }) => receiver.closed));
      received.forEach((got, i) => assert.ok(got.equals(range(...ranges[i])), `connection ${i}`));
    });

    test('a range past the end of the file is refused before any byte is sent', async () => {
      const { sender, receiver } = await connectPair();
      const err = await rejection(sendFileRange(sender, fileFd, FILE_BYTES - 10, 11, variant.opts()));
      assert.equal(err.reason, 'SENDFILE_RANGE');
      assert.equal(err.bytesSent, 0);
      // The socket is still usable.
      assert.equal(await sendFileRange(sender, fileFd, FILE_BYTES - 10, 10, variant.opts()), 10);
      sender.end();
      assert.ok((await receiver.closed).equals(range(FILE_BYTES - 10, 10)));
    });

    test('bad arguments and a closed file are refused with codes', async () => {
      const { sender, receiver } = await connectPair();
      for (const [fd, position, length] of [[fileFd, -1, 1], [fileFd, 0, 1.5], [-1, 0, 1], [fileFd, 2 ** 53, 1]]) {
        const err = await rejection(sendFileRange(sender, fd, position, length, variant.opts()));
        assert.equal(err.reason, 'SENDFILE_ARGUMENT');
      }
      if (variant.opts().view === undefined) {
        const closed = fs.openSync(path.join(dir, 'segment.log'), 'r');
        fs.closeSync(closed);
        assert.equal((await rejection(sendFileRange(sender, closed, 0, 1, variant.opts()))).systemCode, 'EBADF');
      }
      sender.end();
      assert.equal((await receiver.closed).length, 0);
    });

    test('a second range on a busy socket is refused', async () => {
      const { sender, receiver } = await connectPair();
      const first = sendFileRange(sender, fileFd, 0, FILE_BYTES, variant.opts());
      const err = await rejection(sendFileRange(sender, fileFd, 0, 10, variant.opts()));
      assert.equal(err.reason, 'SENDFILE_BUSY');
      assert.equal(await first, FILE_BYTES);
      sender.end();
      assert.ok((await receiver.closed).equals(contents));
    });

    test('aborting destroys the socket and rejects', async () => {
      const { sender, receiver } = await connectPair({ held: true });
      const controller = new AbortController();
      const sending = rejection(sendFileRange(sender, fileFd, 0, FILE_BYTES, { ...variant.opts(), signal: controller.signal }));
      await sleep(30);
      controller.abort();
      const err = await sending;
      assert.equal(err.reason, 'SENDFILE_ABORTED');
      assert.ok(sender.destroyed);
      receiver.release();
      const got = await receiver.closed;
      assert.ok(got.equals(range(0, got.length)));
    });

    test('the file shrinking mid-transfer ends it short, with what was sent intact', { skip: variant.opts().view !== undefined && 'a view cannot shrink' }, async () => {
      const shrinking = path.join(dir, `shrinking-${variant.native}`);
      fs.writeFileSync(shrinking, contents);
      const fd = fs.openSync(shrinking, 'r+');
      try {
        const { sender, receiver } = await connectPair({ held: true });
        const sending = rejection(sendFileRange(sender, fd, 0, FILE_BYTES, variant.opts()));
        await sleep(30);
        const cut = 8 << 20;
        fs.ftruncateSync(fd, cut);
        receiver.release();
        const err = await sending;
        assert.equal(err.reason, 'SENDFILE_SHORT_FILE');
        assert.ok(err.bytesSent >= cut && err.bytesSent < FILE_BYTES, `bytesSent ${err.bytesSent}`);
        sender.end();
        assert.ok((await receiver.closed).equals(range(0, err.bytesSent)));
      } finally {
        fs.closeSync(fd);
      }
    });
  });
}

describe('native only', { skip: nativeOff || binding === null, timeout: TEST_TIMEOUT_MS }, () => {
  test('regression: a write() during a transfer goes out after the range, not inside it', async () => {
    const { sender, receiver } = await connectPair({ paced: true });
    const sending = sendFileRange(sender, fileFd, 5, FILE_BYTES - 5, { mode: 'native' });
    await sleep(10);
    sender.write('TAIL');
    assert.equal(await sending, FILE_BYTES - 5);
    sender.end();
    assert.ok((await receiver.closed).equals(Buffer.concat([range(5, FILE_BYTES - 5), Buffer.from('TAIL')])));
  });

  test('regression: a transfer on the dup outlives socket.destroy(); the reused fd gets nothing', async () => {
    assert.ok(binding);
    const { sender, receiver } = await connectPair({ held: true });
    const fd = (sender as unknown as { _handle: { fd: number } })._handle.fd;
    const done = new Promise<[number, number, number, number]>((resolve) => {
      binding.start(fd, fileFd, 0, FILE_BYTES, (...result) => resolve(result));
    });
    await sleep(30);
    sender.destroy(); // closes Node's fd; nobody tells the addon
    const squatters = takeFdNumber(fd);
    receiver.release();
    const [errno, sent, parks, burstNsMax] = await done;
    assert.equal(errno, 0);
    assert.equal(sent, FILE_BYTES);
    assert.ok(parks > 0, 'the held reader should have made the transfer wait');
    assert.ok(burstNsMax > 0);
    assert.ok((await receiver.closed).equals(contents)); // and closing the dup ended it
    for (const squatter of squatters.fds) fs.closeSync(squatter);
    for (const p of squatters.paths) assert.equal(fs.statSync(p).size, 0, `${p} received bytes`);
  });

  test('abort() on the binding ends the transfer once; later aborts say false', async () => {
    assert.ok(binding);
    const { sender, receiver } = await connectPair({ held: true });
    const fd = (sender as unknown as { _handle: { fd: number } })._handle.fd;
    let calls = 0;
    const done = new Promise<number>((resolve) => {
      const transfer = binding.start(fd, fileFd, 0, FILE_BYTES, (errno) => (calls++, resolve(errno)));
      setTimeout(() => {
        assert.equal(binding.abort(transfer), true);
        assert.equal(binding.abort(transfer), false);
      }, 20);
    });
    assert.equal(await done, os.constants.errno.ECANCELED);
    receiver.release();
    const got = await receiver.closed; // abort shut the connection down
    assert.ok(got.equals(range(0, got.length)));
    await sleep(10);
    assert.equal(calls, 1);
    sender.destroy();
  });

  test('regression: terminating a worker mid-transfer does not crash the process', async () => {
    // Node unloads a worker's addons before libuv runs their last close callbacks: unless
    // the addon stays loaded, on_closed() is gone by then (it segfaulted). This needs a
    // process whose main thread never loaded the addon, hence the child.
    const script = `
      import net from 'node:net';
      import { once } from 'node:events';
      import { Worker } from 'node:worker_threads';
      const [addon, file, length] = process.argv.slice(1);
      const server = net.createServer().listen(0, '127.0.0.1');
      await once(server, 'listening');
      const worker = new Worker(\`
        const { workerData: w, parentPort } = require('node:worker_threads');
        const addon = require(w.addon);
        const fd = require('node:fs').openSync(w.file, 'r');
        const socket = require('node:net').connect(w.port, '127.0.0.1', () => {
          addon.start(socket._handle.fd, fd, 0, w.length, () => {});
          parentPort.postMessage('started');
        });\`, { eval: true, execArgv: [], workerData: { addon, file, length: Number(length), port: server.address().port } });
      const [peer] = await once(server, 'connection');
      server.close();
      peer.pause(); // hold the reader so that the transfer is parked when the worker dies
      await once(worker, 'message');
      await new Promise((resolve) => setTimeout(resolve, 20));
      await worker.terminate();
      let received = 0;
      peer.on('data', (chunk) => (received += chunk.length));
      peer.resume();
      await once(peer, 'close'); // the worker's teardown closed the dup
      console.log(received < Number(length) ? 'ok' : 'the transfer did not stop');
    `;
    const child = spawn(
      process.execPath,
      ['--input-type=module', '-e', script, ADDON_PATH, path.join(dir, 'segment.log'), String(FILE_BYTES)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    const [code, signal] = await once(child, 'exit');
    assert.deepEqual({ code, signal, output: output.trim() }, { code: 0, signal: null, output: 'ok' });
  });

  test('bad arguments throw instead of starting', () => {
    assert.ok(binding);
    const start = binding.start as (...args: unknown[]) => unknown;
    assert.throws(() => start(-1, fileFd, 0, 1, () => {}), TypeError);
    assert.throws(() => start(0, fileFd, -1, 1, () => {}), TypeError);
    assert.throws(() => start(0, fileFd, 0, 1, 'not a function'), TypeError);
    assert.throws(() => (binding.abort as (x: unknown) => boolean)({}), TypeError);
    assert.throws(() => start(fileFd, fileFd, 0, 1, () => {}), /uv_poll_init/); // a regular file cannot be polled
  });

  test('auto uses the addon (bytesWritten does not count its bytes) and SLUICE_SENDFILE=off the fallback', async () => {
    const { sender, receiver } = await connectPair();
    const saved = process.env.SLUICE_SENDFILE;
    try {
      delete process.env.SLUICE_SENDFILE;
      await sendFileRange(sender, fileFd, 0, 1000);
      assert.equal(sender.bytesWritten, 0);
      process.env.SLUICE_SENDFILE = 'off';
      await sendFileRange(sender, fileFd, 1000, 1000);
      assert.equal(sender.bytesWritten, 1000);
    } finally {
      if (saved === undefined) delete process.env.SLUICE_SENDFILE;
      else process.env.SLUICE_SENDFILE = saved;
    }
    sender.end();
    assert.ok((await receiver.closed).equals(range(0, 2000)));
  });
});
