/**
 * Which browser pages may use this server from another origin (docs/security.md, "Browsers
 * and origins"):
 *
 * - `--cors-origins` (HTTP API, the page's files, /metrics, /healthz): a request whose `Origin`
 *   is listed gets `Access-Control-Allow-Origin` naming it (or `*` when the list is `*`), and
 *   a preflight `OPTIONS` is answered 204 with the methods and headers the API takes. An
 *   unlisted origin gets no CORS header, so the browser withholds the answer from the page;
 *   its preflight is answered 403 `FORBIDDEN`. Empty (the default): no CORS at all. sluice
 *   uses no cookies (tokens travel in `Authorization`), so credentials are never allowed.
 * - `--allowed-origins` (WebSocket upgrade): a browser sends `Origin` with every upgrade, and
 *   an origin not listed is refused with HTTP 403 `FORBIDDEN` before any token is checked.
 *   The server's own origin (its live page) is always allowed, and an upgrade without
 *   `Origin` (a non-browser client: the SDK in Node, the CLI) is not a page, so it is not
 *   checked. Empty (the default): every origin may connect.
 */
import type { OriginRule } from '../common/origins.ts';
import { originAllowed, parseOrigins, sameOrigin } from '../common/origins.ts';

/** How long a browser may cache a preflight answer, in seconds. */
export const preflightMaxAgeSeconds = 600;
export const corsAllowMethods = 'GET, POST, PUT, DELETE';
export const corsAllowHeaders = 'authorization, content-type';

export class OriginPolicy {
  private readonly cors: OriginRule[];
  private readonly upgrades: OriginRule[];

  constructor(corsOrigins: string[], allowedOrigins: string[]) {
    this.cors = parseOrigins(corsOrigins);
    this.upgrades = parseOrigins(allowedOrigins);
  }

  /** The `Access-Control-Allow-Origin` for a request with this `Origin` ('' when it has none), or null for no CORS header. */
  allowOrigin(origin: string): string | null {
    if (!origin || this.cors.length === 0) return null;
    if (this.cors.some((r) => r.any)) return '*';
    return originAllowed(this.cors, origin) ? origin : null;
  }

  /** Whether a WebSocket upgrade with this `Origin` ('' when none) and `Host` may go on. */
  upgradeAllowed(origin: string, host: string): boolean {
    if (!origin || this.upgrades.length === 0) return true;
    return sameOrigin(origin, host) || originAllowed(this.upgrades, origin);
  }

  get corsEnabled(): boolean {
    return this.cors.length > 0;
  }
}
