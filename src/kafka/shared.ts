/**
 * What every connection and handler of the Kafka front shares: the front's context, the
 * broker this node is in Metadata, the handlers by API key, the group coordinator, metrics.
 */
import type { Auth } from '../common/auth.ts';
import type { FrontContext } from '../common/front.ts';
import type { SendfileStats } from '../common/sendfile.ts';
import type { Handler, Session } from './session.ts';
import type { KafkaMetrics } from './metrics.ts';
import type { ProducerState } from './producer-state.ts';
import type { SaslResult } from './sasl.ts';

/** This node as Metadata and FindCoordinator name it. */
export interface Broker {
  /** 0: one node is one broker (wire contract §8). */
  readonly nodeId: number;
  readonly host: string;
  readonly port: number;
}

export interface KafkaShared {
  readonly ctx: FrontContext;
  readonly auth: Auth | null;
  readonly broker: Broker;
  /** Stable across restarts of a data dir; what Metadata calls the cluster id. */
  readonly clusterId: string;
  readonly handlers: ReadonlyMap<number, Handler>;
  readonly metrics: KafkaMetrics;
  /** Idempotent producers: ids given, recent batches per partition. */
  readonly producers: ProducerState;
  /** Runs a SASL exchange and, on success, authenticates the session. */
  sasl(session: Session, bytes: Buffer): Promise<SaslResult>;
  onConnectionClosed(session: Session): void;
  onSendfileStats(stats: SendfileStats): void;
}
