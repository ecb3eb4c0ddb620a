/**
 * Limits of the Kafka front, named with their unit last. The request size limit is the
 * shared --max-frame-bytes (../common/limits.ts). Each limit has a test that crosses it
 * (test/kafka/) and docs/security.md lists them.
 */

/** Kafka connections open at once; one more is closed as soon as it is accepted. */
export const connectionsMax = 10_000;

/**
 * Requests read from one connection and not yet answered. Past this the connection is not
 * read until answers go out, so a client that pipelines (librdkafka keeps up to a million
 * requests in flight) holds at most this many request buffers in memory.
 */
export const inFlightRequestsMax = 64;

/** Bytes of requests read from one connection and not yet answered (at least one request is always taken). */
export const inFlightRequestBytesMax = 32 * 1024 * 1024;

/** Kafka's `connections.max.idle.ms` default: a connection that sends nothing for this long is closed. */
export const idleTimeoutMs = 10 * 60 * 1000;

/** A Fetch waits at most this long for data, whatever its max_wait_ms says. */
export const fetchWaitMsMax = 30_000;

/**
 * A partition's stored batches of at least this many bytes in one Fetch answer go out with
 * sendfile(2) (wire contract §8) from a descriptor the front opens itself. Below it, a
 * partition's few batches (a live tail) are written from the log's mapped view in the same
 * writev(2) as the answer's fields: no copy in user space either, and no dup, poll handle and
 * open per answer for a few hundred bytes.
 *
 * Measured here (docs/kafka.md, "Fetch: sendfile or the mapping") on a quiet machine with
 * 1 MiB answers, librdkafka's and kafkajs's default: 2.31 GB/s at 0.178 server CPU s/GiB
 * through sendfile, 2.92 GB/s at 0.258 s/GiB from the mapping; sendfile costs less CPU, and
 * both are above the replay port (2.04 GB/s). An earlier run under heavy load had put the
 * mapping far ahead; it did not hold on a quiet machine.
 */
export const sendfileBytesMin = 16 * 1024;

/**
 * Bytes of one partition in one Fetch answer, whatever partition_max_bytes says. Reading a
 * partition walks its batch headers synchronously (~0.35 us each): 32 MiB of the smallest
 * batches (~80 bytes) is ~400,000 headers, ~140 ms of the event loop, the most one answer may
 * take. Large batches reach it at a handful of headers; the client simply fetches again.
 */
export const fetchPartitionBytesMax = 32 * 1024 * 1024;

/** Topic-partitions one Fetch, ListOffsets, Produce or OffsetCommit may name; more is INVALID_REQUEST. */
export const partitionsPerRequestMax = 10_000;

/** Kafka's group.min.session.timeout.ms and group.max.session.timeout.ms defaults. */
export const sessionTimeoutMsMin = 6_000;
export const sessionTimeoutMsMax = 1_800_000;

/** Groups the coordinator keeps at once (empty ones with no member are dropped from memory). */
export const groupsMax = 10_000;

/** Members of one group; one more JoinGroup gets GROUP_MAX_SIZE_REACHED (Kafka's group.max.size is unbounded by default). */
export const groupMembersMax = 1_000;

/** Protocols one JoinGroup may offer, and bytes of one member's metadata or assignment. */
export const groupProtocolsMax = 32;
export const groupMetadataBytesMax = 1024 * 1024;

/** A group id or member id longer than this is INVALID_GROUP_ID / UNKNOWN_MEMBER_ID. */
export const groupIdLengthMax = 1024;

/**
 * Kafka's group.initial.rebalance.delay.ms: an empty group waits this long after its first
 * JoinGroup for others to arrive, so that consumers started together share one rebalance.
 */
export const initialRebalanceDelayMs = 300;

/** Offset commit metadata strings longer than this are OFFSET_METADATA_TOO_LARGE (Kafka's offset.metadata.max.bytes). */
export const offsetMetadataBytesMax = 4096;

/** Batches remembered per idempotent producer and partition (Kafka keeps five: the most a producer has in flight). */
export const producerBatchesKept = 5;

/** Idempotent producers remembered per partition; the least recently seen is forgotten first. */
export const producersPerPartitionMax = 10_000;

/** The longest one Produce answer is held for a connection over --publish-rate (its debt stays). */
export const throttleMsMax = 30_000;

/** On shutdown, connections still open after this long are destroyed. */
export const shutdownGraceMs = 2000;
