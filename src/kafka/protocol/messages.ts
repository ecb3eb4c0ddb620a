/**
 * The Kafka messages sluice speaks, declared as Kafka publishes them (the message
 * definitions in the Kafka project's clients/src/main/resources/common/message/), limited to
 * the versions sluice offers: for each API at least every version that kcat 1.7
 * (librdkafka 2.0.2) and kafkajs 2.2 negotiate, and up to its first flexible version so that
 * newer clients (the Java client) find the encoding they prefer. docs/kafka.md has the table.
 *
 * Fields are named as in Kafka, in camelCase. Versions a field exists in, versions it may be
 * null in, tags and tagged versions are Kafka's; `default` is Kafka's where it declares one.
 */
import { array, field, type MessageDef, message } from './schema.ts';

export const API = {
  Produce: 0,
  Fetch: 1,
  ListOffsets: 2,
  Metadata: 3,
  OffsetCommit: 8,
  OffsetFetch: 9,
  FindCoordinator: 10,
  JoinGroup: 11,
  Heartbeat: 12,
  LeaveGroup: 13,
  SyncGroup: 14,
  DescribeGroups: 15,
  ListGroups: 16,
  InitProducerId: 22,
  SaslHandshake: 17,
  ApiVersions: 18,
  CreateTopics: 19,
  DeleteTopics: 20,
  SaslAuthenticate: 36,
} as const;

export type ApiName = keyof typeof API;

// --- headers -------------------------------------------------------------------------------
// Request header v1 (classic) is apiKey, apiVersion, correlationId, clientId (a classic
// nullable string); v2 (flexible versions) adds tagged fields, the clientId staying classic.
// Response header v0 is the correlationId; v1 adds tagged fields. ApiVersions responses
// always use v0, so that a client that does not know the broker yet can read them.

// --- ApiVersions (18) ----------------------------------------------------------------------
export const ApiVersionsRequest = message('ApiVersionsRequest', API.ApiVersions, '0-3', '3+', [
  field('clientSoftwareName', 'string', '3+'),
  field('clientSoftwareVersion', 'string', '3+'),
]);

export const ApiVersionsResponse = message('ApiVersionsResponse', API.ApiVersions, '0-3', '3+', [
  field('errorCode', 'int16', '0+'),
  array('apiKeys', [field('apiKey', 'int16', '0+'), field('minVersion', 'int16', '0+'), field('maxVersion', 'int16', '0+')], '0+'),
  field('throttleTimeMs', 'int32', '1+'),
  array('supportedFeatures', [field('name', 'string', '3+'), field('minVersion', 'int16', '3+'), field('maxVersion', 'int16', '3+')], '3+', { tag: 0, tagged: '3+' }),
  field('finalizedFeaturesEpoch', 'int64', '3+', { tag: 1, tagged: '3+', default: -1 }),
  array('finalizedFeatures', [field('name', 'string', '3+'), field('maxVersionLevel', 'int16', '3+'), field('minVersionLevel', 'int16', '3+')], '3+', { tag: 2, tagged: '3+' }),
]);

// --- Metadata (3) --------------------------------------------------------------------------
export const MetadataRequest = message('MetadataRequest', API.Metadata, '0-9', '9+', [
  array('topics', [field('name', 'string', '0+')], '0+', { nullable: '1+' }),
  field('allowAutoTopicCreation', 'bool', '4+', { default: true }),
  field('includeClusterAuthorizedOperations', 'bool', '8-10'),
  field('includeTopicAuthorizedOperations', 'bool', '8+'),
]);

export const MetadataResponse = message('MetadataResponse', API.Metadata, '0-9', '9+', [
  field('throttleTimeMs', 'int32', '3+'),
  array('brokers', [field('nodeId', 'int32', '0+'), field('host', 'string', '0+'), field('port', 'int32', '0+'), field('rack', 'string', '1+', { nullable: '1+', default: null })], '0+'),
  field('clusterId', 'string', '2+', { nullable: '2+', default: null }),
  field('controllerId', 'int32', '1+', { default: -1 }),
  array(
    'topics',
    [
      field('errorCode', 'int16', '0+'),
      field('name', 'string', '0+'),
      field('isInternal', 'bool', '1+', { default: false }),
      array(
        'partitions',
        [
          field('errorCode', 'int16', '0+'),
          field('partitionIndex', 'int32', '0+'),
          field('leaderId', 'int32', '0+'),
          field('leaderEpoch', 'int32', '7+', { default: -1 }),
          array('replicaNodes', 'int32', '0+'),
          array('isrNodes', 'int32', '0+'),
          array('offlineReplicas', 'int32', '5+'),
        ],
        '0+',
      ),
      field('topicAuthorizedOperations', 'int32', '8+', { default: -2147483648 }),
    ],
    '0+',
  ),
  field('clusterAuthorizedOperations', 'int32', '8-10', { default: -2147483648 }),
]);

// --- Produce (0) ---------------------------------------------------------------------------
// From v3 a produce request carries RecordBatch v2 (magic 2) only: the one format sluice keeps.
export const ProduceRequest = message('ProduceRequest', API.Produce, '3-9', '9+', [
  field('transactionalId', 'string', '3+', { nullable: '3+', default: null }),
  field('acks', 'int16', '0+'),
  field('timeoutMs', 'int32', '0+'),
  array('topicData', [field('name', 'string', '0+'), array('partitionData', [field('index', 'int32', '0+'), field('records', 'records', '0+', { nullable: '0+' })], '0+')], '0+'),
]);

export const ProduceResponse = message('ProduceResponse', API.Produce, '3-9', '9+', [
  array(
    'responses',
    [
      field('name', 'string', '0+'),
      array(
        'partitionResponses',
        [
          field('index', 'int32', '0+'),
          field('errorCode', 'int16', '0+'),
          field('baseOffset', 'int64', '0+'),
          field('logAppendTimeMs', 'int64', '2+', { default: -1 }),
          field('logStartOffset', 'int64', '5+', { default: -1 }),
          array('recordErrors', [field('batchIndex', 'int32', '8+'), field('batchIndexErrorMessage', 'string', '8+', { nullable: '8+', default: null })], '8+'),
          field('errorMessage', 'string', '8+', { nullable: '8+', default: null }),
        ],
        '0+',
      ),
    ],
    '0+',
  ),
  field('throttleTimeMs', 'int32', '1+', { default: 0 }),
]);

// --- Fetch (1) -----------------------------------------------------------------------------
// From v4 a fetch response may hold RecordBatch v2; v13 names topics by id, which sluice
// does not keep, so v12 is the last.
export const FetchRequest = message('FetchRequest', API.Fetch, '4-12', '12+', [
  field('clusterId', 'string', '12+', { nullable: '12+', default: null, tag: 0, tagged: '12+' }),
  field('replicaId', 'int32', '0-14', { default: -1 }),
  field('maxWaitMs', 'int32', '0+'),
  field('minBytes', 'int32', '0+'),
  field('maxBytes', 'int32', '3+', { default: 0x7fffffff }),
  field('isolationLevel', 'int8', '4+', { default: 0 }),
  field('sessionId', 'int32', '7+', { default: 0 }),
  field('sessionEpoch', 'int32', '7+', { default: -1 }),
  array(
    'topics',
    [
      field('topic', 'string', '0-12'),
      array(
        'partitions',
        [
          field('partition', 'int32', '0+'),
          field('currentLeaderEpoch', 'int32', '9+', { default: -1 }),
          field('fetchOffset', 'int64', '0+'),
          field('lastFetchedEpoch', 'int32', '12+', { default: -1 }),
          field('logStartOffset', 'int64', '5+', { default: -1 }),
          field('partitionMaxBytes', 'int32', '0+'),
        ],
        '0+',
      ),
    ],
    '0+',
  ),
  array('forgottenTopicsData', [field('topic', 'string', '7-12'), array('partitions', 'int32', '7+')], '7+'),
  field('rackId', 'string', '11+', { default: '' }),
]);

export const FetchResponse = message('FetchResponse', API.Fetch, '4-12', '12+', [
  field('throttleTimeMs', 'int32', '1+'),
  field('errorCode', 'int16', '7+'),
  field('sessionId', 'int32', '7+', { default: 0 }),
  array(
    'responses',
    [
      field('topic', 'string', '0-12'),
      array(
        'partitions',
        [
          field('partitionIndex', 'int32', '0+'),
          field('errorCode', 'int16', '0+'),
          field('highWatermark', 'int64', '0+'),
          field('lastStableOffset', 'int64', '4+', { default: -1 }),
          field('logStartOffset', 'int64', '5+', { default: -1 }),
          field('divergingEpoch', [field('epoch', 'int32', '12+', { default: -1 }), field('endOffset', 'int64', '12+', { default: -1 })], '12+', { tag: 0, tagged: '12+', default: undefined }),
          field('currentLeader', [field('leaderId', 'int32', '12+', { default: -1 }), field('leaderEpoch', 'int32', '12+', { default: -1 })], '12+', { tag: 1, tagged: '12+', default: undefined }),
          field('snapshotId', [field('endOffset', 'int64', '0+', { default: -1 }), field('epoch', 'int32', '0+', { default: -1 })], '12+', { tag: 2, tagged: '12+', default: undefined }),
          array('abortedTransactions', [field('producerId', 'int64', '4+'), field('firstOffset', 'int64', '4+')], '4+', { nullable: '4+' }),
          field('preferredReadReplica', 'int32', '11+', { default: -1 }),
          field('records', 'records', '0+', { nullable: '0+' }),
        ],
        '0+',
      ),
    ],
    '0+',
  ),
]);

// --- ListOffsets (2) -----------------------------------------------------------------------
export const ListOffsetsRequest = message('ListOffsetsRequest', API.ListOffsets, '1-6', '6+', [
  field('replicaId', 'int32', '0+'),
  field('isolationLevel', 'int8', '2+'),
  array(
    'topics',
    [
      field('name', 'string', '0+'),
      array('partitions', [field('partitionIndex', 'int32', '0+'), field('currentLeaderEpoch', 'int32', '4+', { default: -1 }), field('timestamp', 'int64', '0+'), field('maxNumOffsets', 'int32', '0', { default: 1 })], '0+'),
    ],
    '0+',
  ),
]);

export const ListOffsetsResponse = message('ListOffsetsResponse', API.ListOffsets, '1-6', '6+', [
  field('throttleTimeMs', 'int32', '2+'),
  array(
    'topics',
    [
      field('name', 'string', '0+'),
      array(
        'partitions',
        [
          field('partitionIndex', 'int32', '0+'),
          field('errorCode', 'int16', '0+'),
          array('oldStyleOffsets', 'int64', '0'),
          field('timestamp', 'int64', '1+', { default: -1 }),
          field('offset', 'int64', '1+', { default: -1 }),
          field('leaderEpoch', 'int32', '4+', { default: -1 }),
        ],
        '0+',
      ),
    ],
    '0+',
  ),
]);

// --- FindCoordinator (10) ------------------------------------------------------------------
export const FindCoordinatorRequest = message('FindCoordinatorRequest', API.FindCoordinator, '0-3', '3+', [field('key', 'string', '0-3'), field('keyType', 'int8', '1+', { default: 0 })]);

export const FindCoordinatorResponse = message('FindCoordinatorResponse', API.FindCoordinator, '0-3', '3+', [
  field('throttleTimeMs', 'int32', '1+'),
  field('errorCode', 'int16', '0-3'),
  field('errorMessage', 'string', '1-3', { nullable: '1-3' }),
  field('nodeId', 'int32', '0-3'),
  field('host', 'string', '0-3'),
  field('port', 'int32', '0-3'),
]);

// --- JoinGroup (11) ------------------------------------------------------------------------
export const JoinGroupRequest = message('JoinGroupRequest', API.JoinGroup, '0-7', '6+', [
  field('groupId', 'string', '0+'),
  field('sessionTimeoutMs', 'int32', '0+'),
  field('rebalanceTimeoutMs', 'int32', '1+', { default: -1 }),
  field('memberId', 'string', '0+'),
  field('groupInstanceId', 'string', '5+', { nullable: '5+', default: null }),
  field('protocolType', 'string', '0+'),
  array('protocols', [field('name', 'string', '0+'), field('metadata', 'bytes', '0+')], '0+'),
]);

export const JoinGroupResponse = message('JoinGroupResponse', API.JoinGroup, '0-7', '6+', [
  field('throttleTimeMs', 'int32', '2+'),
  field('errorCode', 'int16', '0+'),
  field('generationId', 'int32', '0+', { default: -1 }),
  field('protocolType', 'string', '7+', { nullable: '7+', default: null }),
  field('protocolName', 'string', '0+', { nullable: '7+' }),
  field('leader', 'string', '0+'),
  field('memberId', 'string', '0+'),
  array('members', [field('memberId', 'string', '0+'), field('groupInstanceId', 'string', '5+', { nullable: '5+', default: null }), field('metadata', 'bytes', '0+')], '0+'),
]);

// --- SyncGroup (14) ------------------------------------------------------------------------
export const SyncGroupRequest = message('SyncGroupRequest', API.SyncGroup, '0-5', '4+', [
  field('groupId', 'string', '0+'),
  field('generationId', 'int32', '0+'),
  field('memberId', 'string', '0+'),
  field('groupInstanceId', 'string', '3+', { nullable: '3+', default: null }),
  field('protocolType', 'string', '5+', { nullable: '5+', default: null }),
  field('protocolName', 'string', '5+', { nullable: '5+', default: null }),
  array('assignments', [field('memberId', 'string', '0+'), field('assignment', 'bytes', '0+')], '0+'),
]);

export const SyncGroupResponse = message('SyncGroupResponse', API.SyncGroup, '0-5', '4+', [
  field('throttleTimeMs', 'int32', '1+'),
  field('errorCode', 'int16', '0+'),
  field('protocolType', 'string', '5+', { nullable: '5+', default: null }),
  field('protocolName', 'string', '5+', { nullable: '5+', default: null }),
  field('assignment', 'bytes', '0+'),
]);

// --- Heartbeat (12) ------------------------------------------------------------------------
export const HeartbeatRequest = message('HeartbeatRequest', API.Heartbeat, '0-4', '4+', [
  field('groupId', 'string', '0+'),
  field('generationId', 'int32', '0+'),
  field('memberId', 'string', '0+'),
  field('groupInstanceId', 'string', '3+', { nullable: '3+', default: null }),
]);

export const HeartbeatResponse = message('HeartbeatResponse', API.Heartbeat, '0-4', '4+', [field('throttleTimeMs', 'int32', '1+'), field('errorCode', 'int16', '0+')]);

// --- LeaveGroup (13) -----------------------------------------------------------------------
export const LeaveGroupRequest = message('LeaveGroupRequest', API.LeaveGroup, '0-4', '4+', [
  field('groupId', 'string', '0+'),
  field('memberId', 'string', '0-2'),
  array('members', [field('memberId', 'string', '3+'), field('groupInstanceId', 'string', '3+', { nullable: '3+', default: null })], '3+'),
]);

export const LeaveGroupResponse = message('LeaveGroupResponse', API.LeaveGroup, '0-4', '4+', [
  field('throttleTimeMs', 'int32', '1+'),
  field('errorCode', 'int16', '0+'),
  array('members', [field('memberId', 'string', '3+'), field('groupInstanceId', 'string', '3+', { nullable: '3+' }), field('errorCode', 'int16', '3+')], '3+'),
]);

// --- DescribeGroups (15) and ListGroups (16): what admin clients show of groups ----------
export const DescribeGroupsRequest = message('DescribeGroupsRequest', API.DescribeGroups, '0-5', '5+', [array('groups', 'string', '0+'), field('includeAuthorizedOperations', 'bool', '3+')]);

export const DescribeGroupsResponse = message('DescribeGroupsResponse', API.DescribeGroups, '0-5', '5+', [
  field('throttleTimeMs', 'int32', '1+'),
  array(
    'groups',
    [
      field('errorCode', 'int16', '0+'),
      field('groupId', 'string', '0+'),
      field('groupState', 'string', '0+'),
      field('protocolType', 'string', '0+'),
      field('protocolData', 'string', '0+'),
      array(
        'members',
        [
          field('memberId', 'string', '0+'),
          field('groupInstanceId', 'string', '4+', { nullable: '4+', default: null }),
          field('clientId', 'string', '0+'),
          field('clientHost', 'string', '0+'),
          field('memberMetadata', 'bytes', '0+'),
          field('memberAssignment', 'bytes', '0+'),
        ],
        '0+',
      ),
      field('authorizedOperations', 'int32', '3+', { default: -2147483648 }),
    ],
    '0+',
  ),
]);

export const ListGroupsRequest = message('ListGroupsRequest', API.ListGroups, '0-4', '3+', [array('statesFilter', 'string', '4+')]);

export const ListGroupsResponse = message('ListGroupsResponse', API.ListGroups, '0-4', '3+', [
  field('throttleTimeMs', 'int32', '1+'),
  field('errorCode', 'int16', '0+'),
  array('groups', [field('groupId', 'string', '0+'), field('protocolType', 'string', '0+'), field('groupState', 'string', '4+')], '0+'),
]);

// --- OffsetCommit (8) ----------------------------------------------------------------------
export const OffsetCommitRequest = message('OffsetCommitRequest', API.OffsetCommit, '0-8', '8+', [
  field('groupId', 'string', '0+'),
  field('generationIdOrMemberEpoch', 'int32', '1+', { default: -1 }),
  field('memberId', 'string', '1+'),
  field('groupInstanceId', 'string', '7+', { nullable: '7+', default: null }),
  field('retentionTimeMs', 'int64', '2-4', { default: -1 }),
  array(
    'topics',
    [
      field('name', 'string', '0+'),
      array(
        'partitions',
        [
          field('partitionIndex', 'int32', '0+'),
          field('committedOffset', 'int64', '0+'),
          field('committedLeaderEpoch', 'int32', '6+', { default: -1 }),
          field('commitTimestamp', 'int64', '1', { default: -1 }),
          field('committedMetadata', 'string', '0+', { nullable: '0+' }),
        ],
        '0+',
      ),
    ],
    '0+',
  ),
]);

export const OffsetCommitResponse = message('OffsetCommitResponse', API.OffsetCommit, '0-8', '8+', [
  field('throttleTimeMs', 'int32', '3+'),
  array('topics', [field('name', 'string', '0+'), array('partitions', [field('partitionIndex', 'int32', '0+'), field('errorCode', 'int16', '0+')], '0+')], '0+'),
]);

// --- OffsetFetch (9) -----------------------------------------------------------------------
export const OffsetFetchRequest = message('OffsetFetchRequest', API.OffsetFetch, '0-7', '6+', [
  field('groupId', 'string', '0-7'),
  array('topics', [field('name', 'string', '0-7'), array('partitionIndexes', 'int32', '0-7')], '0-7', { nullable: '2-7' }),
  field('requireStable', 'bool', '7+', { default: false }),
]);

export const OffsetFetchResponse = message('OffsetFetchResponse', API.OffsetFetch, '0-7', '6+', [
  field('throttleTimeMs', 'int32', '3+'),
  array(
    'topics',
    [
      field('name', 'string', '0-7'),
      array(
        'partitions',
        [
          field('partitionIndex', 'int32', '0-7'),
          field('committedOffset', 'int64', '0-7'),
          field('committedLeaderEpoch', 'int32', '5-7', { default: -1 }),
          field('metadata', 'string', '0-7', { nullable: '0-7' }),
          field('errorCode', 'int16', '0-7'),
        ],
        '0-7',
      ),
    ],
    '0-7',
  ),
  field('errorCode', 'int16', '2-7', { default: 0 }),
]);

// --- CreateTopics (19) ---------------------------------------------------------------------
export const CreateTopicsRequest = message('CreateTopicsRequest', API.CreateTopics, '0-5', '5+', [
  array(
    'topics',
    [
      field('name', 'string', '0+'),
      field('numPartitions', 'int32', '0+'),
      field('replicationFactor', 'int16', '0+'),
      array('assignments', [field('partitionIndex', 'int32', '0+'), array('brokerIds', 'int32', '0+')], '0+'),
      array('configs', [field('name', 'string', '0+'), field('value', 'string', '0+', { nullable: '0+' })], '0+'),
    ],
    '0+',
  ),
  field('timeoutMs', 'int32', '0+', { default: 60000 }),
  field('validateOnly', 'bool', '1+', { default: false }),
]);

export const CreateTopicsResponse = message('CreateTopicsResponse', API.CreateTopics, '0-5', '5+', [
  field('throttleTimeMs', 'int32', '2+'),
  array(
    'topics',
    [
      field('name', 'string', '0+'),
      field('errorCode', 'int16', '0+'),
      field('errorMessage', 'string', '1+', { nullable: '0+' }),
      field('topicConfigErrorCode', 'int16', '5+', { tag: 0, tagged: '5+' }),
      field('numPartitions', 'int32', '5+', { default: -1 }),
      field('replicationFactor', 'int16', '5+', { default: -1 }),
      array(
        'configs',
        [field('name', 'string', '5+'), field('value', 'string', '5+', { nullable: '5+' }), field('readOnly', 'bool', '5+'), field('configSource', 'int8', '5+', { default: -1 }), field('isSensitive', 'bool', '5+')],
        '5+',
        { nullable: '5+' },
      ),
    ],
    '0+',
  ),
]);

// --- DeleteTopics (20) ---------------------------------------------------------------------
export const DeleteTopicsRequest = message('DeleteTopicsRequest', API.DeleteTopics, '0-5', '4+', [array('topicNames', 'string', '0-5'), field('timeoutMs', 'int32', '0+')]);

export const DeleteTopicsResponse = message('DeleteTopicsResponse', API.DeleteTopics, '0-5', '4+', [
  field('throttleTimeMs', 'int32', '1+'),
  array('responses', [field('name', 'string', '0+'), field('errorCode', 'int16', '0+'), field('errorMessage', 'string', '5+', { nullable: '5+', default: null })], '0+'),
]);

// --- InitProducerId (22): idempotent producers ask for their id --------------------------
export const InitProducerIdRequest = message('InitProducerIdRequest', API.InitProducerId, '0-4', '2+', [
  field('transactionalId', 'string', '0+', { nullable: '0+' }),
  field('transactionTimeoutMs', 'int32', '0+'),
  field('producerId', 'int64', '3+', { default: -1 }),
  field('producerEpoch', 'int16', '3+', { default: -1 }),
]);

export const InitProducerIdResponse = message('InitProducerIdResponse', API.InitProducerId, '0-4', '2+', [
  field('throttleTimeMs', 'int32', '0+'),
  field('errorCode', 'int16', '0+'),
  field('producerId', 'int64', '0+', { default: -1 }),
  field('producerEpoch', 'int16', '0+'),
]);

// --- SaslHandshake (17) and SaslAuthenticate (36) ------------------------------------------
export const SaslHandshakeRequest = message('SaslHandshakeRequest', API.SaslHandshake, '0-1', 'none', [field('mechanism', 'string', '0+')]);

export const SaslHandshakeResponse = message('SaslHandshakeResponse', API.SaslHandshake, '0-1', 'none', [field('errorCode', 'int16', '0+'), array('mechanisms', 'string', '0+')]);

export const SaslAuthenticateRequest = message('SaslAuthenticateRequest', API.SaslAuthenticate, '0-2', '2+', [field('authBytes', 'bytes', '0+')]);

export const SaslAuthenticateResponse = message('SaslAuthenticateResponse', API.SaslAuthenticate, '0-2', '2+', [
  field('errorCode', 'int16', '0+'),
  field('errorMessage', 'string', '0+', { nullable: '0+' }),
  field('authBytes', 'bytes', '0+'),
  field('sessionLifetimeMs', 'int64', '1+', { default: 0 }),
]);

/** Request and response of every API sluice offers, by API key. */
export const MESSAGES: ReadonlyMap<number, { request: MessageDef; response: MessageDef }> = new Map([
  [API.Produce, { request: ProduceRequest, response: ProduceResponse }],
  [API.Fetch, { request: FetchRequest, response: FetchResponse }],
  [API.ListOffsets, { request: ListOffsetsRequest, response: ListOffsetsResponse }],
  [API.Metadata, { request: MetadataRequest, response: MetadataResponse }],
  [API.OffsetCommit, { request: OffsetCommitRequest, response: OffsetCommitResponse }],
  [API.OffsetFetch, { request: OffsetFetchRequest, response: OffsetFetchResponse }],
  [API.FindCoordinator, { request: FindCoordinatorRequest, response: FindCoordinatorResponse }],
  [API.JoinGroup, { request: JoinGroupRequest, response: JoinGroupResponse }],
  [API.Heartbeat, { request: HeartbeatRequest, response: HeartbeatResponse }],
  [API.LeaveGroup, { request: LeaveGroupRequest, response: LeaveGroupResponse }],
  [API.SyncGroup, { request: SyncGroupRequest, response: SyncGroupResponse }],
  [API.DescribeGroups, { request: DescribeGroupsRequest, response: DescribeGroupsResponse }],
  [API.ListGroups, { request: ListGroupsRequest, response: ListGroupsResponse }],
  [API.InitProducerId, { request: InitProducerIdRequest, response: InitProducerIdResponse }],
  [API.SaslHandshake, { request: SaslHandshakeRequest, response: SaslHandshakeResponse }],
  [API.ApiVersions, { request: ApiVersionsRequest, response: ApiVersionsResponse }],
  [API.CreateTopics, { request: CreateTopicsRequest, response: CreateTopicsResponse }],
  [API.DeleteTopics, { request: DeleteTopicsRequest, response: DeleteTopicsResponse }],
  [API.SaslAuthenticate, { request: SaslAuthenticateRequest, response: SaslAuthenticateResponse }],
]);
