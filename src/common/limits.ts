/**
 * The limits every front enforces the same way, resolved once from the configuration and
 * named with their unit last. Each front's own constants live beside it
 * (src/gateway/limits.ts, src/replay/limits.ts); docs/security.md lists them all.
 */
import { type ProduceLimits, limits as engineLimits } from '../../engine/index.ts';
import type { Config } from './config.ts';

export interface Limits extends ProduceLimits {
  /** A WebSocket frame, a Kafka request, an HTTP body: larger closes or refuses (--max-frame-bytes). */
  frameBytesMax: number;
  /** One record's key + value + headers (--max-record-bytes). */
  recordBytesMax: number;
  /** Headers on one record (--max-record-headers). */
  recordHeadersMax: number;
  /** A published batch's records, decompressed (--max-batch-decoded-bytes). */
  batchDecodedBytesMax: number;
  /** How far a record timestamp may be ahead of the server's clock (--max-timestamp-ahead-ms). */
  timestampAheadMsMax: number;
  /** Topics held at once (--max-topics). */
  topicsMax: number;
  /** Records per second per connection; 0 = unlimited (--publish-rate). */
  publishRecordsPerSecond: number;
  /** Topic-partitions one connection may follow (--max-subscriptions). */
  subscriptionsMax: number;
  /** Connections open at once on the WebSocket (--max-connections). */
  connectionsMax: number;
  /** A silent connection is closed after this long; 0 = never (--idle-timeout-ms). */
  idleTimeoutMs: number;
}

export function resolveLimits(config: Config): Limits {
  return {
    frameBytesMax: config.maxFrameBytes,
    recordBytesMax: config.maxRecordBytes,
    recordHeadersMax: config.maxRecordHeaders,
    batchDecodedBytesMax: config.maxBatchDecodedBytes ?? Math.max(engineLimits.batchDecodedBytesDefault, config.maxRecordBytes),
    timestampAheadMsMax: config.maxTimestampAheadMs,
    topicsMax: config.maxTopics,
    publishRecordsPerSecond: config.publishRate,
    subscriptionsMax: config.maxSubscriptions,
    connectionsMax: config.maxConnections,
    idleTimeoutMs: config.idleTimeoutMs,
  };
}
