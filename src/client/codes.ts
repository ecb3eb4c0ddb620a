/**
 * Every code the SDK deals in, in one table: the wire's error codes (protocol §3, shared
 * with the server through engine/errors.ts), the client-side reasons an operation fails
 * without a server answer, the WebSocket close codes the protocol gives a meaning to, the
 * binary frame types, and the connection and subscription states.
 *
 * An error the SDK raises is always a `SluiceError` (engine/errors.ts) with a wire `code`;
 * failures that never reached the server carry `code: 'UNAVAILABLE'` (`TOO_LARGE` for a
 * local limit, `INTERNAL` for a server that broke the contract) and a `reason` from
 * CLIENT_REASONS, so an app can switch on `code` alone and
 * look at `reason` when it cares why.
 */
import { ERROR_CODES, type ErrorCode, SluiceError } from '../../engine/errors.ts';
import { FRAME_DATA, FRAME_PRODUCE, PARTITION_ANY } from '../../engine/codec/frames.ts';

export { ERROR_CODES, type ErrorCode, SluiceError };

/** Why an operation failed on the client's side, as `SluiceError.reason`. */
export const CLIENT_REASONS = {
  /** The connection dropped while the request was in flight and it is not retried. */
  DISCONNECTED: 'DISCONNECTED',
  /** `close()` was called (or the client gave up) before an answer came. */
  CLOSED: 'CLOSED',
  /** No answer within `requestTimeoutMs` (meta, sub, ping). */
  TIMEOUT: 'TIMEOUT',
  /** The bounded publish queue (`maxPendingPublishes` / `maxPendingBytes`) is full. */
  QUEUE_FULL: 'QUEUE_FULL',
  /** A frame would exceed `maxFrameBytes`; the server would close the connection for it. */
  FRAME_TOO_LARGE: 'FRAME_TOO_LARGE',
  /** The server sent something the contract does not allow. */
  PROTOCOL: 'PROTOCOL',
} as const;

export type ClientReason = (typeof CLIENT_REASONS)[keyof typeof CLIENT_REASONS];

/** WebSocket close codes with a meaning in sluice (RFC 6455 §7.4 and protocol §3, §6). */
export const CLOSE_CODES = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  /** "A frame over --max-frame-bytes (default 1 MiB) closes the connection (close code 1009)". */
  MESSAGE_TOO_BIG: 1009,
  /**
   * "When a connection's token expires it gets UNAUTHORIZED and is closed (code 4001)"; also
   * how a server that upgrades first and checks the token after would refuse a browser, which
   * cannot read the HTTP status of a refused upgrade.
   */
  TOKEN_EXPIRED: 4001,
  /** The FORBIDDEN counterpart of 4001 (a refused origin, say): the client stops. */
  FORBIDDEN: 4003,
} as const;

/** First byte of a binary frame (the layouts are in engine/codec/frames.ts). */
export const FRAME_TYPES = { DATA: FRAME_DATA, PRODUCE: FRAME_PRODUCE } as const;

/** PRODUCE partition value that lets the server choose. */
export const ANY_PARTITION = PARTITION_ANY;

/** The connection's states; a `state` event `{oldState, newState}` reports every change. */
export enum ConnectionState {
  /** Not connected and not trying (before `connect()`). */
  Disconnected = 'disconnected',
  /** Opening a socket, or waiting out a backoff delay before the next try. */
  Connecting = 'connecting',
  Connected = 'connected',
  /** `close()` was called, or the server refused the token (`closeError` says why); final. */
  Closed = 'closed',
}

/** A subscription's states; a `state` event `{oldState, newState}` on the subscription reports every change. */
export enum SubscriptionState {
  /** Waiting for the server's `subbed`: at first, and again after every reconnection. */
  Subscribing = 'subscribing',
  /** Records flow. */
  Subscribed = 'subscribed',
  /** `unsubscribe()` or `close()` ended it; final. */
  Unsubscribed = 'unsubscribed',
  /** The server ended it with an error (e.g. UNKNOWN_TOPIC after a delete); final. */
  Failed = 'failed',
}

/** Creates the error for a wire answer `{"op":"error","code","message"}`. */
export function wireError(code: unknown, message: unknown): SluiceError {
  const c: ErrorCode = (ERROR_CODES as readonly string[]).includes(code as string) ? (code as ErrorCode) : 'INTERNAL';
  return new SluiceError(c, typeof message === 'string' ? message : String(code), c);
}

/** Creates the error for a failure on the client's side. */
export function clientError(reason: ClientReason, message: string): SluiceError {
  if (reason === CLIENT_REASONS.FRAME_TOO_LARGE) return new SluiceError('TOO_LARGE', message, reason);
  // A server that breaks the contract is a bug, not an outage.
  if (reason === CLIENT_REASONS.PROTOCOL) return new SluiceError('INTERNAL', message, reason);
  return new SluiceError('UNAVAILABLE', message, reason);
}
