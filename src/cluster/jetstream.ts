/**
 * What sluice needs to know of JetStream itself, in one place: the API error codes it acts
 * on, how a failure to reach it is worded, connecting with retry, and opening a bucket.
 */
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import type { KV, Kvm } from '@nats-io/kv';
import { UnavailableError } from '../../engine/index.ts';
import type { Logger } from '../common/logger.ts';
import { connectTimeoutMs, retryDelayMaxMs } from './limits.ts';

/** JetStream API error codes: a broken expectation on the stream's last message (another publisher got there first)... */
export const WRONG_LAST_MSG_ID = 10070;
export const WRONG_LAST_SEQUENCE = 10071;
/** ...the stream does not exist (its topic was deleted)... */
export const STREAM_NOT_FOUND = 10059;
/** ...and a message over the stream's or the server's limit. */
export const MESSAGE_TOO_LARGE = 10054;

/** JetStream's answer that a request did not get through: no quorum, no leader, no connection. */
export function clusterUnavailable(what: string, err: unknown): UnavailableError {
  return new UnavailableError(`${what}: ${(err as Error)?.message ?? String(err)} (JetStream unreachable or without quorum?)`, 'CLUSTER_UNAVAILABLE');
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Connects to any of `servers`, retrying for up to connectTimeoutMs; the connection then reconnects by itself for ever. */
export async function connectWithRetry(servers: string[], name: string, logger: Logger): Promise<NatsConnection> {
  const deadline = Date.now() + connectTimeoutMs;
  let delay = 100;
  for (;;) {
    try {
      const nc = await connect({
        servers,
        name,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        reconnectJitter: 100,
        pingInterval: 10_000,
        timeout: 5000,
      });
      void (async () => {
        for await (const s of nc.status()) {
          if (s.type === 'disconnect' || s.type === 'reconnect' || s.type === 'error') logger.warn({ status: s.type, server: 'server' in s ? s.server : undefined }, 'NATS connection');
        }
      })().catch(() => {});
      return nc;
    } catch (err) {
      if (Date.now() + delay > deadline) throw clusterUnavailable(`cannot connect to NATS at ${servers.join(',')}`, err);
      logger.warn({ err: (err as Error).message }, 'cannot connect to NATS yet; retrying');
      await sleep(delay);
      delay = Math.min(delay * 2, retryDelayMaxMs);
    }
  }
}

/** Opens the key-value bucket `name`, creating it with `replicas` when it does not exist. */
export async function openBucket(kvm: Kvm, name: string, replicas: number): Promise<KV> {
  try {
    return await kvm.create(name, { replicas, history: 1, allow_direct: false });
  } catch (err) {
    // Exists with another configuration (created with other replicas, say): use it as it is.
    try {
      return await kvm.open(name);
    } catch {
      throw clusterUnavailable(`cannot open the key-value bucket ${name}`, err);
    }
  }
}
