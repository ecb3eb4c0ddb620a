/** The SDK's public types that several files share. */
import type { RecordHeader } from '../../engine/codec/index.ts';
import type { BackoffOptions } from './backoff.ts';
import type { ConnectionState, SluiceError, SubscriptionState } from './codes.ts';
import type { WebSocketConstructor } from './transport.ts';

export type { RecordHeader };

/**
 * Where a subscription starts. A resume point `{epoch, offset}` (what `Subscription.positions()`
 * returns; give `partition` with it) starts at `offset` only if the partition still has that
 * epoch — an offset alone is unsafe, since a topic deleted and created again reuses offsets
 * 0, 1, 2... for a different history; on another epoch the subscription starts from the
 * earliest record and says so (`subscribed` event with `resumed: false, reason:
 * 'epoch-changed'`), also when the new history is shorter than the old offset.
 */
export type From = 'latest' | 'earliest' | { offset: number } | { time: number } | { epoch: string; offset: number };

export interface ClientOptions {
  /** JWT sent as `?token=` (browsers cannot set headers on a WebSocket). */
  token?: string;
  /**
   * Called before every (re)connection for a fresh token, and before the token's `exp` to
   * refresh it over the open connection (the `auth` op); wins over `token`. After a refused
   * token (HTTP 401 or close 4001) it is asked once more; a second refusal in a row closes
   * the client with UNAUTHORIZED.
   */
  getToken?: () => string | Promise<string>;
  /** How long before a token's `exp` getToken() refreshes it (ms, default 30 000; at most half the time left). */
  tokenRefreshLeadMs?: number;
  /** A WebSocket constructor; default: the global one (browsers), else the `ws` package (Node). */
  WebSocket?: WebSocketConstructor;
  /** Reconnect after the connection drops (default true), to the next URL when there are several. */
  reconnect?: boolean;
  /**
   * Whether `connect()` keeps trying when the very first attempt fails (default true). With
   * false (the CLI's choice) each URL is tried once, then `connect()` rejects; reconnections
   * after a first success always retry.
   */
  retryFirstConnect?: boolean;
  /** Full-jitter exponential backoff between attempts (default base 100 ms, max 10 s). */
  backoff?: BackoffOptions;
  /** How long `connect()` waits for the first connection, and each attempt for its socket to open (ms, default 10 000). */
  connectTimeoutMs?: number;
  /** How long meta, sub, unsub, auth and ping wait for their answer (ms, default 10 000). */
  requestTimeoutMs?: number;
  /** A ping this often; a missing pong within `requestTimeoutMs` drops and reopens the connection (ms, default 25 000, 0 = off). */
  pingIntervalMs?: number;
  /**
   * What happens to publishes whose answer has not come when the connection drops: `true`
   * (default) sends them again once reconnected, in their original order — at-least-once, a
   * record whose ack was lost in the drop may be stored twice; `false` rejects them with
   * `SluiceError{code: 'UNAVAILABLE', reason: 'DISCONNECTED'}`. Either way none is dropped
   * silently, and `close()` rejects what is left with reason `CLOSED`.
   */
  retryPublishes?: boolean;
  /** Unanswered publishes (in flight + queued) at most; more are rejected with reason QUEUE_FULL (default 10 000). */
  maxPendingPublishes?: number;
  /** Bytes of unanswered publishes at most (default 16 MiB). */
  maxPendingBytes?: number;
  /** The server's --max-frame-bytes: a larger frame is refused locally with TOO_LARGE (default 1 MiB). */
  maxFrameBytes?: number;
}

export interface SubscribeOptions {
  /** One partition; all of them when absent. */
  partition?: number;
  /** Default 'latest'. */
  from?: From;
  /** Registered before the `sub` is sent, so it also sees the events before `subscribe()` resolves. */
  onSubscribed?: (e: SubscribedEvent) => void;
  onGap?: (e: GapEvent) => void;
  onState?: (e: SubscriptionStateEvent) => void;
}

export interface PublishOptions {
  /** Records with the same key go to the same partition (the server's murmur2 placement). */
  key?: string;
  partition?: number;
  headers?: Record<string, string>;
}

export interface PublishAck {
  partition: number;
  offset: number;
}

export interface PartitionMeta {
  partition: number;
  epoch: string;
  /** The first offset still stored. */
  start: number;
  /** High watermark: the offset after the last visible record. */
  hw: number;
}

export interface TopicMeta {
  topic: string;
  partitions: PartitionMeta[];
}

/** A partition's position in a subscription; `{epoch, offset}` is its resume point. */
export interface PartitionPosition {
  partition: number;
  epoch: string;
  /** The next offset this subscription will deliver. */
  offset: number;
  hw: number;
}

/**
 * initial: the first `sub`, from `from`. resumed: from the resume point, same epoch (exact
 * unless a `gap` came with it). epoch-changed: the topic was deleted and created again;
 * restarted from its earliest record. offset-out-of-range: the partition (on this server)
 * ends below the resume point in the same epoch — a cluster node whose copy lags, or a
 * server that lost unsynced records; the subscription holds its position and delivers from
 * it once the partition gets there, never an offset twice.
 */
export type ResumeReason = 'initial' | 'resumed' | 'epoch-changed' | 'offset-out-of-range';

export interface SubscribedEvent {
  topic: string;
  /**
   * True when the subscription went on exactly where it stopped: same epoch, next offset as
   * asked. False for the first subscription and for a resume that could not be exact.
   */
  resumed: boolean;
  reason: ResumeReason;
  partitions: PartitionPosition[];
}

export interface GapEvent {
  topic: string;
  partition: number;
  /** The first offset lost. */
  from: number;
  /** The offset delivery goes on from. */
  to: number;
}

export interface StateEvent {
  oldState: ConnectionState;
  newState: ConnectionState;
}

export interface DisconnectedEvent {
  /** The server the connection (or the attempt) was to. */
  url: string;
  /** The WebSocket close code (1006 when the socket never opened). */
  code: number;
  reason: string;
  /** False when the client gives up: then `error` says why and the state becomes `closed`. */
  willReconnect: boolean;
  /** Set when the server refused the token (UNAUTHORIZED, FORBIDDEN) or the client gives up. */
  error?: SluiceError;
}

export interface ClientEvents extends Record<string, unknown> {
  state: StateEvent;
  /** A failure with no request to reject: a server error without id, a bad frame, a throwing callback. */
  error: SluiceError | Error;
  disconnected: DisconnectedEvent;
}

export interface SubscriptionStateEvent {
  oldState: SubscriptionState;
  newState: SubscriptionState;
}

export interface SubscriptionEvents extends Record<string, unknown> {
  /** `subscribing` → `subscribed` at first and after every reconnection; `unsubscribed` or `failed` at the end. */
  state: SubscriptionStateEvent;
  subscribed: SubscribedEvent;
  gap: GapEvent;
  /** The subscription ended because of this error (e.g. UNKNOWN_TOPIC after a delete). */
  error: Error;
}
