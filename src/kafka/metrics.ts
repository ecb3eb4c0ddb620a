/**
 * The Kafka front's metrics, registered on the process's one registry (FrontContext.metrics).
 */
import client from 'prom-client';
import type { Metrics } from '../common/metrics.ts';

export class KafkaMetrics {
  readonly connections: client.Gauge;
  readonly requests: client.Counter<'api'>;
  readonly refused: client.Counter;
  readonly fetchBytes: client.Counter<'path'>;
  readonly recordsIn: client.Counter;

  constructor(metrics: Metrics) {
    const registers = [metrics.registry];
    this.connections = new client.Gauge({ name: 'sluice_kafka_connections', help: 'Open Kafka connections', registers });
    this.requests = new client.Counter({ name: 'sluice_kafka_requests_total', help: 'Kafka requests read, by API key', labelNames: ['api'], registers });
    this.refused = new client.Counter({ name: 'sluice_kafka_refused_total', help: 'Kafka connections closed for what they sent (size, API, version, malformed, before auth)', registers });
    this.fetchBytes = new client.Counter({
      name: 'sluice_kafka_fetch_bytes_total',
      help: 'Stored batch bytes sent in Fetch responses, by path (sendfile, fallback, or written from the mapping)',
      labelNames: ['path'],
      registers,
    });
    this.recordsIn = new client.Counter({ name: 'sluice_kafka_records_in_total', help: 'Records appended through Kafka Produce', registers });
  }
}
