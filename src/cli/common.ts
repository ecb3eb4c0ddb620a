/**
 * What the everyday subcommands share (wire contract §7): the common flags, their parsing,
 * output that behaves in a pipe (stdout carries data only; messages go to stderr; EPIPE ends
 * quietly), and exit codes: 0 done, 1 failed (the error's code on stderr), 2 bad usage.
 */
import type { Command } from 'commander';
import { SluiceError } from '../../engine/errors.ts';
import { installNativeCodecs } from '../../engine/native-codecs.ts';
import type { From } from '../client/index.ts';
import { type RecordLike, recordToJson } from '../common/record-json.ts';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

export class UsageError extends Error {}

export interface CommonFlags {
  url: string;
  replayUrl: string;
  topic?: string;
  partition?: string;
  from?: string;
  limit?: string;
  follow?: boolean;
  token?: string;
  json?: boolean;
}

export function addUrl(cmd: Command): Command {
  return cmd
    .option('-u, --url <urls>', 'server WebSocket/HTTP address, or several separated by commas (cluster nodes, tried in order) ($SLUICE_URL)', process.env.SLUICE_URL ?? 'ws://127.0.0.1:8080')
    .option('--token <jwt>', 'token, when the server has auth on ($SLUICE_TOKEN)', process.env.SLUICE_TOKEN);
}

export function addTopic(cmd: Command, partitionHelp = 'one partition (default: all)'): Command {
  return cmd.requiredOption('-t, --topic <topic>', 'topic name').option('-p, --partition <n>', partitionHelp);
}


export function int(value: string | undefined, name: string, min = 0): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min || !Number.isSafeInteger(Number(value))) throw new UsageError(`--${name} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
  return Number(value);
}

/** `earliest`, `latest`, an offset, or `time:MS` / an ISO date for the first record at or after it. */
export function parseFrom(value: string | undefined, dflt: From): From {
  if (value === undefined) return dflt;
  if (value === 'earliest' || value === 'latest') return value;
  if (/^\d+$/.test(value)) return { offset: Number(value) };
  const t = value.startsWith('time:') ? Number(value.slice(5)) : Date.parse(value);
  if (Number.isFinite(t)) return { time: t };
  throw new UsageError(`--from must be earliest, latest, an offset, time:MS or an ISO date, got ${JSON.stringify(value)}`);
}

/**
 * `--url`: one address or a comma-separated list (the nodes of a cluster): the SDK tries them
 * in order and moves to the next when a connection is lost; HTTP calls go to the first that
 * answers.
 */
export function parseUrls(value: string): string[] {
  const urls = value
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u !== '');
  if (urls.length === 0) throw new UsageError('--url needs an address, e.g. ws://127.0.0.1:8080');
  for (const u of urls) {
    let scheme: string;
    try {
      scheme = new URL(u).protocol;
    } catch {
      throw new UsageError(`--url ${JSON.stringify(u)} is not a URL: give ws://host:port (or wss://, http://, https://), several separated by commas`);
    }
    if (!['ws:', 'wss:', 'http:', 'https:'].includes(scheme)) throw new UsageError(`--url ${JSON.stringify(u)}: the scheme must be ws, wss, http or https`);
  }
  return urls;
}

/** `ws://h:p` → `http://h:p` (the HTTP API lives on the same port). */
export function httpBase(url: string): string {
  const u = new URL(url);
  u.protocol = u.protocol === 'wss:' || u.protocol === 'https:' ? 'https:' : 'http:';
  u.pathname = '';
  u.search = '';
  return u.toString().replace(/\/$/, '');
}

let stdoutClosed = false;

/** True once the reader of stdout went away (EPIPE): stop producing output. */
export function stdoutGone(): boolean {
  return stdoutClosed;
}

/** Writes to stdout; resolves when it may take more (backpressure). */
export function out(text: string | Uint8Array): Promise<void> | void {
  if (stdoutClosed) return;
  if (!process.stdout.write(text)) return new Promise((resolve) => process.stdout.once('drain', resolve));
}

export function warn(message: string): void {
  process.stderr.write(`sluice: ${message}\n`);
}

/**
 * Runs a subcommand's body with the shared behaviour: native codecs, EPIPE handling, and the
 * exit code from what it threw.
 */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<number | void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    installNativeCodecs();
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') {
        stdoutClosed = true;
        process.exit(EXIT_OK);
      }
      throw err;
    });
    let code: number;
    try {
      code = (await fn(...args)) ?? EXIT_OK;
    } catch (err) {
      if (err instanceof UsageError) {
        warn(err.message);
        code = EXIT_USAGE;
      } else if (err instanceof SluiceError) {
        warn(`${err.code}${err.reason !== err.code ? ` (${err.reason})` : ''}: ${err.message}`);
        code = EXIT_FAILED;
      } else {
        warn((err as Error).message ?? String(err));
        code = EXIT_FAILED;
      }
    }
    // Pipes and files are written synchronously on Linux; a TTY may still hold output.
    if (process.stdout.writableLength > 0) await new Promise((r) => process.stdout.once('drain', r));
    process.exit(code);
  };
}

/** One JSON line for a record (the shape `consume --json`, `replay --json` and `dump --json` share with the HTTP API). */
export function recordJson(r: RecordLike): string {
  return JSON.stringify(recordToJson(r));
}

const lossy = new TextDecoder();

/** The text line for a record: its value as UTF-8 (newlines kept as they are, like kcat). */
export function recordText(r: RecordLike): string {
  return r.value === null ? '' : lossy.decode(r.value);
}
