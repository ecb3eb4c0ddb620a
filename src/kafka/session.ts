/**
 * What a Kafka request handler is given and gives back: the session of the connection it
 * serves, and its reply. Declared apart from connection.ts so that handlers, the shared
 * context and the connection depend on these types, not on one another.
 */
import type { Principal } from '../common/auth.ts';

/** What a handler answers: the response body, or null for no answer at all (Produce with acks 0). */
export interface Reply {
  body: Record<string, unknown>;
  /** Called once the response has been written, or dropped because the connection closed. */
  release?: () => void;
  /** Close the connection once this response is out (a failed authentication). */
  closeAfter?: boolean;
}

export type HandlerResult = Reply | null | Promise<Reply | null>;

/** What handlers see of the connection they serve. */
export interface Session {
  readonly id: number;
  readonly clientId: string | null;
  readonly remote: string;
  /** Who the connection acts as; null with auth off. */
  readonly principal: Principal | null;
  /** Aborted when the connection closes. */
  readonly signal: AbortSignal;
  readonly closed: boolean;
  /**
   * Charges `records` to the connection's --publish-rate bucket and returns how long its
   * answer should be held (0 when within the rate, or no rate is set).
   */
  publishDelayMs(records: number): number;
  /** After a successful SASL exchange: the connection may send any request. */
  authenticate(principal: Principal): void;
  /** The SASL mechanism chosen by SaslHandshake, or null. */
  mechanism: string | null;
  /** SaslHandshake v0: the next frame is raw SASL bytes, not a request. */
  rawSasl: boolean;
}

export type Handler = (req: Record<string, unknown>, version: number, session: Session) => HandlerResult;
