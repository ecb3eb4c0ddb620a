/**
 * Prometheus metrics (prom-client), one registry per server so that tests can run several
 * in one process. server.ts builds it and hands it to every front (FrontContext). Hot paths
 * only `inc`/`observe` unlabelled metrics; what depends on the log (bytes on disk) or on a
 * front's state (subscriber lag, transfers in flight) is computed when /metrics is scraped,
 * from sources the owners register.
 */
import client from 'prom-client';

export interface LagSample {
  topic: string;
  partition: number;
  lag: number;
}

export interface PartitionBytesSample {
  topic: string;
  partition: number;
  bytes: number;
}

export class Metrics {
  readonly registry = new client.Registry();
  readonly connections = new client.Gauge({ name: 'sluice_ws_connections', help: 'Open WebSocket connections', registers: [this.registry] });
  readonly subscriptions = new client.Gauge({ name: 'sluice_subscriptions', help: 'Subscribed topic-partitions over all connections', registers: [this.registry] });
  readonly subscriptionsWaiting = new client.Gauge({ name: 'sluice_subscriptions_waiting', help: 'sub requests waiting for their topic to be created', registers: [this.registry] });
  readonly recordsIn = new client.Counter({ name: 'sluice_records_in_total', help: 'Records appended (JSON pub, PRODUCE, HTTP)', registers: [this.registry] });
  readonly bytesIn = new client.Counter({ name: 'sluice_bytes_in_total', help: 'RecordBatch bytes appended', registers: [this.registry] });
  readonly recordsOut = new client.Counter({ name: 'sluice_records_out_total', help: 'Records sent to subscribers in DATA frames', registers: [this.registry] });
  readonly bytesOut = new client.Counter({ name: 'sluice_bytes_out_total', help: 'DATA frame bytes sent to subscribers', registers: [this.registry] });
  readonly batchRecords = new client.Histogram({
    name: 'sluice_batch_records',
    help: 'Records per appended batch',
    buckets: [1, 2, 5, 10, 50, 100, 500, 1000, 5000, 10000],
    registers: [this.registry],
  });
  readonly batchBytes = new client.Histogram({
    name: 'sluice_batch_bytes',
    help: 'Bytes per appended batch',
    buckets: [128, 1024, 8192, 65536, 262144, 1048576, 4194304],
    registers: [this.registry],
  });
  /** The synchronous part of an append: validation, the write(2), the index. */
  readonly appendSeconds = new client.Histogram({
    name: 'sluice_append_seconds',
    help: 'Time to write one batch to its segment',
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05],
    registers: [this.registry],
  });
  /** From append to visible: includes the fdatasync under flush=always (group commit). */
  readonly appendDurableSeconds = new client.Histogram({
    name: 'sluice_append_durable_seconds',
    help: 'Time from append until the batch is visible (after its fsync under flush=always)',
    buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
    registers: [this.registry],
  });
  readonly slowSubscriberSwitches = new client.Counter({
    name: 'sluice_subscriber_fallbacks_total',
    help: 'Times a subscriber above the backpressure high-water mark left the live path for disk reads',
    registers: [this.registry],
  });

  /** Replay body bytes sent, by path: `sendfile` (zero-copy) or `fallback` (read + write). */
  readonly replayBytes = new client.Counter({
    name: 'sluice_replay_bytes_total',
    help: 'Replay chunk body bytes sent, by path (sendfile or the read + write fallback)',
    labelNames: ['path'],
    registers: [this.registry],
  });
  readonly replayTransfers = new client.Gauge({ name: 'sluice_replay_in_flight', help: 'Replays running now (follow replays included)', registers: [this.registry] });
  readonly replayConnections = new client.Gauge({ name: 'sluice_replay_connections', help: 'Open replay connections', registers: [this.registry] });
  private readonly lagSources = new Set<() => Iterable<LagSample>>();
  private partitionSource: () => PartitionBytesSample[] = () => [];

  constructor() {
    const lagSources = this.lagSources;
    const partitions = (): PartitionBytesSample[] => this.partitionSource();
    client.collectDefaultMetrics({ register: this.registry, prefix: 'sluice_' });
    new client.Gauge({
      name: 'sluice_partition_bytes',
      help: 'Bytes on disk per partition',
      labelNames: ['topic', 'partition'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const p of partitions()) this.set({ topic: p.topic, partition: String(p.partition) }, p.bytes);
      },
    });
    new client.Gauge({
      name: 'sluice_subscriber_lag_records',
      help: 'Largest lag (hw - next) among the subscriptions of each partition',
      labelNames: ['topic', 'partition'],
      registers: [this.registry],
      collect() {
        this.reset();
        const max = new Map<string, LagSample>();
        for (const source of lagSources) {
          for (const s of source()) {
            const k = `${s.topic}\0${s.partition}`;
            const m = max.get(k);
            if (!m || s.lag > m.lag) max.set(k, s);
          }
        }
        for (const s of max.values()) this.set({ topic: s.topic, partition: String(s.partition) }, s.lag);
      },
    });
  }

  /** Bytes on disk per partition: the log's, set by server.ts. */
  setPartitionSource(source: () => PartitionBytesSample[]): void {
    this.partitionSource = source;
  }

  /** A front's subscriptions and how far each is behind; returns the function that removes it. */
  addLagSource(source: () => Iterable<LagSample>): () => void {
    this.lagSources.add(source);
    return () => this.lagSources.delete(source);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
