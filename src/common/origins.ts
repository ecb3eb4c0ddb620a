/**
 * Browser origins (RFC 6454: `scheme://host[:port]`), as `--cors-origins` and
 * `--allowed-origins` list them: which web pages may call the HTTP API from another origin
 * (CORS) and which may open a WebSocket (the upgrade's `Origin` header).
 *
 * A list entry is `*` (any origin), an exact origin (`https://app.example.com`,
 * `http://localhost:3000`), or an origin whose leftmost host label is `*`
 * (`https://*.example.com`: any subdomain of example.com, not example.com itself). Default
 * ports are dropped before comparing (`https://a.example:443` is `https://a.example`), as
 * browsers send them. Parsing refuses anything else with the entry and the rule it broke.
 */

export interface OriginRule {
  /** The entry as configured, for messages. */
  readonly text: string;
  readonly any: boolean;
  readonly scheme: string;
  /** The host without its `*.` label when `wildcard`. */
  readonly host: string;
  /** '' for the scheme's default port. */
  readonly port: string;
  readonly wildcard: boolean;
}

const DEFAULT_PORTS: Record<string, string> = { 'http:': '80', 'https:': '443' };

/** Why `entry` is not an origin rule, or null when it is one. */
function ruleOrProblem(entry: string): OriginRule | string {
  if (entry === '*') return { text: entry, any: true, scheme: '', host: '', port: '', wildcard: false };
  const m = /^([a-z][a-z0-9+.-]*):\/\/(\*\.)?([^/:?#]+)(?::(\d{1,5}))?$/i.exec(entry);
  if (!m) return 'expected * or an origin like https://app.example.com (scheme://host[:port], no path, no trailing slash)';
  const scheme = `${m[1].toLowerCase()}:`;
  if (scheme !== 'http:' && scheme !== 'https:') return `the scheme must be http or https, not ${m[1]}`;
  const host = m[3].toLowerCase();
  if (host.includes('*')) return 'a * may only be the whole leftmost label (https://*.example.com)';
  if (m[4] !== undefined && Number(m[4]) > 65535) return `port ${m[4]} is above 65535`;
  const port = m[4] === undefined || m[4] === DEFAULT_PORTS[scheme] ? '' : String(Number(m[4]));
  return { text: entry, any: false, scheme, host, port, wildcard: m[2] !== undefined };
}

/** The entries of a comma-separated list (or an array, from a config file), trimmed, empty ones dropped. */
export function originList(value: string | string[]): string[] {
  const items = Array.isArray(value) ? value : value.split(',');
  return items.map((s) => s.trim()).filter((s) => s.length > 0);
}

/** Parses a list; throws an Error naming every bad entry. */
export function parseOrigins(entries: string[]): OriginRule[] {
  const rules: OriginRule[] = [];
  const problems: string[] = [];
  for (const e of entries) {
    const r = ruleOrProblem(e);
    if (typeof r === 'string') problems.push(`${JSON.stringify(e)}: ${r}`);
    else rules.push(r);
  }
  if (problems.length > 0) throw new Error(problems.join('; '));
  return rules;
}

/** The problem with a list, or null: for the config schema. */
export function originsProblem(entries: string[]): string | null {
  try {
    parseOrigins(entries);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/** `Origin` header → its parts, or null when it is not a serialized http(s) origin (`null`, a path, garbage). */
function parseHeader(origin: string): { scheme: string; host: string; port: string } | null {
  if (!/^https?:\/\/[^/?#@\s]+$/i.test(origin)) return null;
  let u: URL;
  try {
    u = new URL(origin);
  } catch {
    return null;
  }
  // URL drops a default port (port '' then), as the rules do.
  return { scheme: u.protocol, host: u.hostname.toLowerCase(), port: u.port };
}

/** Whether an `Origin` header value matches one of the rules. */
export function originAllowed(rules: readonly OriginRule[], origin: string): boolean {
  if (rules.some((r) => r.any)) return true;
  const o = parseHeader(origin);
  if (!o) return false;
  return rules.some((r) => {
    if (r.scheme !== o.scheme || r.port !== o.port) return false;
    return r.wildcard ? o.host.endsWith(`.${r.host}`) : o.host === r.host;
  });
}

/**
 * Whether the `Origin` is the server's own (the page it serves at `/`): same scheme-less
 * host and port as the request's `Host` header. A browser sets both, so a page elsewhere
 * cannot pass for this one.
 */
export function sameOrigin(origin: string, hostHeader: string): boolean {
  const o = parseHeader(origin);
  if (!o || !hostHeader) return false;
  const host = hostHeader.toLowerCase();
  const withPort = o.port ? `${o.host}:${o.port}` : o.host;
  // A Host header carries the default port only when the client put it there.
  return host === withPort || host === `${o.host}:${DEFAULT_PORTS[o.scheme]}`;
}
