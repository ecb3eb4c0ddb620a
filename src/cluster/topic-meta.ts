/**
 * A topic as the cluster's metadata bucket (`<cluster>-topics`) holds it: one JSON value per
 * topic, written once when the topic is created and deleted with it. Each node's mirror keeps
 * a copy (the local engine's meta file); the bucket is the truth. Values come over the network,
 * so they are validated like any other input.
 */
import { z } from 'zod';
import { isValidTopicName, limits } from '../../engine/index.ts';
import { epochPattern } from './names.ts';

export const ClusterTopicMeta = z
  .object({
    name: z.string().refine(isValidTopicName, { message: 'is not a valid topic name' }),
    partitions: z.number().int().min(1).max(limits.partitionsMax),
    /** One per partition: the partition's epoch, and the name of its stream. */
    epochs: z.array(z.string().regex(epochPattern)),
    retentionMs: z.number().int().min(-1),
    retentionBytes: z.number().int().min(-1),
    createdAt: z.number(),
    /** JetStream replicas of the topic's streams. */
    replicas: z.number().int().min(1).max(5),
  })
  .refine((m) => m.epochs.length === m.partitions, { message: 'one epoch per partition' });

export type ClusterTopicMeta = z.infer<typeof ClusterTopicMeta>;

/** The value's meta, or null (with the reason) when it is not one. */
export function parseTopicMeta(value: Uint8Array): { meta: ClusterTopicMeta } | { error: string } {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(value).toString('utf8'));
  } catch (err) {
    return { error: `not JSON: ${(err as Error).message}` };
  }
  const r = ClusterTopicMeta.safeParse(json);
  return r.success ? { meta: r.data } : { error: r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') };
}

export function encodeTopicMeta(meta: ClusterTopicMeta): Uint8Array {
  return Buffer.from(JSON.stringify(meta));
}
