/**
 * Kafka's error codes that sluice answers with, and how sluice's own errors (engine/errors.ts:
 * a wire code and a reason) map onto them. docs/kafka.md lists the mapping.
 */
import { type SluiceError } from '../../../engine/errors.ts';

export const KafkaError = {
  UNKNOWN_SERVER_ERROR: -1,
  NONE: 0,
  OFFSET_OUT_OF_RANGE: 1,
  CORRUPT_MESSAGE: 2,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  INVALID_FETCH_SIZE: 4,
  NOT_LEADER_OR_FOLLOWER: 6,
  REQUEST_TIMED_OUT: 7,
  MESSAGE_TOO_LARGE: 10,
  OFFSET_METADATA_TOO_LARGE: 12,
  COORDINATOR_NOT_AVAILABLE: 15,
  NOT_COORDINATOR: 16,
  INVALID_TOPIC_EXCEPTION: 17,
  RECORD_LIST_TOO_LARGE: 18,
  NOT_ENOUGH_REPLICAS: 19,
  INVALID_REQUIRED_ACKS: 21,
  ILLEGAL_GENERATION: 22,
  INCONSISTENT_GROUP_PROTOCOL: 23,
  INVALID_GROUP_ID: 24,
  UNKNOWN_MEMBER_ID: 25,
  INVALID_SESSION_TIMEOUT: 26,
  REBALANCE_IN_PROGRESS: 27,
  INVALID_COMMIT_OFFSET_SIZE: 28,
  TOPIC_AUTHORIZATION_FAILED: 29,
  GROUP_AUTHORIZATION_FAILED: 30,
  CLUSTER_AUTHORIZATION_FAILED: 31,
  INVALID_TIMESTAMP: 32,
  UNSUPPORTED_SASL_MECHANISM: 33,
  ILLEGAL_SASL_STATE: 34,
  UNSUPPORTED_VERSION: 35,
  TOPIC_ALREADY_EXISTS: 36,
  INVALID_PARTITIONS: 37,
  INVALID_REPLICATION_FACTOR: 38,
  INVALID_REPLICA_ASSIGNMENT: 39,
  INVALID_CONFIG: 40,
  INVALID_REQUEST: 42,
  UNSUPPORTED_FOR_MESSAGE_FORMAT: 43,
  KAFKA_STORAGE_ERROR: 56,
  SASL_AUTHENTICATION_FAILED: 58,
  FETCH_SESSION_ID_NOT_FOUND: 70,
  GROUP_MAX_SIZE_REACHED: 81,
  UNSUPPORTED_COMPRESSION_TYPE: 76,
  MEMBER_ID_REQUIRED: 79,
  INVALID_RECORD: 87,
  THROTTLING_QUOTA_EXCEEDED: 89,
} as const;

export type KafkaErrorCode = (typeof KafkaError)[keyof typeof KafkaError];

/**
 * The Kafka error for a sluice error. The record-batch reasons say what Kafka would: a
 * codec sluice does not store is UNSUPPORTED_COMPRESSION_TYPE, a batch that is not magic 2 or
 * carries transactional or control bits is INVALID_RECORD, any other damage CORRUPT_MESSAGE.
 * A log that cannot take writes (disk full, I/O error, no quorum in cluster mode) answers with
 * a retriable error, so that clients retry instead of giving up.
 */
export function kafkaErrorFor(err: SluiceError): KafkaErrorCode {
  switch (err.code) {
    case 'BAD_REQUEST':
      switch (err.reason) {
        case 'BAD_CODEC':
          return KafkaError.UNSUPPORTED_COMPRESSION_TYPE;
        case 'TIMESTAMP_IN_FUTURE':
          return KafkaError.INVALID_TIMESTAMP;
        case 'BAD_MAGIC':
        case 'BAD_ATTRIBUTES':
        case 'BAD_TIMESTAMP':
          return KafkaError.INVALID_RECORD;
        case 'BAD_TOPIC_NAME':
          return KafkaError.INVALID_TOPIC_EXCEPTION;
        case 'BAD_PARTITION':
          return KafkaError.UNKNOWN_TOPIC_OR_PARTITION;
        case 'BAD_PARTITIONS':
          return KafkaError.INVALID_PARTITIONS;
        case 'BAD_RETENTION':
        case 'BAD_CONFIG':
          return KafkaError.INVALID_CONFIG;
        case 'TOPIC_EXISTS':
          return KafkaError.TOPIC_ALREADY_EXISTS;
        case 'CORRUPT_BATCH':
        case 'BAD_LENGTH':
        case 'CRC_MISMATCH':
        case 'BAD_LZ4':
        case 'BAD_VARINT':
        case 'BAD_COUNT':
        case 'BAD_OFFSET_DELTA':
        case 'EMPTY_BATCH':
        case 'TRUNCATED':
        case 'TRAILING_BYTES':
          return KafkaError.CORRUPT_MESSAGE;
        default:
          return KafkaError.INVALID_REQUEST;
      }
    case 'UNAUTHORIZED':
      return KafkaError.SASL_AUTHENTICATION_FAILED;
    case 'FORBIDDEN':
      return KafkaError.TOPIC_AUTHORIZATION_FAILED;
    case 'UNKNOWN_TOPIC':
      return KafkaError.UNKNOWN_TOPIC_OR_PARTITION;
    case 'OFFSET_OUT_OF_RANGE':
      return KafkaError.OFFSET_OUT_OF_RANGE;
    case 'TOO_LARGE':
      return KafkaError.MESSAGE_TOO_LARGE;
    case 'RATE_LIMITED':
      return KafkaError.THROTTLING_QUOTA_EXCEEDED;
    case 'UNAVAILABLE':
      return err.reason === 'SHUTTING_DOWN' || err.reason === 'CLOSED' ? KafkaError.NOT_LEADER_OR_FOLLOWER : KafkaError.KAFKA_STORAGE_ERROR;
    default:
      return KafkaError.UNKNOWN_SERVER_ERROR;
  }
}
