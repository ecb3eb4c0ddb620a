/**
 * InitProducerId (22): the id and epoch an idempotent producer stamps on its batches
 * (librdkafka's enable.idempotence, kafkajs's idempotent, the Java client's default). A
 * producer that asks again with its id and epoch (v3+) keeps its id with the next epoch. A
 * transactional id is TRANSACTIONAL_ID_AUTHORIZATION_FAILED: sluice has no transactions.
 * What is enforced of the sequence numbers: ../producer-state.ts.
 */
import type { Handler } from '../session.ts';
import type { KafkaShared } from '../shared.ts';
import { KafkaError } from '../protocol/errors.ts';

const TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53;
const EPOCH_MAX = 32767;

export function initProducerIdHandler(shared: KafkaShared): Handler {
  return (body) => {
    if (body.transactionalId !== null) {
      return { body: { throttleTimeMs: 0, errorCode: TRANSACTIONAL_ID_AUTHORIZATION_FAILED, producerId: -1, producerEpoch: -1 } };
    }
    const id = body.producerId as number;
    const epoch = body.producerEpoch as number;
    if (id >= 0 && epoch >= 0 && epoch < EPOCH_MAX - 1) {
      return { body: { throttleTimeMs: 0, errorCode: KafkaError.NONE, producerId: id, producerEpoch: epoch + 1 } };
    }
    return { body: { throttleTimeMs: 0, errorCode: KafkaError.NONE, producerId: shared.producers.nextProducerId(), producerEpoch: 0 } };
  };
}
