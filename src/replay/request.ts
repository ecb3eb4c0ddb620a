/**
 * The replay request line (wire contract §4), validated by zod:
 *
 *   {"topic","partition","from": offset | "earliest" | "latest",
 *    "to"?: offset (exclusive), "maxBytes"?: body bytes for the whole request,
 *    "follow"?: bool, "token"?: string}
 *
 * Unknown fields are refused (BAD_REQUEST) rather than ignored, so that a misspelt
 * `"maxbytes"` does not silently turn into "no limit".
 */
import { z } from 'zod';
import { isValidTopicName } from '../../engine/index.ts';
import { BadRequestError } from '../../engine/index.ts';

const offset = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const ReplayRequestSchema = z
  .object({
    topic: z.string().refine(isValidTopicName, { message: 'not a valid topic name' }),
    partition: z.number().int().min(0).max(0xffffffff),
    from: z.union([offset, z.literal('earliest'), z.literal('latest')]),
    to: offset.optional(),
    maxBytes: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
    follow: z.boolean().optional(),
    token: z.string().max(16 * 1024).optional(),
  })
  .strict();

export type ReplayRequest = z.infer<typeof ReplayRequestSchema>;

/** Parses an already JSON-decoded request; throws BadRequestError naming the first problem. */
export function parseReplayRequest(value: unknown): ReplayRequest {
  const r = ReplayRequestSchema.safeParse(value);
  if (r.success) return r.data;
  const i = r.error.issues[0];
  const where = i.path.length > 0 ? i.path.join('.') : 'request';
  const what = i.code === 'unrecognized_keys' ? `unknown field(s) ${i.keys.join(', ')}` : i.message;
  throw new BadRequestError(`${where}: ${what}`, 'BAD_REPLAY_REQUEST');
}
