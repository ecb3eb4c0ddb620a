/**
 * Sends a byte range of a segment file to a TCP socket: zero-copy with sendfile(2) through
 * sluice's own addon (native/sendfile, built by `npm ci`), or by read + write when the addon
 * did not build, the socket has no fd (TLS), or it is turned off (`SLUICE_SENDFILE=off`,
 * or `mode: 'fallback'`).
 *
 * THE RULE FOR CALLERS: from the call until the promise settles, the range owns the
 * socket. Do not write(), end() or start another range on it; await each range before the
 * next write. The native path writes behind Node's back, so a byte that Node wrote in the
 * middle would land inside the range. To make a stray write() harmless it corks the socket
 * for the duration (the write goes out after the range), but end() uncorks and shuts the
 * socket down under the transfer, and the fallback path has no such guard at all.
 *
 * Before the first byte: waits until Node has handed every earlier write to the kernel
 * (`socket.writableLength === 0`), and checks `position + length` against the file's size
 * (or the view's): past the end rejects with SENDFILE_RANGE and sends nothing.
 *
 * On failure the promise rejects with a SendfileError whose `bytesSent` tells how much of
 * the range went out; the byte stream is then cut mid-range, so the caller must close the
 * connection. Aborting (`signal`) destroys the socket for that reason. Keep an 'error'
 * listener on the socket, as always: a peer that resets shows up there too.
 *
 * `socket.bytesWritten` does not count bytes sent by the addon.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import type net from 'node:net';
import { TLSSocket } from 'node:tls';
import path from 'node:path';
import { getSystemErrorName } from 'node:util';
import { type ReasonOf, SluiceError } from '../../engine/errors.ts';
import { packageRoot } from './build-info.ts';

/** Where `npm ci` (scripts/build-native.mjs) puts the addon: under the package root, compiled or not. */
export const ADDON_PATH = path.join(packageRoot(), 'native/sendfile/build/Release/sendfile.node');
/** Fallback read size; two such buffers per transfer, so at most twice this is queued. */
export const FALLBACK_CHUNK_BYTES_DEFAULT = 1 << 20;
/** Empty writes awaited for earlier writes to flush before a caller is told it is busy. */
const FLUSH_ROUNDS_MAX = 4;

/** An opaque handle of a running native transfer. */
export type SendfileTransfer = { readonly __sluiceSendfileTransfer: unique symbol };

/** The addon's API (see the comment at the top of native/sendfile/sendfile.c). */
export interface SendfileBinding {
  /**
   * Starts sending `length` bytes of `fileFd` from `position` to a dup of `socketFd`.
   * `done` is called exactly once, always later, from Node's loop: `errno` 0 and
   * `bytesSent < length` means the file ended first; `parks` counts waits for the socket
   * to drain; `burstNsMax` is the longest time one burst of sendfile(2) calls held the
   * loop. Throws an Error with `errno` when the fd cannot be dup'd or polled.
   */
  start(
    socketFd: number,
    fileFd: number,
    position: number,
    length: number,
    done: (errno: number, bytesSent: number, parks: number, burstNsMax: number) => void,
  ): SendfileTransfer;
  /** Ends a running transfer and shuts the connection down; `done` gets ECANCELED. False if it had already ended. */
  abort(transfer: SendfileTransfer): boolean;
}

/** How a transfer went; given to `onStats` once it ends, failed or not. */
export type SendfileStats =
  | {
      path: 'native';
      bytesSent: number;
      /** Times the transfer waited for the peer to read (EAGAIN). */
      parks: number;
      /** The longest time one burst of sendfile(2) calls held the event loop, in ns. */
      burstNsMax: number;
    }
  | { path: 'fallback'; bytesSent: number };

/** pino's logger fits. */
export interface SendfileLogger {
  warn(message: string): void;
}

/**
 * Why a transfer failed, as the reason of an UNAVAILABLE SluiceError (engine/errors.ts):
 * - SENDFILE_ARGUMENT: position, length or fd is not a non-negative safe integer.
 * - SENDFILE_RANGE: position + length is past the end of the file (or view) at the start; nothing sent.
 * - SENDFILE_SHORT_FILE: the file ended before the range did (it shrank during the transfer).
 * - SENDFILE_CLOSED: the socket was closed or destroyed before or during the transfer.
 * - SENDFILE_BUSY: another range is running on this socket, or earlier writes would not flush.
 * - SENDFILE_ABORTED: the caller's AbortSignal fired; the socket has been destroyed.
 * - SENDFILE_UNAVAILABLE: mode 'native' but the addon did not load or the socket has no fd.
 * - SENDFILE_IO: a system error from sendfile(2), read(2) or the socket (`systemCode`: EPIPE, ECONNRESET, EIO...).
 */
export type SendfileReason = Extract<ReasonOf<'UNAVAILABLE'>, `SENDFILE_${string}`>;

export class SendfileError extends SluiceError<'UNAVAILABLE'> {
  override readonly name = 'SendfileError';
  declare readonly reason: SendfileReason;
  /** Bytes of the range that the kernel accepted before the failure. */
  readonly bytesSent: number;
  /** The errno of a system error, when there is one. */
  readonly errno: number | undefined;
  /** The system error's name (EPIPE, ECONNRESET...) for SENDFILE_IO. */
  readonly systemCode: string | undefined;

  constructor(
    reason: SendfileReason,
    message: string,
    bytesSent = 0,
    options: { cause?: unknown; errno?: number; systemCode?: string } = {},
  ) {
    super('UNAVAILABLE', message, reason);
    if (options.cause !== undefined) this.cause = options.cause;
    this.bytesSent = bytesSent;
    this.errno = options.errno;
    this.systemCode = options.systemCode;
  }
}

export interface SendFileRangeOptions {
  /**
   * 'auto' (default): the addon when it loaded and the socket has an fd, else read + write;
   * `SLUICE_SENDFILE=off` in the environment turns 'auto' into 'fallback'.
   * 'native': the addon or SENDFILE_UNAVAILABLE. 'fallback': read + write.
   */
  mode?: 'auto' | 'native' | 'fallback';
  /**
   * For the fallback: a Buffer whose byte i is the file's byte at position i (an mmap view
   * of the whole segment). Slices of it are written without copying, instead of fs.read.
   * Keep it mapped (referenced) until the promise settles.
   */
  view?: Buffer;
  /** Aborting rejects with SENDFILE_ABORTED and destroys the socket. */
  signal?: AbortSignal;
  /** Told once if the addon cannot be loaded. */
  logger?: SendfileLogger;
  /** Fallback chunk size (default FALLBACK_CHUNK_BYTES_DEFAULT). */
  chunkBytes?: number;
  /** Called once when a transfer that started ends, failed or not (for metrics). */
  onStats?: (stats: SendfileStats) => void;
}

const loaded = new Map<string, { binding: SendfileBinding | null; why: string; warned: boolean }>();

/** The addon, or null (told once to `logger`) when it cannot be loaded. Cached per path. */
export function loadSendfile(
  logger?: SendfileLogger,
  addonPath: string = ADDON_PATH,
): SendfileBinding | null {
  let entry = loaded.get(addonPath);
  if (entry === undefined) {
    entry = { binding: null, why: '', warned: false };
    try {
      const candidate = createRequire(import.meta.url)(addonPath) as Partial<SendfileBinding>;
      if (typeof candidate.start === 'function' && typeof candidate.abort === 'function') {
        entry.binding = candidate as SendfileBinding;
      } else {
        entry.why = 'it does not export start() and abort()';
      }
    } catch (err) {
      entry.why = err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err);
    }
    loaded.set(addonPath, entry);
  }
  if (entry.binding === null && logger !== undefined && !entry.warned) {
    entry.warned = true;
    logger.warn(
      `sendfile addon not loaded from ${addonPath} (${entry.why}): replay falls back to read + write; ` +
        'build it with `node scripts/build-native.mjs`',
    );
  }
  return entry.binding;
}

const busy = new WeakSet<net.Socket>();
const EMPTY = Buffer.alloc(0);

/**
 * Sends bytes [position, position + length) of `fileFd` to `socket` and resolves with
 * `length` once the kernel has accepted all of them. See the rule at the top of this file.
 */
export async function sendFileRange(
  socket: net.Socket,
  fileFd: number,
  position: number,
  length: number,
  opts: SendFileRangeOptions = {},
): Promise<number> {
  for (const [name, value] of [['fileFd', fileFd], ['position', position], ['length', length]] as const) {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new SendfileError('SENDFILE_ARGUMENT', `${name} must be a non-negative safe integer, got ${value}`);
    }
  }
  const chunkBytes = opts.chunkBytes ?? FALLBACK_CHUNK_BYTES_DEFAULT;
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes <= 0) {
    throw new SendfileError('SENDFILE_ARGUMENT', `chunkBytes must be a positive safe integer, got ${chunkBytes}`);
  }
  if (opts.signal?.aborted) {
    throw new SendfileError('SENDFILE_ABORTED', 'aborted before the transfer started');
  }
  const mode = opts.mode ?? (process.env.SLUICE_SENDFILE === 'off' ? 'fallback' : 'auto');
  const binding = mode === 'fallback' ? null : loadSendfile(opts.logger);
  if (mode === 'native' && binding === null) {
    throw new SendfileError('SENDFILE_UNAVAILABLE', 'the sendfile addon is not loaded');
  }
  if (busy.has(socket)) {
    throw new SendfileError('SENDFILE_BUSY', 'another range is being sent on this socket');
  }
  busy.add(socket);
  try {
    if (socket.connecting) await connected(socket);
    if (socket.destroyed || !socket.writable) throw closedError(socket, 0);

    const size = opts.view ? opts.view.length : fileSize(fileFd);
    if (position + length > size) {
      throw new SendfileError(
        'SENDFILE_RANGE',
        `range [${position}, ${position + length}) is past the end of the ${opts.view ? 'view' : 'file'} (${size} bytes)`,
      );
    }
    if (length === 0) return 0;

    if (binding !== null && !(socket instanceof TLSSocket)) {
      await flushed(socket);
      const socketFd = fdOf(socket);
      if (socketFd >= 0) return await sendWithAddon(binding, socket, socketFd, fileFd, position, length, opts);
    }
    if (mode === 'native') {
      throw new SendfileError('SENDFILE_UNAVAILABLE', 'the socket has no file descriptor (TLS?)');
    }
    return await sendByCopy(socket, fileFd, position, length, chunkBytes, opts);
  } finally {
    busy.delete(socket);
  }
}

function fileSize(fd: number): number {
  try {
    return fs.fstatSync(fd).size;
  } catch (err) {
    throw nodeError(err, 0, 'fstat');
  }
}

/** Node's fd of a TCP (or pipe) socket; -1 when it has none. */
function fdOf(socket: net.Socket): number {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle;
  const fd = handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : -1;
}

function connected(socket: net.Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    const onConnect = () => (socket.off('close', onClose), resolve());
    const onClose = () => (socket.off('connect', onConnect), reject(closedError(socket, 0)));
    socket.once('connect', onConnect);
    socket.once('close', onClose);
  });
}

/** Resolves once every earlier write has been handed to the kernel. */
async function flushed(socket: net.Socket): Promise<void> {
  for (let round = 0; socket.writableLength > 0; round++) {
    if (round === FLUSH_ROUNDS_MAX || socket.writableCorked > 0) {
      throw new SendfileError(
        'SENDFILE_BUSY',
        `${socket.writableLength} bytes written earlier did not flush${socket.writableCorked > 0 ? ' (the socket is corked)' : ''}`,
      );
    }
    // An empty write calls back after every write queued before it.
    await new Promise<void>((resolve) => socket.write(EMPTY, () => resolve()));
    if (socket.destroyed) throw closedError(socket, 0);
  }
}

function sendWithAddon(
  binding: SendfileBinding,
  socket: net.Socket,
  socketFd: number,
  fileFd: number,
  position: number,
  length: number,
  { signal, onStats }: SendFileRangeOptions,
): Promise<number> {
  return new Promise((resolve, reject) => {
    let transfer: SendfileTransfer | undefined;
    let stopped: 'closed' | 'aborted' | undefined;
    const onClose = () => {
      stopped ??= 'closed';
      if (transfer) binding.abort(transfer);
    };
    const onAbort = () => {
      stopped ??= 'aborted';
      if (transfer) binding.abort(transfer);
      socket.destroy();
    };
    const done = (errno: number, sent: number, parks: number, burstNsMax: number) => {
      socket.off('close', onClose);
      signal?.removeEventListener('abort', onAbort);
      socket.uncork();
      if (stopped === 'aborted') reject(abortedError(sent));
      else if (stopped === 'closed') reject(closedError(socket, sent));
      else if (errno !== 0) reject(systemError(errno, sent, 'sendfile'));
      else if (sent < length) reject(shortFileError(sent, length));
      else resolve(sent);
      onStats?.({ path: 'native', bytesSent: sent, parks, burstNsMax }); // settled first: it may throw
    };
    // Holds any stray write() in Node until the range is out (see the rule above).
    socket.cork();
    try {
      transfer = binding.start(socketFd, fileFd, position, length, done);
    } catch (err) {
      socket.uncork();
      const errno = (err as { errno?: unknown }).errno;
      reject(typeof errno === 'number' ? systemError(errno, 0, 'sendfile', err) : err);
      return;
    }
    socket.once('close', onClose);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The fallback: fs.read into two buffers (or slices of `view`) and socket.write, with at
 * most two chunks queued in Node; a buffer is read into again only once its write has
 * called back (writes call back in order).
 */
function sendByCopy(
  socket: net.Socket,
  fileFd: number,
  position: number,
  length: number,
  chunkBytes: number,
  { view, signal, onStats }: SendFileRangeOptions,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const chunk = Math.min(chunkBytes, length);
    const buffers = view ? [] : [Buffer.allocUnsafeSlow(chunk), Buffer.allocUnsafeSlow(chunk)];
    let next = 0; // which buffer the next read fills
    let queued = 0; // bytes handed to socket.write
    let written = 0; // bytes whose write called back without error
    let inFlight = 0;
    let reading = false;
    let fileEnded = false; // a read returned 0 bytes: the file is shorter than the range
    let settled = false;

    const settle = (err?: unknown) => {
      if (settled) return;
      settled = true;
      socket.off('close', onClose);
      signal?.removeEventListener('abort', onAbort);
      if (err === undefined) resolve(written);
      else reject(err);
      onStats?.({ path: 'fallback', bytesSent: written });
    };
    const onClose = () => settle(closedError(socket, written));
    const onAbort = () => {
      settle(abortedError(written));
      socket.destroy();
    };
    const write = (bytes: Buffer) => {
      inFlight++;
      queued += bytes.length;
      socket.write(bytes, (err) => {
        inFlight--;
        if (err) return settle(nodeError(err, written, 'write'));
        written += bytes.length;
        // A write the kernel took at once calls back on the next tick, so writing from
        // the view straight from here would chain ticks and starve the loop for as long
        // as the reader keeps up (seen: 90 ms). fs.read's callbacks already yield.
        if (view) setImmediate(pump);
        else pump();
      });
    };
    const pump = () => {
      if (settled) return;
      if (written === length) return settle();
      if (fileEnded) {
        if (inFlight === 0) settle(shortFileError(written, length));
        return;
      }
      while (!reading && inFlight < 2 && queued < length) {
        const want = Math.min(chunk, length - queued);
        if (view) {
          write(view.subarray(position + queued, position + queued + want));
          continue;
        }
        const buffer = buffers[next];
        next ^= 1;
        reading = true;
        fs.read(fileFd, buffer, 0, want, position + queued, (err, n) => {
          reading = false;
          if (settled) return;
          if (err) return settle(nodeError(err, written, 'read'));
          if (n === 0) fileEnded = true;
          else write(buffer.subarray(0, n));
          pump();
        });
      }
    };

    socket.once('close', onClose);
    signal?.addEventListener('abort', onAbort, { once: true });
    pump();
  });
}

function systemError(errno: number, bytesSent: number, syscall: string, cause?: unknown): SendfileError {
  const name = getSystemErrorName(-errno);
  const systemCode = /^E[A-Z0-9]+$/.test(name) ? name : 'EIO';
  return new SendfileError('SENDFILE_IO', `${syscall} failed: ${name} after ${bytesSent} bytes`, bytesSent, { errno, cause, systemCode });
}

function nodeError(err: unknown, bytesSent: number, syscall: string): SendfileError {
  const code = (err as { code?: unknown }).code;
  if (code === 'ERR_STREAM_DESTROYED' || code === 'ERR_STREAM_WRITE_AFTER_END' || code === 'ERR_SOCKET_CLOSED') {
    return new SendfileError('SENDFILE_CLOSED', `socket closed after ${bytesSent} bytes`, bytesSent, { cause: err });
  }
  const errno = (err as { errno?: unknown }).errno;
  return new SendfileError('SENDFILE_IO', `${syscall} failed: ${err instanceof Error ? err.message : String(err)} after ${bytesSent} bytes`, bytesSent, {
    cause: err,
    errno: typeof errno === 'number' ? Math.abs(errno) : undefined,
    systemCode: typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : 'EIO',
  });
}

/** The socket's own error (ECONNRESET...) when it has one, else SOCKET_CLOSED. */
function closedError(socket: net.Socket, bytesSent: number): SendfileError {
  const cause = socket.errored;
  if (cause) return nodeError(cause, bytesSent, 'socket');
  return new SendfileError('SENDFILE_CLOSED', `socket closed after ${bytesSent} bytes`, bytesSent);
}

function abortedError(bytesSent: number): SendfileError {
  return new SendfileError('SENDFILE_ABORTED', `aborted after ${bytesSent} bytes; socket destroyed`, bytesSent);
}

function shortFileError(bytesSent: number, length: number): SendfileError {
  return new SendfileError(
    'SENDFILE_SHORT_FILE',
    `the file ended after ${bytesSent} of ${length} bytes (it shrank during the transfer)`,
    bytesSent,
  );
}
