/**
 * What an operator reads in the log (docs/operations.md): the story of the server told in
 * few lines, each a pino JSON line on stderr with a plain-words `msg`.
 *
 * - debug: every connection opened and closed (WebSocket and replay), with its id, peer
 *   address and, when closed, how long it lived and why;
 * - info: topics created and deleted (retention deleting segments is the engine's own info
 *   line, `retention deleted segments`); error answers sent to clients, with their wire code;
 *   refused tokens and origins, with the reason; subscribers that fell behind and went to
 *   disk; and every --log-summary-ms a one-line summary of the period.
 *
 * Lines that a client can cause at will (errors, refusals, fallbacks) are rate-limited per
 * kind (an error code, a reason): at most `logLinesPerKindMax` per `logWindowMs`; the rest
 * are counted, said once ("further lines suppressed") and reported in the summary, so a
 * hostile client cannot flood the log. The counters behind /metrics count every one of them.
 */
import type { Logger } from './logger.ts';
import type { FrontName, Metrics } from './metrics.ts';

/** Lines of one kind (e.g. errors with code BAD_REQUEST) logged per window at most. */
export const logLinesPerKindMax = 20;
/** The window of that limit, in ms. */
export const logWindowMs = 60_000;

/** Context of a line: who it is about (connection id, peer, topic...). */
export type Fields = Record<string, unknown>;

interface Window {
  start: number;
  lines: number;
  suppressed: number;
}

/** What the summary reports beyond the metrics: the log's topic count. */
export interface SummarySources {
  topics(): number;
}

/** The sum of a metric's values now (prom-client reads them asynchronously). */
async function valueOf(metric: { get(): Promise<{ values: { value: number }[] }> }): Promise<number> {
  return (await metric.get()).values.reduce((a, v) => a + v.value, 0);
}

export class Activity {
  private readonly windows = new Map<string, Window>();
  private readonly open = new Map<FrontName, number>();
  private period = Activity.emptyPeriod();
  private lastTraffic = { recordsIn: 0, bytesIn: 0, recordsOut: 0, bytesOut: 0 };
  private lastReplayBytes = 0;
  private periodStart = Date.now();
  private timer: NodeJS.Timeout | null = null;
  private nextConnId = 1;

  constructor(
    private readonly logger: Logger,
    private readonly metrics: Metrics,
    private sources: SummarySources = { topics: () => 0 },
  ) {}

  private static emptyPeriod() {
    return {
      opened: 0,
      closed: 0,
      errors: new Map<string, number>(),
      refused: new Map<string, number>(),
      fallbacks: 0,
      suppressed: 0,
    };
  }

  setSources(sources: SummarySources): void {
    this.sources = sources;
  }

  /** An id for a new connection, for the lines about it. */
  connectionId(): number {
    return this.nextConnId++;
  }

  /** Logs `msg` unless lines of this kind are over their limit in this window. */
  private limited(kind: string, fields: Fields, msg: string): void {
    const now = Date.now();
    let w = this.windows.get(kind);
    if (!w || now - w.start >= logWindowMs) {
      if (w && w.suppressed > 0) fields = { ...fields, suppressedBefore: w.suppressed };
      w = { start: now, lines: 0, suppressed: 0 };
      this.windows.set(kind, w);
    }
    if (w.lines < logLinesPerKindMax) {
      w.lines++;
      this.logger.info(fields, msg);
      if (w.lines === logLinesPerKindMax) this.logger.info({ kind, windowMs: logWindowMs }, `further "${kind}" lines are suppressed for the rest of this minute (counted in the summary and /metrics)`);
      return;
    }
    w.suppressed++;
    this.period.suppressed++;
  }

  connectionOpened(front: FrontName, fields: Fields): void {
    this.metrics.connectionsOpened.inc({ front });
    this.open.set(front, (this.open.get(front) ?? 0) + 1);
    this.period.opened++;
    this.logger.debug({ front, ...fields }, `${front} connection opened`);
  }

  connectionClosed(front: FrontName, fields: Fields): void {
    this.open.set(front, Math.max(0, (this.open.get(front) ?? 0) - 1));
    this.period.closed++;
    this.logger.debug({ front, ...fields }, `${front} connection closed`);
  }

  /** An error answer sent to a client (not an auth refusal: see authRefused). */
  clientError(front: FrontName, code: string, message: string, fields: Fields = {}): void {
    this.metrics.errors.inc({ front, code });
    this.period.errors.set(code, (this.period.errors.get(code) ?? 0) + 1);
    this.limited(`error ${code}`, { front, code, message, ...fields }, `client error ${code}: ${message}`);
  }

  /** A token (or an origin) refused, answered with `code` (UNAUTHORIZED, FORBIDDEN); `reason` says why. */
  authRefused(front: FrontName, code: string, reason: string, message: string, fields: Fields = {}): void {
    this.metrics.errors.inc({ front, code });
    this.metrics.authRefused.inc({ front, reason });
    this.period.refused.set(reason, (this.period.refused.get(reason) ?? 0) + 1);
    this.limited(`refused ${reason}`, { front, code, reason, message, ...fields }, `refused ${code} (${reason}): ${message}`);
  }

  /** A subscriber above the backpressure mark left the live path and is fed from disk. */
  subscriberFellBack(fields: Fields): void {
    this.metrics.slowSubscriberSwitches.inc();
    this.period.fallbacks++;
    this.limited('fallback', fields, 'a slow subscriber fell behind: it is now fed from disk at its own pace');
  }

  topicCreated(topic: string, partitions: number): void {
    this.logger.info({ topic, partitions }, `topic ${topic} created with ${partitions} partition${partitions === 1 ? '' : 's'}`);
  }

  topicDeleted(topic: string): void {
    this.metrics.forgetTopic(topic);
    this.logger.info({ topic }, `topic ${topic} deleted`);
  }

  /** The summary of the period since the last one; resets the period. */
  async summary(): Promise<{ msg: string; fields: Fields }> {
    const [live, waiting, replayBytes] = await Promise.all([valueOf(this.metrics.subscriptions), valueOf(this.metrics.subscriptionsWaiting), valueOf(this.metrics.replayBytes)]);
    const now = Date.now();
    const seconds = Math.max(0.001, (now - this.periodStart) / 1000);
    const total = { recordsIn: 0, bytesIn: 0, recordsOut: 0, bytesOut: 0 };
    for (const t of this.metrics.topicTraffic().values()) {
      total.recordsIn += t.recordsIn;
      total.bytesIn += t.bytesIn;
      total.recordsOut += t.recordsOut;
      total.bytesOut += t.bytesOut;
    }
    const d = {
      recordsIn: total.recordsIn - this.lastTraffic.recordsIn,
      bytesIn: total.bytesIn - this.lastTraffic.bytesIn,
      recordsOut: total.recordsOut - this.lastTraffic.recordsOut,
      bytesOut: total.bytesOut - this.lastTraffic.bytesOut,
    };
    let lagMax: { topic: string; partition: number; lag: number } | null = null;
    for (const s of this.metrics.lagSamples()) if (!lagMax || s.lag > lagMax.lag) lagMax = { topic: s.topic, partition: s.partition, lag: s.lag };
    const subs = { live, waiting };
    const p = this.period;
    const fields: Fields = {
      periodS: Math.round(seconds),
      connections: Object.fromEntries(this.open),
      opened: p.opened,
      closed: p.closed,
      subscriptions: subs.live,
      waiting: subs.waiting,
      topics: this.sources.topics(),
      in: { records: d.recordsIn, bytes: d.bytesIn, perS: round(d.recordsIn / seconds) },
      out: { records: d.recordsOut, bytes: d.bytesOut, perS: round(d.recordsOut / seconds) },
      errors: Object.fromEntries(p.errors),
      refused: Object.fromEntries(p.refused),
      fallbacks: p.fallbacks,
      lagMax,
      replayBytes: replayBytes - this.lastReplayBytes,
      suppressedLines: p.suppressed,
    };
    const list = (m: Map<string, number>): string => (m.size === 0 ? 'none' : [...m].map(([k, n]) => `${k} ${n}`).join(', '));
    const ws = this.open.get('ws') ?? 0;
    const msg =
      `activity in the last ${Math.round(seconds)} s: ${ws} WebSocket connection${ws === 1 ? '' : 's'} (${p.opened} opened, ${p.closed} closed), ` +
      `${subs.live} subscription${subs.live === 1 ? '' : 's'}${subs.waiting ? ` (+${subs.waiting} waiting for their topic)` : ''}, ` +
      `in ${d.recordsIn} records (${round(d.recordsIn / seconds)}/s, ${megabytes(d.bytesIn)} MB), ` +
      `out ${d.recordsOut} records (${round(d.recordsOut / seconds)}/s, ${megabytes(d.bytesOut)} MB), ` +
      `errors: ${list(p.errors)}; refused: ${list(p.refused)}; ${p.fallbacks} fallback${p.fallbacks === 1 ? '' : 's'} to disk` +
      `${lagMax && lagMax.lag > 0 ? `; largest lag ${lagMax.lag} records (${lagMax.topic}/${lagMax.partition})` : ''}` +
      `${replayBytes > this.lastReplayBytes ? `; replay sent ${megabytes(replayBytes - this.lastReplayBytes)} MB` : ''}` +
      `${p.suppressed ? `; ${p.suppressed} log lines suppressed` : ''}`;
    this.lastTraffic = total;
    this.lastReplayBytes = replayBytes;
    this.period = Activity.emptyPeriod();
    this.periodStart = now;
    return { msg, fields };
  }

  /** Logs a summary every `periodMs` (0: never). */
  startSummaries(periodMs: number): void {
    if (periodMs <= 0 || this.timer) return;
    this.timer = setInterval(() => {
      void this.summary().then(
        (s) => this.logger.info(s.fields, s.msg),
        (err: unknown) => this.logger.error({ err }, 'activity summary failed'),
      );
    }, periodMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

function round(x: number): number {
  return x >= 100 ? Math.round(x) : Math.round(x * 10) / 10;
}

function megabytes(bytes: number): string {
  return (bytes / 1e6).toFixed(bytes >= 1e7 ? 0 : 2);
}
