/**
 * Prometheus metrics (prom-client), one registry per server so that tests can run several
 * in one process. server.ts builds it and hands it to every front (FrontContext). Hot paths
 * only `inc`/`observe` unlabelled metrics or add to plain numbers (per-topic traffic);
 * what depends on the log (bytes on disk) or on a front's state (subscriber lag, transfers
 * in flight) is computed when /metrics is scraped, from sources the owners register.
 *
 * Label cardinality is bounded (docs/operations.md): labels drawn from fixed sets (`front`,
 * an error `code`, an auth `reason`, a `path`, a Kafka `api`) stay small by construction. A
 * `topic` label is given to at most `topicsMax` topics (--metrics-topics-max, default 100):
 * the first topics the metrics see, through traffic or at a scrape; every other topic is
 * summed under `topic="_other"` (with `partition="_all"` where a series is per partition:
 * bytes summed, lag the largest). A deleted topic gives its label back.
 *
 * With the WebSocket front on several threads (--threads) each thread has its own registry,
 * and /metrics, on whichever thread it is asked, answers with the sum over every thread
 * (`setPeers`): counters, gauges and histogram buckets add up; the subscriber lag takes the
 * largest and the build info the first; the process-wide metrics (CPU, memory, GC, the log
 * thread's event loop) are collected on the log thread only. Each thread bounds its own
 * topic labels, so the sum holds at most threads x --metrics-topics-max of them.
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

/** Records and bytes one topic took in (appended) and sent out (to subscribers), since start. */
export interface TopicTraffic {
  recordsIn: number;
  bytesIn: number;
  recordsOut: number;
  bytesOut: number;
}

/** The fronts that count connections and errors. */
export type FrontName = 'ws' | 'http' | 'replay' | 'kafka';

/** The label every topic beyond `topicsMax` is counted under. */
export const OTHER_TOPIC = '_other';
export const ALL_PARTITIONS = '_all';
/** Default of --metrics-topics-max. */
export const metricsTopicsMaxDefault = 100;

/** The metrics of one thread, as prom-client hands them over for aggregation. */
export type MetricsJson = Awaited<ReturnType<client.Registry['getMetricsAsJSON']>>;

export interface MetricsOptions {
  /** Process-wide metrics (CPU, memory, event loop, GC): on the log thread only. Default true. */
  process?: boolean;
}

export interface BuildLabels {
  version: string;
  commit: string;
}

export class Metrics {
  readonly registry = new client.Registry();
  private peers: (() => Promise<MetricsJson[]>) | null = null;
  readonly connections = new client.Gauge({ name: 'sluice_ws_connections', help: 'Open WebSocket connections', registers: [this.registry] });
  readonly subscriptions = new client.Gauge({ name: 'sluice_subscriptions', help: 'Subscribed topic-partitions over all connections', registers: [this.registry] });
  readonly subscriptionsWaiting = new client.Gauge({ name: 'sluice_subscriptions_waiting', help: 'sub requests waiting for their topic to be created', registers: [this.registry] });
  readonly recordsIn = new client.Counter({ name: 'sluice_records_in_total', help: 'Records appended (JSON pub, PRODUCE, HTTP, Kafka Produce)', registers: [this.registry] });
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
  /** Error answers sent to clients, by front and wire code. */
  readonly errors = new client.Counter({ name: 'sluice_errors_total', help: 'Error answers sent to clients, by front and code', labelNames: ['front', 'code'], registers: [this.registry] });
  /** Refused tokens, by front and reason (TOKEN_EXPIRED, BAD_SIGNATURE, ...; ORIGIN_NOT_ALLOWED for upgrades). */
  readonly authRefused = new client.Counter({ name: 'sluice_auth_refused_total', help: 'Requests and upgrades refused for their token or origin, by front and reason', labelNames: ['front', 'reason'], registers: [this.registry] });
  readonly connectionsOpened = new client.Counter({ name: 'sluice_connections_opened_total', help: 'Connections accepted, by front', labelNames: ['front'], registers: [this.registry] });

  /** Topics with a label of their own (insertion order: first seen). */
  private readonly labelled = new Set<string>();
  /** Traffic per labelled topic, and OTHER_TOPIC for the rest. */
  private readonly traffic = new Map<string, TopicTraffic>();
  private readonly lagSources = new Set<() => Iterable<LagSample>>();
  private partitionSource: () => PartitionBytesSample[] = () => [];

  constructor(
    /** --metrics-topics-max: topics with a `topic` label of their own. */
    readonly topicsMax: number = metricsTopicsMaxDefault,
    build: BuildLabels = { version: 'unknown', commit: 'unknown' },
    opts: MetricsOptions = {},
  ) {
    const lagSources = this.lagSources;
    const partitions = (): PartitionBytesSample[] => this.partitionSource();
    const label = (topic: string): string => this.topicLabel(topic);
    const traffic = this.traffic;
    if (opts.process ?? true) client.collectDefaultMetrics({ register: this.registry, prefix: 'sluice_' });
    new client.Gauge({
      name: 'sluice_build_info',
      help: 'The running build: always 1, with its version, commit and Node.js version as labels',
      labelNames: ['version', 'commit', 'node'],
      registers: [this.registry],
      aggregator: 'first',
    }).set({ version: build.version, commit: build.commit, node: process.version }, 1);
    new client.Gauge({
      name: 'sluice_partition_bytes',
      help: 'Bytes on disk per partition (topics beyond --metrics-topics-max summed as topic="_other", partition="_all")',
      labelNames: ['topic', 'partition'],
      registers: [this.registry],
      collect() {
        this.reset();
        const other: number[] = [];
        for (const p of partitions()) {
          const t = label(p.topic);
          if (t === OTHER_TOPIC) other.push(p.bytes);
          else this.set({ topic: t, partition: String(p.partition) }, p.bytes);
        }
        if (other.length > 0) this.set({ topic: OTHER_TOPIC, partition: ALL_PARTITIONS }, other.reduce((a, b) => a + b, 0));
      },
    });
    new client.Gauge({
      name: 'sluice_subscriber_lag_records',
      help: 'Largest lag (hw - next) among the subscriptions of each partition (topics beyond --metrics-topics-max: the largest, as topic="_other", partition="_all")',
      labelNames: ['topic', 'partition'],
      registers: [this.registry],
      aggregator: 'max',
      collect() {
        this.reset();
        const max = new Map<string, { topic: string; partition: string; lag: number }>();
        for (const source of lagSources) {
          for (const s of source()) {
            const t = label(s.topic);
            const partition = t === OTHER_TOPIC ? ALL_PARTITIONS : String(s.partition);
            const k = `${t}\0${partition}`;
            const m = max.get(k);
            if (!m || s.lag > m.lag) max.set(k, { topic: t, partition, lag: s.lag });
          }
        }
        for (const s of max.values()) this.set({ topic: s.topic, partition: s.partition }, s.lag);
      },
    });
    // Per-topic traffic: plain numbers added on the hot paths, turned into counters here.
    const perTopic = (name: string, help: string, field: keyof TopicTraffic): void => {
      new client.Counter({
        name,
        help: `${help} (topics beyond --metrics-topics-max summed as topic="_other")`,
        labelNames: ['topic'],
        registers: [this.registry],
        collect() {
          this.reset();
          for (const [topic, t] of traffic) this.inc({ topic }, t[field]);
        },
      });
    };
    perTopic('sluice_topic_records_in_total', 'Records appended per topic', 'recordsIn');
    perTopic('sluice_topic_bytes_in_total', 'RecordBatch bytes appended per topic', 'bytesIn');
    perTopic('sluice_topic_records_out_total', 'Records sent to subscribers per topic', 'recordsOut');
    perTopic('sluice_topic_bytes_out_total', 'DATA frame bytes sent to subscribers per topic', 'bytesOut');
  }

  /** The `topic` label for a topic: its name while there is room for it, else OTHER_TOPIC. */
  topicLabel(topic: string): string {
    if (this.labelled.has(topic)) return topic;
    if (this.labelled.size < this.topicsMax) {
      this.labelled.add(topic);
      return topic;
    }
    return OTHER_TOPIC;
  }

  private trafficOf(topic: string): TopicTraffic {
    const label = this.topicLabel(topic);
    let t = this.traffic.get(label);
    if (!t) this.traffic.set(label, (t = { recordsIn: 0, bytesIn: 0, recordsOut: 0, bytesOut: 0 }));
    return t;
  }

  /** An appended batch: the totals and its topic's traffic. */
  countIn(topic: string, records: number, bytes: number): void {
    this.recordsIn.inc(records);
    this.bytesIn.inc(bytes);
    const t = this.trafficOf(topic);
    t.recordsIn += records;
    t.bytesIn += bytes;
  }

  /** Records sent to subscribers: the totals and their topic's traffic. */
  countOut(topic: string, records: number, bytes: number): void {
    this.recordsOut.inc(records);
    this.bytesOut.inc(bytes);
    const t = this.trafficOf(topic);
    t.recordsOut += records;
    t.bytesOut += bytes;
  }

  /** A deleted topic: its series go, and its label is free for another topic. */
  forgetTopic(topic: string): void {
    if (!this.labelled.delete(topic)) return;
    this.traffic.delete(topic);
  }

  /** Traffic so far, by label (the live page and the activity summary read it). */
  topicTraffic(): ReadonlyMap<string, Readonly<TopicTraffic>> {
    return this.traffic;
  }

  /** Every subscription's lag now, from the fronts' sources. */
  *lagSamples(): Iterable<LagSample> {
    for (const source of this.lagSources) yield* source();
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

  /**
   * The other threads' metrics, for /metrics to add to this thread's (--threads): set by
   * the composition root, never by a front.
   */
  setPeers(peers: () => Promise<MetricsJson[]>): void {
    this.peers = peers;
  }

  /** This thread's metrics only, for another thread's /metrics. */
  json(): Promise<MetricsJson> {
    return this.registry.getMetricsAsJSON();
  }

  /** Every thread's metrics summed, as a registry to read values from (this one with one thread). */
  async summed(): Promise<client.Registry> {
    if (this.peers === null) return this.registry;
    const all = [await this.registry.getMetricsAsJSON(), ...(await this.peers())];
    return client.AggregatorRegistry.aggregate(all);
  }

  /** The Prometheus text of every thread's metrics, summed. */
  async text(): Promise<string> {
    return (await this.summed()).metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
