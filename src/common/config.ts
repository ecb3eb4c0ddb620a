/**
 * Server configuration: defaults < JSON config file (--config) < SLUICE_* environment
 * variables < command-line flags, validated as a whole by zod so that a bad value names
 * its source and the rule it broke.
 */
import fs from 'node:fs';
import os from 'node:os';
import { z } from 'zod';
import { SluiceError } from '../../engine/errors.ts';
import { limits } from '../../engine/index.ts';
import { originList, originsProblem } from './origins.ts';

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
/** `nats://host:port`, `tls://user:pass@host:port`, `host:port`, `[::1]:4222`. */
const natsUrlPattern = /^((nats|tls):\/\/)?([^\s,/@]+@)?([A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\])(:\d{1,5})?$/;

/** The most threads --threads takes: more than any machine's cores, less than a runaway value. */
export const threadsMax = 256;

/** One thread per core this process may use (its CPU affinity), within threadsMax. */
export function defaultThreads(): number {
  return Math.min(threadsMax, Math.max(1, os.availableParallelism()));
}

/** A list of origins: comma-separated (flags, SLUICE_* variables) or an array (config file). */
const origins = z
  .union([z.string(), z.array(z.string())])
  .transform(originList)
  .superRefine((list, ctx) => {
    const problem = originsProblem(list);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
const bool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes')]);

export const ConfigSchema = z
  .object({
    dataDir: z.string().min(1).default('./data'),
    host: z.string().min(1).optional(),
    port: int(0, 65535).default(8080),
    replayPort: int(0, 65535).default(8081),
    /** The Kafka protocol listener (wire contract §8): 0 picks a free port, -1 turns it off. */
    kafkaPort: int(-1, 65535).default(9092),
    /** The host Kafka Metadata names (default: the bound host, 127.0.0.1 when that is a wildcard). */
    kafkaAdvertisedHost: z.string().min(1).optional(),
    partitions: int(1, limits.partitionsMax).default(1),
    flush: z.enum(['always', 'interval', 'never']).default('always'),
    flushMs: int(1, 60_000).default(limits.flushMsDefault),
    segmentBytes: int(64 * 1024, limits.segmentBytesMax).default(limits.segmentBytesDefault),
    segmentMs: int(1000).default(limits.segmentMsDefault),
    retentionMs: int(-1).default(-1),
    retentionBytes: int(-1).default(-1),
    authSecret: z.string().min(1).optional(),
    authPublicKey: z.string().min(1).optional(),
    autoCreate: bool.default(true),
    maxFrameBytes: int(1024, 256 * 1024 * 1024).default(1024 * 1024),
    /** One record's key + value + header keys and values, in bytes. */
    maxRecordBytes: int(1, 256 * 1024 * 1024).default(limits.recordBytesDefault),
    /** Headers on one record. */
    maxRecordHeaders: int(0, 1_000_000).default(limits.recordHeadersDefault),
    /**
     * A published batch's records once decompressed, in bytes: what validating or decoding one
     * batch may cost. Absent: the larger of 16 MiB and --max-record-bytes (one record must fit).
     */
    maxBatchDecodedBytes: int(64 * 1024, limits.batchBytesMax).optional(),
    /** How far a record timestamp may run ahead of the server's clock, in ms. */
    maxTimestampAheadMs: int(0, 365 * 24 * 3600 * 1000).default(limits.timestampAheadMsDefault),
    /** Topics the server holds at once; one more create (or auto-create) is refused. */
    maxTopics: int(1, 1_000_000).default(limits.topicsDefault),
    /** Records per second per connection; 0 = unlimited. */
    publishRate: int(0).default(0),
    /** Topic-partitions one WebSocket connection may follow at once; one more `sub` is BAD_REQUEST. */
    maxSubscriptions: int(1, 1_000_000).default(1000),
    /** WebSocket connections open at once (upgrades in progress count); one more upgrade gets 503 UNAVAILABLE. */
    maxConnections: int(1, 10_000_000).default(10_000),
    /**
     * Threads the WebSocket/HTTP front runs on, each with its own uWS app on the same port
     * (the log and the other fronts stay on the first): default one per core.
     */
    threads: int(1, threadsMax).default(defaultThreads()),
    /**
     * A WebSocket with no traffic for this long is closed; the server pings it before that, so
     * a live client (which answers pings) stays. uWS counts in seconds, at least 8: 0 (off) or
     * 8000 and more, rounded to the second.
     */
    idleTimeoutMs: int(0, 24 * 3600 * 1000)
      .refine((ms) => ms === 0 || ms >= 8000, { message: 'is 0 (off) or at least 8000 (uWS needs 8 s or more)' })
      .default(120_000),
    /**
     * The most a JSON publish waits for others to share its partition's batch, in ms. 0 (the
     * default): no timer, the batch is appended when the event-loop turn it arrived in ends
     * (or, while the partition's previous append is in flight, when that one finishes).
     */
    lingerMs: int(0, 1000).default(0),
    /** A partition's batch is appended as soon as it holds this many bytes. */
    batchBytes: int(1024, limits.batchBytesMax).default(1024 * 1024),
    /** Compression of batches the server builds from JSON publishes. */
    compression: z.enum(['none', 'lz4']).default('lz4'),
    /** Origins whose pages may call the HTTP API (CORS); empty: no CORS headers. */
    corsOrigins: origins.default([]),
    /** Origins whose pages may open a WebSocket (checked on the upgrade); empty: any. */
    allowedOrigins: origins.default([]),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /**
     * Cluster mode (wire contract §9): the NATS servers whose JetStream holds the log, as
     * `nats://host:port` (or `host:port`) separated by commas. Absent: a single node.
     */
    cluster: z
      .union([z.string().transform((s) => s.split(',')), z.array(z.string())])
      .transform((urls) => urls.map((u) => u.trim()).filter((u) => u.length > 0))
      .refine((urls) => urls.length > 0, { message: 'needs at least one NATS URL' })
      .refine((urls) => urls.every((u) => natsUrlPattern.test(u)), { message: 'is a comma-separated list of nats://host:port' })
      .optional(),
    /** JetStream replicas of every stream and bucket the cluster creates. */
    clusterReplicas: int(1, 5).default(3),
    /** This node's id; default: a random one kept in the data directory. */
    nodeId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, { message: 'is 1 to 64 letters, digits, _ or -' }).optional(),
    /** The prefix of every stream, subject and bucket the cluster creates, so that two clusters can share a NATS. */
    clusterName: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, { message: 'is 1 to 32 letters, digits, _ or -' }).default('sluice'),
    /** Topics that get their own `topic` label in /metrics; the others are summed under `_other`. */
    metricsTopicsMax: int(0, 10_000).default(100),
    /** The period of the one-line activity summary in the log; 0 = off. */
    logSummaryMs: int(0, 24 * 3600 * 1000)
      .refine((ms) => ms === 0 || ms >= 1000, { message: 'is 0 (off) or at least 1000' })
      .default(60_000),
  })
  .strict()
  .refine((c) => !(c.authSecret && c.authPublicKey), { message: 'give --auth-secret or --auth-public-key, not both' })
  .refine((c) => c.maxBatchDecodedBytes === undefined || c.maxBatchDecodedBytes >= c.maxRecordBytes, {
    message: '--max-batch-decoded-bytes is below --max-record-bytes: no batch could hold the largest record',
    path: ['maxBatchDecodedBytes'],
  });

export type Config = z.infer<typeof ConfigSchema>;

/**
 * What `serve --help` says of each flag: its value's name and a description (the default
 * and, for a fixed set, the values allowed are added from the schema). Typed over every key,
 * so a new setting cannot be added without its description.
 */
export const CONFIG_HELP: { readonly [K in keyof Config]-?: readonly [arg: string, help: string] } = {
  dataDir: ['dir', 'directory of the log (segments, indexes, topic metadata)'],
  host: ['host', 'address to listen on (default: 127.0.0.1 without auth, 0.0.0.0 with auth)'],
  port: ['port', 'WebSocket and HTTP port; 0 picks a free one'],
  replayPort: ['port', 'TCP bulk replay port; 0 picks a free one'],
  kafkaPort: ['port', 'Kafka protocol listener port; 0 picks a free one, -1 turns it off'],
  kafkaAdvertisedHost: ['host', 'the host Kafka Metadata names (default: the bound host, 127.0.0.1 when bound to 0.0.0.0)'],
  partitions: ['n', 'partitions of topics created without a count (auto-created, PUT without "partitions")'],
  flush: ['policy', 'always: ack a record once fsynced (group commit); interval: fsync every --flush-ms; never: leave it to the OS'],
  flushMs: ['ms', 'fsync period under --flush interval'],
  segmentBytes: ['bytes', 'a segment file rolls at this size'],
  segmentMs: ['ms', 'a segment file rolls at this age'],
  retentionMs: ['ms', 'delete whole segments older than this; -1 keeps everything'],
  retentionBytes: ['bytes', 'delete the oldest segments of a partition above this size; -1 keeps everything'],
  authSecret: ['secret', 'turn auth on: JWTs signed HS256 with this shared secret (32+ random bytes)'],
  authPublicKey: ['file', 'turn auth on: JWTs signed RS256/ES256, verified with this PEM or JWKS file'],
  autoCreate: ['bool', 'create a topic on its first publish (true/false); a sub never creates one'],
  maxFrameBytes: ['bytes', 'largest WebSocket frame, HTTP body or request; a larger frame closes the connection (1009)'],
  maxRecordBytes: ['bytes', 'largest record: key + value + header keys and values; larger is refused TOO_LARGE'],
  maxRecordHeaders: ['n', 'most headers on one record; more is refused TOO_LARGE'],
  maxBatchDecodedBytes: ['bytes', 'largest published batch once decompressed (default: the larger of 16 MiB and --max-record-bytes); larger is refused TOO_LARGE'],
  maxTimestampAheadMs: ['ms', 'how far a record timestamp may be ahead of the server clock; further is refused BAD_REQUEST'],
  maxTopics: ['n', 'most topics at once; one more create or auto-create is refused BAD_REQUEST'],
  publishRate: ['n', 'records per second per connection; 0 = unlimited; over it: RATE_LIMITED'],
  maxSubscriptions: ['n', 'topic-partitions one WebSocket may follow at once'],
  maxConnections: ['n', 'WebSocket connections at once, over all threads; one more upgrade gets 503'],
  threads: ['n', 'threads the WebSocket/HTTP front runs on, each a uWS app on the same port; the log stays on one (default: one per core)'],
  idleTimeoutMs: ['ms', 'close a WebSocket silent this long (pinged first); 0 = off, else at least 8000'],
  lingerMs: ['ms', 'the most a JSON publish waits to share its partition batch; 0 = until the end of the event-loop turn (or the previous append of the partition)'],
  batchBytes: ['bytes', 'a partition batch is appended once it holds this much'],
  compression: ['codec', 'codec of the batches built from JSON publishes'],
  corsOrigins: ['origins', 'comma-separated origins whose pages may call the HTTP API (CORS), e.g. https://app.example.com,https://*.example.org; * = any; empty = no CORS'],
  allowedOrigins: ['origins', 'comma-separated origins whose pages may open a WebSocket (Origin checked on the upgrade; the server\'s own page always may); empty = any'],
  logLevel: ['level', 'log level; logs are JSON lines on stderr'],
  metricsTopicsMax: ['n', 'topics with their own label in /metrics (the rest are summed as topic="_other")'],
  logSummaryMs: ['ms', 'period of the one-line activity summary in the log; 0 = off'],
  cluster: ['urls', 'cluster mode: comma-separated NATS servers (nats://h1:4222,nats://h2:4222); JetStream holds the log, --data-dir this node\'s copy'],
  clusterReplicas: ['n', 'JetStream replicas of every stream and bucket the cluster creates (1..5)'],
  nodeId: ['id', 'this node\'s id in the cluster (default: a random one kept in the data dir)'],
  clusterName: ['name', 'prefix of every stream, subject and bucket the cluster creates (two clusters can share one NATS)'],
};

/** Each setting's default and, for a fixed set of values, the values allowed. */
export function configChoices(key: keyof Config): { default?: unknown; choices?: readonly string[] } {
  const field = ConfigSchema.shape[key] as unknown as { def?: { defaultValue?: unknown; innerType?: { options?: readonly string[] } } };
  const dflt = ConfigSchema.parse({})[key];
  const choices = field.def?.innerType?.options;
  return { default: dflt, choices: Array.isArray(choices) && choices.every((c) => typeof c === 'string') ? choices : undefined };
}
export type ConfigInput = z.input<typeof ConfigSchema>;

/** The config keys, as flags (`--data-dir`) and env names (`SLUICE_DATA_DIR`). */
export const CONFIG_KEYS = Object.keys(ConfigSchema.shape) as (keyof Config)[];

export function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

export function envName(key: string): string {
  return `SLUICE_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

/** A bad flag, variable, config file or key file: the operator's bad request. */
export class ConfigError extends SluiceError<'BAD_REQUEST'> {
  constructor(message: string) {
    super('BAD_REQUEST', message, 'BAD_CONFIG');
    this.name = 'ConfigError';
  }
}

/** Merges the sources and validates; throws ConfigError with one line per problem. */
export function loadConfig(flags: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): Config {
  const merged: Record<string, unknown> = {};
  const source: Record<string, string> = {};
  const configFile = (flags.config as string | undefined) ?? env.SLUICE_CONFIG;
  if (configFile) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(fs.readFileSync(configFile, 'utf8'));
    } catch (err) {
      throw new ConfigError(`config file ${configFile}: ${(err as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ConfigError(`config file ${configFile}: not a JSON object`);
    for (const [k, v] of Object.entries(parsed)) {
      merged[k] = v;
      source[k] = `config file ${configFile}`;
    }
  }
  for (const key of CONFIG_KEYS) {
    const v = env[envName(key)];
    if (v !== undefined && v !== '') {
      merged[key] = v;
      source[key] = envName(key);
    }
  }
  for (const key of CONFIG_KEYS) {
    if (flags[key] !== undefined) {
      merged[key] = flags[key];
      source[key] = `--${flagName(key)}`;
    }
  }
  const r = ConfigSchema.safeParse(merged);
  if (!r.success) {
    const lines = r.error.issues.map((i) => {
      const key = String(i.path[0] ?? '');
      const where = key ? (source[key] ?? `--${flagName(key)}`) : 'config';
      return i.code === 'unrecognized_keys' ? `${where}: unknown option(s) ${i.keys.join(', ')}` : `${where}: ${i.message}`;
    });
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  return r.data;
}
