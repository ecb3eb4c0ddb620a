/**
 * INTERIM: the read + write fallback behind the API that the sendfile addon's binding
 * (branch `sendfile`, native/sendfile/) provides, so that the replay server can be built and
 * tested before the addon lands. When that branch is merged its version of this file
 * replaces this one whole; the replay server depends only on the two functions below.
 *
 *   loadSendfile()                     -> { native, reason? }
 *   sendFileRange(socket, fileFd, position, length, opts?) -> Promise<bytes sent>
 *
 * sendFileRange waits until nothing is queued in Node for the socket, then sends
 * `[position, position + length)` of the file. It resolves with fewer bytes than asked
 * only when the file ended first. The caller must not write to the socket until it settles.
 */
import fs from 'node:fs';
import type net from 'node:net';

export interface SendfileStatus {
  native: boolean;
  reason?: string;
}

export interface SendFileRangeOptions {
  /** Aborts the transfer; the promise then rejects with an AbortError. */
  signal?: AbortSignal;
}

const readBytesMax = 1024 * 1024;

export function loadSendfile(): SendfileStatus {
  return { native: false, reason: 'the sendfile addon is not built into this branch yet (interim read + write)' };
}

function abortError(): Error {
  const err = new Error('transfer aborted');
  err.name = 'AbortError';
  return err;
}

function waitDrained(socket: net.Socket, signal?: AbortSignal): Promise<void> {
  if (socket.writableLength === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      socket.off('drain', onDrain);
      socket.off('close', onClose);
      signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = (): void => {
      if (socket.writableLength === 0) done();
    };
    const onClose = (): void => done(Object.assign(new Error('socket closed'), { code: 'ECONNRESET' }));
    const onAbort = (): void => done(abortError());
    socket.on('drain', onDrain);
    socket.once('close', onClose);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function readAt(fd: number, buf: Buffer, position: number): Promise<number> {
  return new Promise((resolve, reject) => fs.read(fd, buf, 0, buf.length, position, (err, n) => (err ? reject(err) : resolve(n))));
}

export async function sendFileRange(socket: net.Socket, fileFd: number, position: number, length: number, opts: SendFileRangeOptions = {}): Promise<number> {
  const { signal } = opts;
  let sent = 0;
  while (sent < length) {
    if (signal?.aborted) throw abortError();
    if (socket.destroyed) throw Object.assign(new Error('socket closed'), { code: 'ECONNRESET' });
    await waitDrained(socket, signal);
    // A fresh buffer each time: the previous one may still be queued in the socket.
    const buf = Buffer.allocUnsafe(Math.min(readBytesMax, length - sent));
    const n = await readAt(fileFd, buf, position + sent);
    if (n === 0) break;
    socket.write(n === buf.length ? buf : buf.subarray(0, n));
    sent += n;
  }
  await waitDrained(socket, signal);
  return sent;
}
