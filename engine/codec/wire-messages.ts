/**
 * The JSON control messages of the WebSocket protocol (wire contract §3), declared once:
 * the SDK builds its requests and reads its answers with these types, and the gateway's zod
 * schemas (src/gateway/ws-protocol.ts) are checked against them with `satisfies`, so that a
 * field renamed on one side fails to compile on the other.
 *
 * Types only: nothing here exists at run time, so the browser bundle pays nothing for it.
 * "Every client request may carry an `id` (uint32) that the answer echoes"; an error
 * answering a frame whose id could not be read has none.
 */
import type { ErrorCode } from '../errors.ts';

// ---- client to server -------------------------------------------------------------------

/** Where a `sub` starts: `{time}` is the first record with timestamp >= time (the hw if none). */
export type WireFrom = 'latest' | 'earliest' | { offset: number } | { time: number };

export interface MetaRequest {
  op: 'meta';
  id?: number;
  topic: string;
}

export interface SubRequest {
  op: 'sub';
  id?: number;
  topic: string;
  /** Absent: every partition of the topic. */
  partition?: number;
  /** Absent: 'latest'. */
  from?: WireFrom;
}

export interface UnsubRequest {
  op: 'unsub';
  id?: number;
  topic: string;
  partition?: number;
}

/** One record through the JSON path: `value` is stored as UTF-8, `value64` is standard base64 with padding, neither is a null value. */
export interface PubRequest {
  op: 'pub';
  id?: number;
  topic: string;
  partition?: number;
  /** `""` is a key; absent is a null key. */
  key?: string;
  value?: string;
  value64?: string;
  headers?: Record<string, string>;
}

export interface PingRequest {
  op: 'ping';
  id?: number;
}

/** Replaces the connection's token (refresh before expiry). */
export interface AuthRequest {
  op: 'auth';
  id?: number;
  token: string;
}

export type ControlRequest = MetaRequest | SubRequest | UnsubRequest | PubRequest | PingRequest | AuthRequest;

// ---- server to client -------------------------------------------------------------------

export interface MetaPartition {
  partition: number;
  epoch: string;
  /** The first offset still stored. */
  start: number;
  /** The offset after the last visible record. */
  hw: number;
}

export interface MetaAnswer {
  op: 'meta';
  id?: number;
  topic: string;
  partitions: MetaPartition[];
}

export interface SubbedPartition {
  partition: number;
  epoch: string;
  /** The first offset this subscription delivers. */
  next: number;
  hw: number;
}

export interface SubbedAnswer {
  op: 'subbed';
  id?: number;
  topic: string;
  partitions: SubbedPartition[];
}

export interface UnsubbedAnswer {
  op: 'unsubbed';
  id?: number;
}

/** The answer to `pub` (no count) and to a binary PRODUCE (count = the batch's records, offset = the first). */
export interface AckAnswer {
  op: 'ack';
  id?: number;
  partition: number;
  offset: number;
  count?: number;
}

export interface PongAnswer {
  op: 'pong';
  id?: number;
}

export interface AuthedAnswer {
  op: 'authed';
  id?: number;
}

/** An error answer, or (with `topic` and `partition`, without `id`) the end of a subscription. */
export interface ErrorAnswer {
  op: 'error';
  id?: number;
  code: ErrorCode;
  message: string;
  topic?: string;
  partition?: number;
}

/** Retention deleted `from..to-1` before the subscription read them; delivery goes on from `to`. */
export interface GapMessage {
  op: 'gap';
  topic: string;
  partition: number;
  from: number;
  to: number;
}

export type ServerMessage = MetaAnswer | SubbedAnswer | UnsubbedAnswer | AckAnswer | PongAnswer | AuthedAnswer | ErrorAnswer | GapMessage;

/** The answer a request gets when it succeeds. */
export interface AnswerOf {
  meta: MetaAnswer;
  sub: SubbedAnswer;
  unsub: UnsubbedAnswer;
  pub: AckAnswer;
  ping: PongAnswer;
  auth: AuthedAnswer;
}
