/**
 * Limits of the WebSocket and HTTP front, named with their unit last, in one place so that
 * they can be read (and documented in docs/security.md) together. The configured limits
 * every front shares (frame and record bytes, rates, connections) are in
 * ../common/limits.ts; these are the gateway's own.
 */

/** Above this many bytes queued in uWS for a socket, its subscriptions are fed from disk in `drain`. */
export const backpressureBytesMax = 1024 * 1024;

/**
 * How much one disk read hands to one DATA message (at least one whole batch). Measured
 * (loadtest/catchup-load.ts, 1 GiB partition): 256 KiB reads cost the server 0.4-0.6 CPU
 * s/GB, 1 MiB reads ~0.33, for 1.7-3 GB/s to one subscriber.
 */
export const catchUpReadBytesMax = 1024 * 1024;

/**
 * A subscriber catching up from disk is sent its next read only while uWS holds less than
 * this for its socket. Kept well below what one read sends: uWS keeps a socket's unsent
 * bytes in one buffer and moves what is left to its front after each partial write, so a
 * deep queue is copied over and over (1.8 GB/s with a 1 MiB mark, 1.8-3 GB/s with 256 KiB).
 */
export const catchUpBufferedBytesMax = 256 * 1024;

/**
 * uWS drops a send (status 2) once a socket holds more than this. sluice keeps each socket
 * near backpressureBytesMax itself, so this only guards against a bug.
 */
export const uwsBackpressureBytesMax = 64 * 1024 * 1024;

/**
 * A connection whose socket holds more than this, unsent, when an answer (ack, error,
 * `subbed`, `meta`…) is to be sent is closed with closeCodeAnswersUnread: its client sends
 * requests and does not read the answers. DATA frames stop at backpressureBytesMax (then
 * subscriptions wait for `drain`), so what piles up past it is answers. Well below
 * uwsBackpressureBytesMax, where uWS would drop answers without telling anyone.
 */
export const answerBacklogBytesMax = 4 * 1024 * 1024;

/**
 * RFC 6455 §7.4.1: "1008 indicates that an endpoint is terminating the connection because
 * it has received a message that violates its policy." Here: answers left unread.
 */
export const closeCodeAnswersUnread = 1008;

/**
 * The most uWS buffers of one incoming message before dropping the connection: uWS drops a
 * message over its maxPayloadLength without a close frame (the peer sees 1006), so it is
 * given up to twice --max-frame-bytes and sluice closes with 1009 itself.
 */
export function frameHardCapBytes(frameBytesMax: number): number {
  return Math.min(frameBytesMax * 2, frameBytesMax + 64 * 1024 * 1024);
}

/** At most this many records per `GET /v1/topics/{t}/records`. */
export const readRecordsLimitMax = 10_000;

/**
 * Keys, values and headers one `GET /v1/topics/{t}/records` answer carries, in bytes (at
 * least one record): past it the answer stops early with `"more":true` and `next`. Without
 * it, `limit=10000` over records of 1 MiB built a 10 GB answer (JSON of base64) and the
 * server ran out of heap.
 */
export const readRecordsBytesMax = 4 * 1024 * 1024;

/** The log read size of `GET /v1/topics/{t}/records`: whole batches up to this many bytes per read. */
export const readRecordsChunkBytes = 1024 * 1024;

/** At most this many records per `POST /v1/topics/{t}/records`. */
export const postRecordsMax = 100_000;

/** An HTTP request body: --max-frame-bytes, but never less than this (a topic create is tiny). */
export const bodyBytesMin = 64 * 1024;

export function bodyBytesMax(frameBytesMax: number): number {
  return Math.max(frameBytesMax, bodyBytesMin);
}
