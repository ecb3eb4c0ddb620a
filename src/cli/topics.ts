/**
 * `sluice topics [list|create|describe|delete]` over the HTTP API (wire contract §5), on the
 * same address as --url. Text is a table for people; --json prints the API's answer.
 */
import type { Command } from 'commander';
import { type ErrorCode, SluiceError } from '../../engine/errors.ts';
import type { TopicInfo as EngineTopicInfo } from '../../engine/index.ts';
import { type CommonFlags, action, addUrl, httpBase, int, out, parseUrls } from './common.ts';

/** What GET /v1/topics/{t} answers (the engine's description of the topic). */
type TopicInfo = Pick<EngineTopicInfo, 'name' | 'partitions'>;

async function api(flags: CommonFlags, method: string, path: string, body?: unknown): Promise<unknown> {
  const headers: Record<string, string> = {};
  if (flags.token) headers.authorization = `Bearer ${flags.token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  // The first node that answers (several in a cluster; any of them serves every topic).
  let res: Response | null = null;
  const unreachable: string[] = [];
  for (const url of parseUrls(flags.url)) {
    try {
      res = await fetch(`${httpBase(url)}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      break;
    } catch (err) {
      unreachable.push(`${httpBase(url)}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`);
    }
  }
  if (!res) throw new SluiceError('UNAVAILABLE', `cannot reach ${unreachable.join('; ')}`);
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: reported below
  }
  if (!res.ok) {
    const e = (parsed ?? {}) as { code?: string; message?: string };
    throw new SluiceError((e.code as ErrorCode) ?? 'INTERNAL', e.message ?? `HTTP ${res.status}`, res.status === 409 ? 'TOPIC_EXISTS' : undefined);
  }
  return parsed;
}

function table(topics: TopicInfo[]): string {
  const rows = [['TOPIC', 'PARTITION', 'START', 'HW', 'BYTES', 'SEGMENTS', 'EPOCH']];
  for (const t of topics) for (const p of t.partitions) rows.push([t.name, String(p.partition), String(p.start), String(p.hw), String(p.bytes), String(p.segments), p.epoch]);
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(w[i])).join('  ').trimEnd()).join('\n') + '\n';
}

function enc(topic: string): string {
  return encodeURIComponent(topic);
}

export function registerTopics(program: Command): void {
  const topics = program.command('topics').description('list, create, describe and delete topics');
  const common = (c: Command): Command => addUrl(c).option('--json', 'print the API answer as JSON');

  common(topics.command('list', { isDefault: true }).description('list the topics with their partitions')).action(
    action(async (flags: CommonFlags) => {
      const r = (await api(flags, 'GET', '/v1/topics')) as { topics: TopicInfo[] };
      await out(flags.json ? `${JSON.stringify(r)}\n` : table(r.topics));
    }),
  );
  common(topics.command('describe').argument('<topic>').description('partitions of a topic: epoch, start, hw, bytes, segments')).action(
    action(async (topic: string, flags: CommonFlags) => {
      const r = (await api(flags, 'GET', `/v1/topics/${enc(topic)}`)) as TopicInfo;
      await out(flags.json ? `${JSON.stringify(r)}\n` : table([r]));
    }),
  );
  common(topics.command('create').argument('<topic>').description('create a topic'))
    .option('--partitions <n>', 'partition count (default: the server\'s --partitions)')
    .option('--retention-ms <ms>', 'delete segments older than this')
    .option('--retention-bytes <bytes>', 'keep at most this many bytes per partition')
    .action(
      action(async (topic: string, flags: CommonFlags & { partitions?: string; retentionMs?: string; retentionBytes?: string }) => {
        const body: Record<string, number> = {};
        const partitions = int(flags.partitions, 'partitions', 1);
        if (partitions !== undefined) body.partitions = partitions;
        const retentionMs = int(flags.retentionMs, 'retention-ms');
        if (retentionMs !== undefined) body.retentionMs = retentionMs;
        const retentionBytes = int(flags.retentionBytes, 'retention-bytes');
        if (retentionBytes !== undefined) body.retentionBytes = retentionBytes;
        const r = (await api(flags, 'PUT', `/v1/topics/${enc(topic)}`, body)) as TopicInfo;
        await out(flags.json ? `${JSON.stringify(r)}\n` : table([r]));
      }),
    );
  common(topics.command('delete').argument('<topic>').description('delete a topic and its files')).action(
    action(async (topic: string, flags: CommonFlags) => {
      const r = await api(flags, 'DELETE', `/v1/topics/${enc(topic)}`);
      if (flags.json) await out(`${JSON.stringify(r)}\n`);
    }),
  );
}
