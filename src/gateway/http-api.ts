/**
 * The HTTP API (wire contract §5) on the same uWS app and port as the WebSocket.
 *
 * uWS rules this file follows: the HttpRequest is valid only inside the route handler
 * (everything needed is read from it first); a response answered later needs `onAborted`
 * (and is never touched after it fired); bodies arrive in `onData` chunks whose
 * ArrayBuffers are valid only during the call (copied), and are capped at
 * `bodyBytesMax` (413); answers given outside the handler are written inside `cork`.
 */
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { z } from 'zod';
import { type ErrorCode, type Log, OffsetOutOfRangeError, SluiceError, UnknownTopicError, assertTopicName, checkBatch, decodeBatchRecords, producerRecordBytes } from '../../engine/index.ts';
import { type Auth, type Principal, authenticate, authorize, can, tokenFromRequest } from '../common/auth.ts';
import type { Activity } from '../common/activity.ts';
import { buildInfo } from '../common/build-info.ts';
import type { Config } from '../common/config.ts';
import type { Limits } from '../common/limits.ts';
import type { Logger } from '../common/logger.ts';
import type { Metrics } from '../common/metrics.ts';
import { type RecordJson, recordToJson } from '../common/record-json.ts';
import type { Batcher } from './batcher.ts';
import { type OriginPolicy, corsAllowHeaders, corsAllowMethods, preflightMaxAgeSeconds } from './cors.ts';
import { Reply, statusOf, zodMessage } from './http-reply.ts';
import { bodyBytesMax as bodyBytesMaxFor, postRecordsMax, readRecordsBytesMax, readRecordsChunkBytes, readRecordsLimitMax } from './limits.ts';
import { RecordInput, isProtocolError, toJsonRecord } from './ws-protocol.ts';

export interface HttpContext {
  config: Config;
  limits: Limits;
  /** null: auth is off and every request is allowed. */
  auth: Auth | null;
  log: Log;
  batcher: Batcher;
  metrics: Metrics;
  logger: Logger;
  /** Which other origins' pages may call the API (--cors-origins). */
  origins: OriginPolicy;
  /** Error answers are counted and logged here. */
  activity: Activity;
  isReady(): boolean;
  /** The index of the thread this app runs on (--threads). */
  thread: number;
}


const CreateTopic = z.object({
  partitions: z.number().int().min(1).optional(),
  retentionMs: z.number().int().min(-1).optional(),
  retentionBytes: z.number().int().min(-1).optional(),
});
const PostRecords = z.object({ records: z.array(RecordInput).min(1).max(postRecordsMax) });

/**
 * The `{topic}` of a route, percent-decoded. A malformed escape (`%E0%A4%A`) would make
 * decodeURIComponent throw inside a uWS handler; it gives '' instead, which no topic is
 * named (BAD_REQUEST where a name is checked, UNKNOWN_TOPIC otherwise).
 */
function topicParam(req: HttpRequest): string {
  try {
    return decodeURIComponent(req.getParameter(0) ?? '');
  } catch {
    return '';
  }
}

export function registerHttpApi(app: TemplatedApp, ctx: HttpContext): void {
  const { log, batcher, config, logger, auth, origins } = ctx;
  const bodyBytesMax = bodyBytesMaxFor(ctx.limits.frameBytesMax);
  /** A request's Reply, with the CORS headers its Origin earns (read now: the HttpRequest dies with the handler). */
  const replyTo = (res: HttpResponse, req: HttpRequest): Reply => {
    const remote = Buffer.from(res.getRemoteAddressAsText()).toString();
    const route = `${req.getCaseSensitiveMethod()} ${req.getUrl()}`;
    return new Reply(res, origins.allowOrigin(req.getHeader('origin')), (code, reason, message) => {
      if (code === 'UNAUTHORIZED' || code === 'FORBIDDEN') ctx.activity.authRefused('http', code, reason, message, { remote, route });
      else ctx.activity.clientError('http', code, message, { remote, route });
    });
  };

  // CORS preflight (--cors-origins): the methods and headers the API takes, for a listed origin.
  // An OPTIONS without Origin is no preflight: an unknown route, like any other.
  app.options('/*', (res, req) => {
    const origin = req.getHeader('origin');
    const r = replyTo(res, req);
    if (!origin) return r.json(404, { code: 'BAD_REQUEST', message: 'no such route' });
    if (origins.allowOrigin(origin) === null) {
      return r.json(403, {
        code: 'FORBIDDEN',
        message: origins.corsEnabled ? `origin ${origin} is not in --cors-origins` : 'cross-origin requests are off: the server has no --cors-origins',
      });
    }
    r.send(204, '', 'text/plain', false, {
      'access-control-allow-methods': corsAllowMethods,
      'access-control-allow-headers': corsAllowHeaders,
      'access-control-max-age': String(preflightMaxAgeSeconds),
    });
  });

  /**
   * The principal of a request (null with auth off), from `?token=` or `Authorization:
   * Bearer`. Reads the HttpRequest now (it is valid only during the handler); rejects with
   * UNAUTHORIZED. With auth off it is resolved at once.
   */
  const principalOf = (req: HttpRequest): Promise<Principal | null> => {
    if (auth === null) return Promise.resolve(null);
    try {
      return authenticate(auth, tokenFromRequest({ query: req.getQuery(), authorization: req.getHeader('authorization') }));
    } catch (err) {
      return Promise.reject(err);
    }
  };
  /** Runs `fn` with the request's principal; answers 401 instead when the token does not verify. */
  const withPrincipal = (reply: Reply, req: HttpRequest, fn: (p: Principal | null) => void): void => {
    if (auth === null) return fn(null);
    principalOf(req).then(
      (p) => {
        if (!reply.aborted) fn(p);
      },
      (err) => reply.error(err, logger),
    );
  };

  app.get('/healthz', (res, req) => {
    // Which thread answered (--threads): 0 is the log thread.
    replyTo(res, req).json(200, { ok: true, thread: ctx.thread });
  });
  app.get('/readyz', (res, req) => {
    const ready = ctx.isReady();
    replyTo(res, req).json(ready ? 200 : 503, { ok: ready });
  });
  app.get('/metrics', (res, req) => {
    const reply = replyTo(res, req);
    ctx.metrics.text().then(
      (text) => reply.send(200, text, ctx.metrics.contentType),
      (err) => reply.error(err, logger),
    );
  });

  /**
   * `GET /v1/stats`: what the live page shows, in one answer: the build, connections and
   * subscriptions now, and per topic its partitions (start, hw, bytes, the largest subscriber
   * lag, or null without subscribers) and the records it took in and sent out since the
   * server started (null for a topic beyond --metrics-topics-max). Topics are filtered like
   * `GET /v1/topics`: only those the token may `sub`.
   */
  const stats = async (principal: Principal | null): Promise<unknown> => {
    // From the metrics of every thread summed (--threads), whichever thread is asked.
    const registry = await ctx.metrics.summed();
    const series = async (name: string): Promise<{ value: number; labels: Partial<Record<string, string | number>> }[]> => (await registry.getSingleMetric(name)?.get())?.values ?? [];
    const total = async (name: string): Promise<number> => (await series(name)).reduce((a, v) => a + v.value, 0);
    const byTopic = async (name: string): Promise<Map<string, number>> => new Map((await series(name)).map((v) => [String(v.labels.topic), v.value]));
    const [subscriptions, waiting, ws, replay, kafka, lagSeries, recordsIn, recordsOut] = await Promise.all([
      total('sluice_subscriptions'),
      total('sluice_subscriptions_waiting'),
      total('sluice_ws_connections'),
      total('sluice_replay_connections'),
      total('sluice_kafka_connections'),
      series('sluice_subscriber_lag_records'),
      byTopic('sluice_topic_records_in_total'),
      byTopic('sluice_topic_records_out_total'),
    ]);
    // Per labelled topic (--metrics-topics-max); the others' lag is counted under `_other`.
    const lag = new Map(lagSeries.map((v) => [`${v.labels.topic}\0${v.labels.partition}`, v.value]));
    const topics = [];
    for (const name of log.listTopics()) {
      if (!can(principal, 'sub', name)) continue;
      let info;
      try {
        info = log.describe(name);
      } catch {
        continue; // deleted meanwhile
      }
      topics.push({
        name,
        recordsIn: recordsIn.get(name) ?? null,
        recordsOut: recordsOut.get(name) ?? null,
        partitions: info.partitions.map((p) => ({ partition: p.partition, start: p.start, hw: p.hw, bytes: p.bytes, lag: lag.get(`${name}\0${p.partition}`) ?? null })),
      });
    }
    const { version, commit } = buildInfo();
    return { version, commit, uptimeMs: Math.round(process.uptime() * 1000), connections: { ws, replay, kafka }, subscriptions, waiting, topics };
  };
  app.get('/v1/stats', (res, req) => {
    const reply = replyTo(res, req);
    withPrincipal(reply, req, (principal) => {
      stats(principal).then(
        (body) => reply.json(200, body),
        (err) => reply.error(err, logger),
      );
    });
  });

  app.get('/v1/topics', (res, req) => {
    const reply = replyTo(res, req);
    withPrincipal(reply, req, (principal) => {
      try {
        // Only the topics the token may sub: listing the others would tell what exists.
        reply.json(200, { topics: log.listTopics().filter((t) => can(principal, 'sub', t)).map((t) => log.describe(t)) });
      } catch (err) {
        reply.error(err, logger);
      }
    });
  });

  app.put('/v1/topics/:topic', (res, req) => {
    const reply = replyTo(res, req);
    const topic = topicParam(req);
    const principal = principalOf(req);
    principal.catch((err) => reply.error(err, logger)); // 401 at once, without waiting for the body
    reply.jsonBody(bodyBytesMax, (body) => {
      principal.then((p) => {
        if (reply.aborted || reply.done) return;
        try {
          authorize(p, 'admin');
        } catch (err) {
          return reply.error(err, logger);
        }
        const r = CreateTopic.safeParse(body);
        if (!r.success) return reply.json(400, { code: 'BAD_REQUEST', message: zodMessage(r.error) });
        log.createTopic(topic, { partitions: r.data.partitions ?? config.partitions, retentionMs: r.data.retentionMs, retentionBytes: r.data.retentionBytes }).then(
          (info) => reply.json(201, info),
          (err) => reply.error(err, logger),
        );
      }, () => {});
    });
  });

  app.get('/v1/topics/:topic', (res, req) => {
    const reply = replyTo(res, req);
    const topic = topicParam(req);
    withPrincipal(reply, req, (principal) => {
      try {
        authorize(principal, 'sub', topic);
        reply.json(200, log.describe(topic));
      } catch (err) {
        reply.error(err, logger);
      }
    });
  });

  app.del('/v1/topics/:topic', (res, req) => {
    const reply = replyTo(res, req);
    const topic = topicParam(req);
    withPrincipal(reply, req, (principal) => {
      try {
        authorize(principal, 'admin');
      } catch (err) {
        return reply.error(err, logger);
      }
      if (!log.hasTopic(topic)) return reply.error(new UnknownTopicError(topic));
      log.deleteTopic(topic).then(
        () => reply.json(200, { deleted: topic }),
        (err) => reply.error(err, logger),
      );
    });
  });

  app.post('/v1/topics/:topic/records', (res, req) => {
    const reply = replyTo(res, req);
    const topic = topicParam(req);
    const principal = principalOf(req);
    principal.catch((err) => reply.error(err, logger)); // 401 at once, without waiting for the body
    reply.jsonBody(bodyBytesMax, (body) => {
      principal.then((p) => {
        if (reply.aborted || reply.done) return;
        try {
          // Before anything else, auto-creation included: FORBIDDEN and nothing else happens.
          authorize(p, 'pub', topic);
        } catch (err) {
          return reply.error(err, logger);
        }
        const r = PostRecords.safeParse(body);
        if (!r.success) return reply.json(400, { code: 'BAD_REQUEST', message: zodMessage(r.error) });
        try {
          assertTopicName(topic);
          // Everything is checked before anything is queued: a refused request stores nothing.
          const records = r.data.records.map((rec) => {
            const p = toJsonRecord(rec, ctx.limits);
            if (isProtocolError(p)) throw new SluiceError(p.code, p.message, p.reason);
            return p;
          });
          const count = batcher.partitionCountFor(topic);
          for (const rec of r.data.records) {
            if (rec.partition !== undefined && rec.partition >= count) throw new SluiceError('BAD_REQUEST', `partition ${rec.partition} does not exist in ${topic} (0..${count - 1})`, 'BAD_PARTITION');
          }
          const offsets: ({ partition: number; offset: number } | { partition: number; code: string; message: string })[] = new Array(records.length);
          let left = records.length;
          let firstError: SluiceError | null = null;
          r.data.records.forEach((rec, i) => {
            batcher.publish(topic, rec.partition, records[i].key, records[i].value, records[i].headers, {
              appended(err, partition, offset) {
                if (err) {
                  firstError ??= err;
                  offsets[i] = { partition, code: err.code, message: err.message };
                } else offsets[i] = { partition, offset };
                if (--left === 0) {
                  if (firstError) reply.json(statusOf(firstError), { code: firstError.code, message: firstError.message, offsets });
                  else reply.json(200, { offsets });
                }
              },
            });
          });
        } catch (err) {
          reply.error(err, logger);
        }
      }, () => {});
    });
  });

  app.get('/v1/topics/:topic/records', (res, req) => {
    const reply = replyTo(res, req);
    const topic = topicParam(req);
    const q = new URLSearchParams(req.getQuery() ?? '');
    withPrincipal(reply, req, (principal) => {
      try {
        authorize(principal, 'sub', topic);
        const partition = q.has('partition') ? Number(q.get('partition')) : 0;
        const plog = log.partition(topic, partition);
        const fromText = q.get('from') ?? 'earliest';
        let from: number;
        if (fromText === 'earliest') from = plog.startOffset;
        else if (fromText === 'latest') from = plog.hw;
        else {
          from = Number(fromText);
          if (!Number.isSafeInteger(from) || from < 0) throw new SluiceError('BAD_REQUEST', 'from is earliest, latest or an offset', 'BAD_OFFSET');
        }
        const limit = q.has('limit') ? Number(q.get('limit')) : 100;
        if (!Number.isInteger(limit) || limit < 1 || limit > readRecordsLimitMax) throw new SluiceError('BAD_REQUEST', `limit is 1..${readRecordsLimitMax}`, 'BAD_LIMIT');
        if (from > plog.hw) throw new OffsetOutOfRangeError(`offset ${from} is above the high watermark ${plog.hw}`);
        const out: Record<string, unknown> = { topic, partition, epoch: plog.epoch };
        let pos = from;
        if (from < plog.startOffset) {
          // Never skip silently: say what retention took, then read from the start.
          out.gap = { from, to: plog.startOffset };
          pos = plog.startOffset;
        }
        const records: RecordJson[] = [];
        // Bytes of keys, values and headers in the answer: past readRecordsBytesMax (after at
        // least one record) it stops, says `more`, and `next` is where to ask again. Batches
        // are decoded one at a time, only as far as the answer needs them.
        let bytes = 0;
        let more = false;
        reading: while (records.length < limit) {
          const chunk = plog.read(pos, readRecordsChunkBytes);
          if (chunk === null) break;
          if (chunk.gap) {
            // Offsets lost to storage damage: an answer holds at most one gap, before its records.
            if (records.length > 0) break;
            const prior = out.gap as { from: number; to: number } | undefined;
            out.gap = { from: prior?.from ?? chunk.gap.from, to: chunk.gap.to };
            pos = chunk.gap.to;
          }
          for (let at = 0; at < chunk.bytes.length; ) {
            const h = checkBatch(chunk.bytes, at);
            if (h.baseOffset + h.recordCount > pos) {
              for (const rec of decodeBatchRecords(chunk.bytes, at, h)) {
                if (rec.offset < pos) continue;
                if (records.length >= limit) break reading;
                const n = producerRecordBytes(rec);
                if (records.length > 0 && bytes + n > readRecordsBytesMax) {
                  more = true;
                  break reading;
                }
                bytes += n;
                records.push(recordToJson(rec));
                pos = rec.offset + 1;
              }
            }
            at += h.size;
          }
          pos = chunk.nextOffset;
        }
        out.records = records;
        out.next = pos;
        out.hw = plog.hw;
        if (more) out.more = true;
        reply.json(200, out);
      } catch (err) {
        reply.error(err, logger);
      }
    });
  });

  app.any('/*', (res, req) => {
    replyTo(res, req).json(404, { code: 'BAD_REQUEST', message: 'no such route' });
  });
}
