/**
 * Metadata (3): one broker, this node, leader of every partition (wire contract §8: "One
 * node is one broker ... and the leader of every partition"). A topic that does not exist is
 * created only when the request allows it (producers set allow_auto_topic_creation, consumers
 * do not) and --auto-create is on, and the principal may publish to it, as a WebSocket publish
 * creates one. The topic comes back ready (createTopic resolves once it exists), where Kafka
 * would first answer LEADER_NOT_AVAILABLE and let the client ask again.
 *
 * With auth on, "all topics" means those the token may read or write; a topic named in the
 * request that the token may neither read nor write is TOPIC_AUTHORIZATION_FAILED, before
 * anything about it is looked up (so that the answer does not tell whether it exists).
 */
import { SluiceError, TopicExistsError, UnknownTopicError } from '../../../engine/errors.ts';
import { isValidTopicName } from '../../../engine/topic-name.ts';
import type { Handler, Session } from '../session.ts';
import { KafkaError, kafkaErrorFor } from '../protocol/errors.ts';
import type { KafkaShared } from '../shared.ts';
import { maySee, mayWrite } from './acl.ts';

interface MetadataRequest {
  topics: { name: string }[] | null;
  allowAutoTopicCreation: boolean;
}

export function metadataHandler(shared: KafkaShared): Handler {
  return async (body, version, session) => {
    const req = body as unknown as MetadataRequest;
    const { log, config } = shared.ctx;
    const all = req.topics === null || (version === 0 && req.topics.length === 0);
    const names = all ? log.listTopics().filter((t) => maySee(session, t)) : [...new Set(req.topics!.map((t) => t.name))];
    const topics = [];
    for (const name of names) topics.push(await describeTopic(shared, session, name, !all && req.allowAutoTopicCreation && config.autoCreate));
    const { nodeId, host, port } = shared.broker;
    return {
      body: {
        throttleTimeMs: 0,
        brokers: [{ nodeId, host, port, rack: null }],
        clusterId: shared.clusterId,
        controllerId: nodeId,
        topics,
      },
    };
  };
}

async function describeTopic(shared: KafkaShared, session: Session, name: string, mayCreate: boolean): Promise<Record<string, unknown>> {
  const { log, config } = shared.ctx;
  const fail = (errorCode: number) => ({ errorCode, name, isInternal: false, partitions: [] });
  if (!maySee(session, name)) return fail(KafkaError.TOPIC_AUTHORIZATION_FAILED);
  if (!isValidTopicName(name)) return fail(KafkaError.INVALID_TOPIC_EXCEPTION);
  try {
    if (!log.hasTopic(name)) {
      if (!mayCreate || !mayWrite(session, name)) return fail(KafkaError.UNKNOWN_TOPIC_OR_PARTITION);
      try {
        await log.createTopic(name, { partitions: config.partitions });
      } catch (err) {
        if (!(err instanceof TopicExistsError)) throw err; // created meanwhile by someone else: fine
      }
    }
    const info = log.describe(name);
    const { nodeId } = shared.broker;
    return {
      errorCode: KafkaError.NONE,
      name,
      isInternal: false,
      partitions: info.partitions.map((p) => ({
        errorCode: KafkaError.NONE,
        partitionIndex: p.partition,
        leaderId: nodeId,
        leaderEpoch: 0,
        replicaNodes: [nodeId],
        isrNodes: [nodeId],
        offlineReplicas: [],
      })),
    };
  } catch (err) {
    if (err instanceof UnknownTopicError) return fail(KafkaError.UNKNOWN_TOPIC_OR_PARTITION);
    if (err instanceof SluiceError) return fail(kafkaErrorFor(err));
    throw err;
  }
}
