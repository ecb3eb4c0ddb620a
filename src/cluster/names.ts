/**
 * What sluice calls things in NATS. Every name starts with the cluster name (`--cluster-name`,
 * default `sluice`), so two sluice clusters can share one NATS:
 *
 *   stream   <cluster>-<epoch>        one per partition; the epoch is the partition's random
 *                                     id (16 hex digits), so a topic deleted and created again
 *                                     gets new streams and never meets the old ones
 *   subject  <cluster>.p.<epoch>      the stream's only subject
 *   subject  <cluster>.y.<epoch>      core NATS, not stored: "let me append" (appender.ts)
 *   KV       <cluster>-topics         topic metadata, one key per topic
 *   KV       <cluster>-offsets        consumer-group offsets, one key per group
 *
 * Topic names may hold `.`, which a KV key may not start or end with nor double; `=` is not
 * a topic character, so `.` becomes `=` in the key and the mapping is one to one.
 */

/** Letters, digits, `_` and `-`: valid in stream names, bucket names and subject tokens alike. */
export const clusterNamePattern = /^[A-Za-z0-9_-]{1,32}$/;
export const nodeIdPattern = /^[A-Za-z0-9_-]{1,64}$/;
export const epochPattern = /^[0-9a-f]{16}$/;

export function streamName(cluster: string, epoch: string): string {
  return `${cluster}-${epoch}`;
}

export function subjectName(cluster: string, epoch: string): string {
  return `${cluster}.p.${epoch}`;
}

/** Where a node asks the others to pause their publishes to a partition for a moment. */
export function yieldSubject(cluster: string, epoch: string): string {
  return `${cluster}.y.${epoch}`;
}

/** The epoch of one of this cluster's partition streams, or null for any other stream. */
export function epochOfStream(cluster: string, stream: string): string | null {
  if (!stream.startsWith(`${cluster}-`)) return null;
  const rest = stream.slice(cluster.length + 1);
  return epochPattern.test(rest) ? rest : null;
}

export function topicsBucket(cluster: string): string {
  return `${cluster}-topics`;
}

export function offsetsBucket(cluster: string): string {
  return `${cluster}-offsets`;
}

export function topicKey(topic: string): string {
  return topic.replaceAll('.', '=');
}

export function topicOfKey(key: string): string {
  return key.replaceAll('=', '.');
}
