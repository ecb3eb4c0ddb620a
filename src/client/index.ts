/**
 * sluice/client: the SDK for browsers (native WebSocket) and Node 20 (the `ws` package,
 * loaded only there). It imports nothing but engine/codec/ and engine/errors.ts, so the
 * browser bundle carries the same RecordBatch v2 codec as the server. See docs/client.md.
 */
export { SluiceClient, connect, wsUrl } from './client.ts';
export { Producer, type ProducerOptions, type ProducerSink, type SendOptions } from './producer.ts';
export { Subscription, type OnRecords } from './subscription.ts';
export { Message, decodeData, parseDataFrame, produceFrame } from './frames.ts';
export { Backoff, type BackoffOptions } from './backoff.ts';
export { ANY_PARTITION, CLIENT_REASONS, CLOSE_CODES, ConnectionState, ERROR_CODES, FRAME_TYPES, SluiceError, SubscriptionState, type ClientReason, type ErrorCode } from './codes.ts';
export type { WebSocketConstructor, WebSocketLike } from './transport.ts';
export type * from './types.ts';
export type * as wire from '../../engine/codec/wire-messages.ts';
