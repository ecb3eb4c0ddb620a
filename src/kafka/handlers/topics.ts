/**
 * CreateTopics (19) and DeleteTopics (20), both needing the admin acl (wire contract §6:
 * "`admin` allows creating and deleting topics"); without it each topic is
 * TOPIC_AUTHORIZATION_FAILED and nothing happens.
 *
 * CreateTopics: num_partitions -1 takes --partitions. One node holds one copy, so a
 * replication factor of -1 (the broker's default) or 1 is accepted and anything more is
 * INVALID_REPLICATION_FACTOR, as a one-broker Kafka answers; a manual replica assignment is
 * INVALID_REPLICA_ASSIGNMENT. Configs: `retention.ms` and `retention.bytes` (integers, -1 =
 * keep all) set the topic's retention; any other config is INVALID_CONFIG rather than
 * silently ignored. validate_only checks everything and creates nothing.
 */
import { SluiceError, TopicExistsError } from '../../../engine/errors.ts';
import { partitionsMax } from '../../../engine/limits.ts';
import type { CreateTopicOptions } from '../../../engine/log.ts';
import { isValidTopicName } from '../../../engine/topic-name.ts';
import type { Handler } from '../session.ts';
import { KafkaError, kafkaErrorFor } from '../protocol/errors.ts';
import type { KafkaShared } from '../shared.ts';
import { mayAdmin } from './acl.ts';

interface CreatableTopic {
  name: string;
  numPartitions: number;
  replicationFactor: number;
  assignments: unknown[];
  configs: { name: string; value: string | null }[];
}

class Refusal extends Error {
  constructor(
    readonly errorCode: number,
    message: string,
  ) {
    super(message);
  }
}

function optionsFor(t: CreatableTopic, defaultPartitions: number): CreateTopicOptions {
  if (!isValidTopicName(t.name)) throw new Refusal(KafkaError.INVALID_TOPIC_EXCEPTION, `invalid topic name ${JSON.stringify(t.name)}`);
  const partitions = t.numPartitions === -1 ? defaultPartitions : t.numPartitions;
  if (!Number.isInteger(partitions) || partitions < 1 || partitions > partitionsMax) throw new Refusal(KafkaError.INVALID_PARTITIONS, `num_partitions ${t.numPartitions} is not 1..${partitionsMax} (or -1)`);
  if (t.replicationFactor !== -1 && t.replicationFactor !== 1) throw new Refusal(KafkaError.INVALID_REPLICATION_FACTOR, `replication factor ${t.replicationFactor}: this broker keeps one copy (use 1 or -1)`);
  if (t.assignments.length > 0) throw new Refusal(KafkaError.INVALID_REPLICA_ASSIGNMENT, 'manual replica assignments are not supported');
  const opts: CreateTopicOptions = { partitions };
  for (const c of t.configs) {
    if (c.name !== 'retention.ms' && c.name !== 'retention.bytes') throw new Refusal(KafkaError.INVALID_CONFIG, `config ${JSON.stringify(c.name)} is not supported (retention.ms and retention.bytes are)`);
    const n = c.value === null ? NaN : Number(c.value);
    if (!Number.isSafeInteger(n) || n < -1) throw new Refusal(KafkaError.INVALID_CONFIG, `${c.name} ${JSON.stringify(c.value)} is not an integer >= -1`);
    if (c.name === 'retention.ms') opts.retentionMs = n;
    else opts.retentionBytes = n;
  }
  return opts;
}

export function createTopicsHandler(shared: KafkaShared): Handler {
  const { log, config } = shared.ctx;
  return async (body, _version, session) => {
    const req = body as unknown as { topics: CreatableTopic[]; validateOnly: boolean };
    const topics = [];
    const seen = new Set<string>();
    for (const t of req.topics) {
      const result = { name: t.name, errorCode: KafkaError.NONE as number, errorMessage: null as string | null, numPartitions: -1, replicationFactor: -1, configs: null };
      topics.push(result);
      try {
        if (!mayAdmin(session)) throw new Refusal(KafkaError.TOPIC_AUTHORIZATION_FAILED, 'token does not allow admin (create or delete topics)');
        if (seen.has(t.name)) throw new Refusal(KafkaError.INVALID_REQUEST, 'topic named twice in one request');
        seen.add(t.name);
        const opts = optionsFor(t, config.partitions);
        if (req.validateOnly) {
          if (log.hasTopic(t.name)) throw new TopicExistsError(t.name);
        } else {
          await log.createTopic(t.name, opts);
        }
        result.numPartitions = opts.partitions;
        result.replicationFactor = 1;
      } catch (err) {
        refused(result, err);
      }
    }
    return { body: { throttleTimeMs: 0, topics } };
  };
}

/** A topic's refusal as its result's error code and message; anything but a refusal is a bug and throws. */
function refused(result: { errorCode: number; errorMessage: string | null }, err: unknown): void {
  if (err instanceof Refusal) result.errorCode = err.errorCode;
  else if (err instanceof SluiceError) result.errorCode = kafkaErrorFor(err);
  else throw err;
  result.errorMessage = err.message;
}

export function deleteTopicsHandler(shared: KafkaShared): Handler {
  const { log } = shared.ctx;
  return async (body, _version, session) => {
    const req = body as unknown as { topicNames: string[] };
    const responses = [];
    for (const name of req.topicNames) {
      const result = { name, errorCode: KafkaError.NONE as number, errorMessage: null as string | null };
      responses.push(result);
      try {
        if (!mayAdmin(session)) throw new Refusal(KafkaError.TOPIC_AUTHORIZATION_FAILED, 'token does not allow admin (create or delete topics)');
        await log.deleteTopic(name);
      } catch (err) {
        refused(result, err);
      }
    }
    return { body: { throttleTimeMs: 0, responses } };
  };
}
