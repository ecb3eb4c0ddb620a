/**
 * What an operator sees (docs/operations.md): a server run through a small story — clients
 * connect, publish to several topics, one sends garbage, one brings a forged token, one
 * stops reading, a topic is created and deleted — must leave that story in its log and in
 * /metrics: connections at debug, topic create/delete at info, client errors with their
 * code (rate-limited), refused tokens with the reason, the slow subscriber going to disk,
 * the periodic summary line, errors by code, per-topic traffic under a bounded label set,
 * subscriber lag and the build. Retention deleting segments is the engine's own info line.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { encodeRecordBatch } from '../../engine/codec/index.ts';
import { LogManager } from '../../engine/index.ts';
import { mintToken } from '../../src/cli/token.ts';
import { logLinesPerKindMax } from '../../src/common/activity.ts';
import { produceFrame } from '../../src/gateway/frames.ts';
import { Client, type ServerProcess, httpAs, refusedUpgrade, startServer, tempDir } from '../helpers/server.ts';

const root = path.resolve(import.meta.dirname, '../..');
const secret = 'operator-story-secret-operator-story-secret';

interface Line {
  level: number;
  msg: string;
  [k: string]: unknown;
}

function lines(srv: ServerProcess): Line[] {
  return srv
    .stderr()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Line);
}

async function waitLine(srv: ServerProcess, pred: (l: Line) => boolean, what: string): Promise<Line> {
  for (let i = 0; i < 600; i++) {
    const found = lines(srv).find(pred);
    if (found) return found;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`no log line for ${what} in:\n${srv.stderr().slice(-4000)}`);
}

/** `name{labels} value` lines of a Prometheus text answer, by name. */
function samples(text: string): Map<string, { labels: string; value: number }[]> {
  const out = new Map<string, { labels: string; value: number }[]>();
  for (const l of text.split('\n')) {
    const m = /^([a-z_]+)(\{[^}]*\})? ([-\d.e+]+|NaN)$/.exec(l);
    if (!m) continue;
    if (!out.has(m[1])) out.set(m[1], []);
    out.get(m[1])!.push({ labels: m[2] ?? '', value: Number(m[3]) });
  }
  return out;
}

describe("the operator's story", () => {
  let srv: ServerProcess;
  let admin: string;
  let metrics: Map<string, { labels: string; value: number }[]>;
  let metricsText: string;

  before(async () => {
    srv = await startServer({ args: ['--log-level', 'debug', '--log-summary-ms', '1000', '--metrics-topics-max', '2', '--auth-secret', secret, '--flush', 'never'] });
    admin = await mintToken({ secret, acl: { pub: ['*'], sub: ['*'], admin: true } });
    const url = `${srv.url}?token=${admin}`;

    // Traffic on three topics: the third is beyond --metrics-topics-max 2.
    const pub = await Client.connect(url);
    for (const topic of ['alpha', 'beta', 'gamma']) for (let i = 0; i < 5; i++) await pub.request({ op: 'pub', topic, value: `${topic} ${i}` });
    // Garbage: more bad frames than the log takes per minute for one code.
    for (let i = 0; i < logLinesPerKindMax + 10; i++) await pub.request({ op: 'pub', topic: 'bad name!', value: 'x' });
    // A forged token, on the upgrade and over HTTP.
    const forged = await mintToken({ secret: 'not-the-server-secret-not-the-server-secret', acl: { pub: ['*'], sub: ['*'] } });
    assert.equal((await refusedUpgrade(`${srv.url}?token=${forged}`)).status, 401);
    assert.equal((await httpAs(forged, 'GET', `${srv.http}/v1/topics`)).status, 401);
    // An admin's topic life.
    assert.equal((await httpAs(admin, 'PUT', `${srv.http}/v1/topics/short-lived`, { partitions: 3 })).status, 201);
    assert.equal((await httpAs(admin, 'DELETE', `${srv.http}/v1/topics/short-lived`)).status, 200);

    // A subscriber that stops reading while 8 MB are published: it falls back to disk.
    const slow = await Client.connect(url);
    slow.decode = false;
    await slow.request({ op: 'sub', topic: 'alpha', from: 'latest' });
    (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    for (let i = 0; i < 32; i++) {
      const batch = encodeRecordBatch(Array.from({ length: 256 }, () => ({ value: Buffer.alloc(1000, i) })));
      pub.ws.send(produceFrame(10_000 + i, 'alpha', 0, batch));
    }
    await pub.until(() => pub.messages.filter((m) => m.id >= 10_000 && m.op === 'ack').length === 32, '32 acks');
    await waitLine(srv, (l) => /fell behind/.test(l.msg), 'the fallback');
    metricsText = (await httpAs(null, 'GET', `${srv.http}/metrics`)).text;
    metrics = samples(metricsText);
    slow.close();
    pub.close();
    await waitLine(srv, (l) => l.msg === 'ws connection closed' && l.code !== undefined, 'a close');
    await waitLine(srv, (l) => /^activity in the last/.test(l.msg) && (l.in as { records: number }).records > 0, 'a summary with traffic');
  });
  after(async () => {
    await srv?.stop();
  });

  test('connections opened and closed are logged at debug, with an id, the peer and why they closed', () => {
    const opened = lines(srv).filter((l) => l.msg === 'ws connection opened');
    assert.ok(opened.length >= 2);
    assert.equal(opened[0].level, 20);
    assert.match(String(opened[0].remote), /127\.0\.0\.1/);
    assert.equal(typeof opened[0].conn, 'number');
    const closed = lines(srv).find((l) => l.msg === 'ws connection closed');
    assert.ok(closed && typeof closed.lifetimeMs === 'number' && closed.level === 20);
  });

  test('topic create and delete are info lines', () => {
    const created = lines(srv).find((l) => l.msg === 'topic short-lived created with 3 partitions');
    assert.ok(created && created.level === 30 && created.topic === 'short-lived' && created.partitions === 3);
    assert.ok(lines(srv).some((l) => l.msg === 'topic alpha created with 1 partition'), 'auto-created topics too');
    assert.ok(lines(srv).some((l) => l.msg === 'topic short-lived deleted' && l.level === 30));
  });

  test('client errors carry their code, and a flood of one kind is cut at the per-minute limit and counted', () => {
    const errs = lines(srv).filter((l) => l.msg.startsWith('client error BAD_REQUEST'));
    assert.equal(errs.length, logLinesPerKindMax);
    assert.equal(errs[0].code, 'BAD_REQUEST');
    assert.equal(errs[0].front, 'ws');
    assert.match(errs[0].msg, /invalid topic name|topic/);
    assert.ok(lines(srv).some((l) => l.msg.startsWith('further "error BAD_REQUEST" lines are suppressed')));
    const summary = lines(srv).find((l) => /^activity in the last/.test(l.msg) && (l.suppressedLines as number) > 0);
    assert.ok(summary, 'the summary reports the suppressed lines');
  });

  test('refused tokens are logged with the reason, on the upgrade and over HTTP', () => {
    const refused = lines(srv).filter((l) => l.msg.startsWith('refused UNAUTHORIZED (BAD_SIGNATURE)'));
    assert.deepEqual(refused.map((l) => l.front).sort(), ['http', 'ws']);
    assert.equal(refused[0].reason, 'BAD_SIGNATURE');
  });

  test('a subscriber falling back to disk is an info line with its topic, partition and lag', () => {
    const fb = lines(srv).find((l) => /fell behind/.test(l.msg))!;
    assert.equal(fb.level, 30);
    assert.equal(fb.topic, 'alpha');
    assert.equal(fb.partition, 0);
    assert.equal(typeof fb.lag, 'number');
  });

  test('the periodic summary is one line with counts a person can read', () => {
    const s = lines(srv).find((l) => /^activity in the last/.test(l.msg) && (l.in as { records: number }).records > 0)!;
    assert.match(s.msg, /WebSocket connection.*subscription.*in \d+ records \([\d.]+\/s, [\d.]+ MB\), out \d+ records/);
    assert.match(s.msg, /errors: .*BAD_REQUEST \d+/);
    assert.equal(typeof s.topics, 'number');
  });

  test('/metrics: errors by code, refusals by reason, per-topic traffic with a bounded topic label, lag, build info', () => {
    const errors = metrics.get('sluice_errors_total') ?? [];
    assert.ok(errors.some((e) => e.labels === '{front="ws",code="BAD_REQUEST"}' && e.value >= logLinesPerKindMax + 10), JSON.stringify(errors));
    assert.ok(errors.some((e) => e.labels === '{front="http",code="UNAUTHORIZED"}' && e.value === 1));
    const refused = metrics.get('sluice_auth_refused_total') ?? [];
    assert.ok(refused.some((e) => e.labels === '{front="ws",reason="BAD_SIGNATURE"}' && e.value === 1), JSON.stringify(refused));
    const recordsIn = new Map((metrics.get('sluice_topic_records_in_total') ?? []).map((e) => [e.labels, e.value]));
    assert.equal(recordsIn.get('{topic="alpha"}'), 5 + 32 * 256);
    assert.equal(recordsIn.get('{topic="beta"}'), 5);
    assert.equal(recordsIn.get('{topic="_other"}'), 5, 'gamma is beyond --metrics-topics-max 2');
    assert.equal(recordsIn.size, 3);
    assert.ok((metrics.get('sluice_topic_records_out_total') ?? []).some((e) => e.labels === '{topic="alpha"}'));
    const bytes = (metrics.get('sluice_partition_bytes') ?? []).map((e) => e.labels);
    assert.ok(bytes.includes('{topic="_other",partition="_all"}'), bytes.join());
    assert.ok(!bytes.some((b) => b.includes('gamma')));
    const lag = metrics.get('sluice_subscriber_lag_records') ?? [];
    assert.ok(lag.some((e) => e.labels === '{topic="alpha",partition="0"}' && e.value > 0), JSON.stringify(lag));
    const { version } = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
    const build = metrics.get('sluice_build_info') ?? [];
    assert.equal(build.length, 1);
    assert.match(build[0].labels, new RegExp(`^\\{version="${version.replaceAll('.', '\\.')}",commit="([0-9a-f]{12}|unknown)",node="${process.version.replaceAll('.', '\\.')}"\\}$`));
    assert.ok((metrics.get('sluice_connections_opened_total') ?? []).some((e) => e.labels === '{front="ws"}' && e.value >= 2));
    for (const name of ['sluice_replay_bytes_total', 'sluice_replay_in_flight', 'sluice_replay_connections', 'sluice_subscriptions_waiting']) assert.ok(metricsText.includes(`# TYPE ${name} `), name);
  });

  test('docs/operations.md and the Grafana dashboard name only metrics that exist, and the doc names every sluice metric', () => {
    const doc = fs.readFileSync(path.join(root, 'docs/operations.md'), 'utf8');
    const dashboard = JSON.parse(fs.readFileSync(path.join(root, 'docs/grafana-dashboard.json'), 'utf8')) as { panels: { title: string; targets?: { expr: string }[] }[] };
    const exposed = new Set([...metricsText.matchAll(/^# TYPE (sluice_[a-z_]+) (\w+)/gm)].flatMap((m) => (m[2] === 'histogram' ? [m[1], `${m[1]}_bucket`, `${m[1]}_sum`, `${m[1]}_count`] : [m[1]])));
    const own = [...metricsText.matchAll(/^# TYPE (sluice_[a-z_]+) /gm)].map((m) => m[1]).filter((n) => !/^sluice_(process|nodejs)_/.test(n));
    for (const name of own) assert.ok(doc.includes(`\`${name}\``), `docs/operations.md names ${name}`);
    for (const name of new Set([...doc.matchAll(/`(sluice_[a-z_]+)`/g)].map((m) => m[1]))) assert.ok(exposed.has(name), `docs/operations.md names ${name}, which /metrics does not have`);
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    assert.ok(exprs.length >= 8, 'a dashboard with panels');
    for (const expr of exprs) for (const m of expr.matchAll(/\b(sluice_[a-z_]+)/g)) assert.ok(exposed.has(m[1]), `the dashboard queries ${m[1]}, which /metrics does not have (${expr})`);
  });
});

test('retention deleting segments is an info line (the engine logs it)', async () => {
  const dir = tempDir('sluice-retention-log-');
  const chunks: string[] = [];
  const logger = pino({ level: 'info' }, new Writable({ write: (c, _e, cb) => (chunks.push(String(c)), cb()) }));
  const log = await LogManager.open({ dataDir: dir, flush: 'never', segmentBytes: 64 * 1024, retentionBytes: 64 * 1024, retentionCheckMs: 0, logger });
  try {
    await log.createTopic('kept-short', { partitions: 1 });
    const p = log.partition('kept-short', 0);
    for (let i = 0; i < 40; i++) await p.append(encodeRecordBatch(Array.from({ length: 10 }, () => ({ value: Buffer.alloc(1000, i) }))));
    log.enforceRetention();
    const line = chunks.map((c) => JSON.parse(c) as Line).find((l) => l.msg === 'retention deleted segments');
    assert.ok(line, chunks.join(''));
    assert.equal(line.level, 30);
    assert.equal(line.topic, 'kept-short');
    assert.ok((line.deleted as number) > 0);
  } finally {
    await log.close();
  }
});
