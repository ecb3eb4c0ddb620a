/**
 * The consumer-group APIs: FindCoordinator (10), JoinGroup (11), SyncGroup (14), Heartbeat
 * (12), LeaveGroup (13), OffsetCommit (8) and OffsetFetch (9). The group protocol is in
 * ../groups/group.ts; committed offsets go through the log's OffsetStore (`log.offsets`),
 * durable before OffsetCommit is answered, so they survive a restart (and, in cluster mode,
 * a node).
 *
 * Acl (wire contract §8): offsets are read and committed with acl.sub on each topic
 * (TOPIC_AUTHORIZATION_FAILED otherwise). Joining a group needs an authenticated connection
 * and nothing more: tokens carry no group patterns, so any client may join any group;
 * docs/kafka.md says so.
 */
import { SluiceError } from '../../../engine/errors.ts';
import type { CommittedOffset } from '../../../engine/log.ts';
import type { Handler } from '../session.ts';
import type { GroupCoordinator } from '../groups/coordinator.ts';
import type { Protocol } from '../groups/group.ts';
import * as limits from '../limits.ts';
import { KafkaError, kafkaErrorFor } from '../protocol/errors.ts';
import type { KafkaShared } from '../shared.ts';
import { mayRead } from './acl.ts';

const COORDINATOR_KEY_GROUP = 0;

function validGroupId(id: string): boolean {
  return id.length > 0 && id.length <= limits.groupIdLengthMax;
}

export function findCoordinatorHandler(shared: KafkaShared): Handler {
  return (body) => {
    const { nodeId, host, port } = shared.broker;
    if (body.keyType !== COORDINATOR_KEY_GROUP) {
      return { body: { throttleTimeMs: 0, errorCode: KafkaError.INVALID_REQUEST, errorMessage: 'sluice coordinates consumer groups only (no transactions)', nodeId: -1, host: '', port: -1 } };
    }
    return { body: { throttleTimeMs: 0, errorCode: KafkaError.NONE, errorMessage: null, nodeId, host, port } };
  };
}

export function joinGroupHandler(coordinator: GroupCoordinator): Handler {
  return async (body, _version, session) => {
    const fail = (errorCode: number) => ({ body: { throttleTimeMs: 0, errorCode, generationId: -1, protocolType: null, protocolName: null, leader: '', memberId: body.memberId, members: [] } });
    const groupId = body.groupId as string;
    if (!validGroupId(groupId)) return fail(KafkaError.INVALID_GROUP_ID);
    const group = coordinator.group(groupId);
    if (group === null) return fail(KafkaError.COORDINATOR_NOT_AVAILABLE);
    const result = await group.join({
      memberId: body.memberId as string,
      groupInstanceId: body.groupInstanceId as string | null,
      clientId: session.clientId ?? '',
      clientHost: session.remote,
      sessionTimeoutMs: body.sessionTimeoutMs as number,
      rebalanceTimeoutMs: body.rebalanceTimeoutMs as number,
      protocolType: body.protocolType as string,
      protocols: body.protocols as Protocol[],
    });
    coordinator.forgetIfEmpty(group);
    return { body: { throttleTimeMs: 0, ...result } };
  };
}

export function syncGroupHandler(coordinator: GroupCoordinator): Handler {
  return async (body) => {
    const group = coordinator.existing(body.groupId as string);
    if (!group) return { body: { throttleTimeMs: 0, errorCode: KafkaError.UNKNOWN_MEMBER_ID, protocolType: null, protocolName: null, assignment: Buffer.alloc(0) } };
    const result = await group.sync(
      body.memberId as string,
      body.generationId as number,
      body.assignments as { memberId: string; assignment: Buffer }[],
      body.protocolType as string | null,
      body.protocolName as string | null,
    );
    return { body: { throttleTimeMs: 0, ...result } };
  };
}

export function heartbeatHandler(coordinator: GroupCoordinator): Handler {
  return (body) => {
    const group = coordinator.existing(body.groupId as string);
    const errorCode = group ? group.heartbeat(body.memberId as string, body.generationId as number) : KafkaError.UNKNOWN_MEMBER_ID;
    return { body: { throttleTimeMs: 0, errorCode } };
  };
}

export function leaveGroupHandler(coordinator: GroupCoordinator): Handler {
  return (body, version) => {
    const group = coordinator.existing(body.groupId as string);
    if (version < 3) {
      const errorCode = group ? group.leave(body.memberId as string) : KafkaError.UNKNOWN_MEMBER_ID;
      return { body: { throttleTimeMs: 0, errorCode } };
    }
    const members = (body.members as { memberId: string; groupInstanceId: string | null }[]).map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
      errorCode: group ? group.leave(m.memberId) : KafkaError.UNKNOWN_MEMBER_ID,
    }));
    return { body: { throttleTimeMs: 0, errorCode: KafkaError.NONE, members } };
  };
}

interface CommitTopic {
  name: string;
  partitions: { partitionIndex: number; committedOffset: number; committedMetadata: string | null }[];
}

export function offsetCommitHandler(shared: KafkaShared, coordinator: GroupCoordinator): Handler {
  const { log, logger } = shared.ctx;
  return async (body, _version, session) => {
    const groupId = body.groupId as string;
    const topics = body.topics as CommitTopic[];
    let count = 0;
    for (const t of topics) count += t.partitions.length;
    const all = (errorCode: number) => ({ body: { throttleTimeMs: 0, topics: topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode })) })) } });
    if (!validGroupId(groupId)) return all(KafkaError.INVALID_GROUP_ID);
    if (count > limits.partitionsPerRequestMax) return all(KafkaError.INVALID_REQUEST);
    const group = coordinator.existing(groupId);
    const generation = body.generationIdOrMemberEpoch as number;
    const memberId = body.memberId as string;
    const check = group ? group.checkCommit(memberId, generation) : generation < 0 && memberId === '' ? KafkaError.NONE : KafkaError.UNKNOWN_MEMBER_ID;
    if (check !== KafkaError.NONE) return all(check);
    const now = Date.now();
    const accepted: CommittedOffset[] = [];
    const answers = topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => {
        const a = { partitionIndex: p.partitionIndex, errorCode: KafkaError.NONE as number };
        if (!mayRead(session, t.name)) a.errorCode = KafkaError.TOPIC_AUTHORIZATION_FAILED;
        else if (!log.hasTopic(t.name) || p.partitionIndex < 0 || p.partitionIndex >= partitionCount(shared, t.name)) a.errorCode = KafkaError.UNKNOWN_TOPIC_OR_PARTITION;
        else if (p.committedMetadata !== null && Buffer.byteLength(p.committedMetadata) > limits.offsetMetadataBytesMax) a.errorCode = KafkaError.OFFSET_METADATA_TOO_LARGE;
        else if (!Number.isSafeInteger(p.committedOffset) || p.committedOffset < -1) a.errorCode = KafkaError.INVALID_COMMIT_OFFSET_SIZE;
        else accepted.push({ topic: t.name, partition: p.partitionIndex, offset: p.committedOffset, metadata: p.committedMetadata, committedAt: now });
        return a;
      }),
    }));
    if (accepted.length > 0) {
      try {
        await log.offsets.commit(groupId, accepted);
      } catch (err) {
        const e = err instanceof SluiceError ? err : new SluiceError('INTERNAL', (err as Error).message);
        if (e.code === 'INTERNAL') logger.error({ err, group: groupId }, 'kafka offset commit failed');
        const code = kafkaErrorFor(e);
        for (const t of answers) for (const p of t.partitions) if (p.errorCode === KafkaError.NONE) p.errorCode = code;
      }
    }
    return { body: { throttleTimeMs: 0, topics: answers } };
  };
}

function partitionCount(shared: KafkaShared, topic: string): number {
  try {
    return shared.ctx.log.partitionCount(topic);
  } catch {
    return 0;
  }
}

export function offsetFetchHandler(shared: KafkaShared): Handler {
  const { log } = shared.ctx;
  return async (body, _version, session) => {
    const groupId = body.groupId as string;
    const requested = body.topics as { name: string; partitionIndexes: number[] }[] | null;
    if (!validGroupId(groupId)) return { body: { throttleTimeMs: 0, topics: [], errorCode: KafkaError.INVALID_GROUP_ID } };
    let stored: CommittedOffset[];
    try {
      stored = await log.offsets.fetch(groupId);
    } catch (err) {
      if (!(err instanceof SluiceError)) throw err;
      return { body: { throttleTimeMs: 0, topics: [], errorCode: kafkaErrorFor(err) } };
    }
    const byKey = new Map(stored.map((o) => [`${o.topic}\0${o.partition}`, o]));
    const entry = (topic: string, partition: number) => {
      const o = byKey.get(`${topic}\0${partition}`);
      if (!mayRead(session, topic)) return { partitionIndex: partition, committedOffset: -1, committedLeaderEpoch: -1, metadata: '', errorCode: KafkaError.TOPIC_AUTHORIZATION_FAILED };
      return { partitionIndex: partition, committedOffset: o ? o.offset : -1, committedLeaderEpoch: -1, metadata: o?.metadata ?? '', errorCode: KafkaError.NONE as number };
    };
    let topics;
    if (requested === null) {
      // All the group's offsets, of the topics the token may read.
      const names = new Map<string, number[]>();
      for (const o of stored) {
        if (!mayRead(session, o.topic)) continue;
        let list = names.get(o.topic);
        if (!list) names.set(o.topic, (list = []));
        list.push(o.partition);
      }
      topics = [...names].map(([name, parts]) => ({ name, partitions: parts.sort((a, b) => a - b).map((p) => entry(name, p)) }));
    } else {
      topics = requested.map((t) => ({ name: t.name, partitions: t.partitionIndexes.map((p) => entry(t.name, p)) }));
    }
    return { body: { throttleTimeMs: 0, topics, errorCode: KafkaError.NONE as number } };
  };
}

/**
 * DescribeGroups (15) and ListGroups (16): the groups this node coordinates now. A group it
 * holds no member of is "Dead" to DescribeGroups, as Kafka describes an unknown group, even
 * when it has committed offsets (those are read with OffsetFetch); ListGroups lists the groups
 * with members.
 */
export function describeGroupsHandler(coordinator: GroupCoordinator): Handler {
  return (body) => {
    const groups = (body.groups as string[]).map((groupId) => {
      const g = coordinator.existing(groupId);
      const d = g ? g.describe() : { groupState: 'Dead', protocolType: '', protocolData: '', members: [] };
      return { errorCode: validGroupId(groupId) ? KafkaError.NONE : KafkaError.INVALID_GROUP_ID, groupId, ...d };
    });
    return { body: { throttleTimeMs: 0, groups } };
  };
}

export function listGroupsHandler(coordinator: GroupCoordinator): Handler {
  return (body) => {
    const filter = body.statesFilter as string[];
    const groups = [];
    for (const g of coordinator.all()) {
      if (filter.length > 0 && !filter.includes(g.state)) continue;
      groups.push({ groupId: g.id, protocolType: g.protocolType ?? '', groupState: g.state });
    }
    return { body: { throttleTimeMs: 0, errorCode: KafkaError.NONE, groups } };
  };
}
