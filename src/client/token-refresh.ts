/**
 * Keeps a connection's token fresh: before the token's `exp`, asks the app's `getToken()`
 * for a new one and hands it to the server with the `auth` op ("replaces the connection's
 * token (refresh before expiry)"), so the connection is never dropped for an expired token
 * while the app can give fresh ones.
 *
 * When: `leadMs` before `exp`, but no earlier than half way through the time left, so that a
 * short-lived token is not refreshed in a loop; and never sooner than `delayMinMs` after the
 * last try. A refresh that fails (getToken throws, or the server refuses the new token) is
 * reported and tried again with full-jitter backoff while the connection lasts; if none
 * succeeds, the server closes the connection at expiry (4001) and the client reconnects
 * with a token from getToken().
 *
 * The token is read, not verified: only the server can verify it.
 */
import { Backoff } from './backoff.ts';

export interface TokenRefreshHooks {
  getToken(): Promise<string>;
  /** Sends the `auth` op on the current connection; resolves on `authed`. */
  authenticate(token: string): Promise<void>;
  reportError(err: unknown): void;
}

/** The earliest a refresh runs after the previous try, in ms: a token that is always already expired is not refreshed in a loop. */
export const tokenRefreshDelayMinMs = 1000;

/** `exp` of a JWT, in ms since the epoch, or null when it has none or is not a JWT. */
export function tokenExpiryMs(token: string): number | null {
  const part = token.split('.')[1];
  if (!part) return null;
  try {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4))) as { exp?: unknown };
    return typeof claims.exp === 'number' && Number.isFinite(claims.exp) ? claims.exp * 1000 : null;
  } catch {
    return null;
  }
}

/** How long to wait before refreshing a token that expires at `expMs`. */
export function refreshDelayMs(expMs: number, nowMs: number, leadMs: number): number {
  const left = expMs - nowMs;
  return Math.max(tokenRefreshDelayMinMs, left - Math.min(leadMs, left / 2));
}

export class TokenRefresh {
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** Bumped by stop(): a refresh that finishes for an older run does nothing more. */
  private run = 0;
  private readonly retry = new Backoff({ baseMs: 1000, maxMs: 30_000 });

  constructor(
    private readonly hooks: TokenRefreshHooks,
    private readonly leadMs: number,
  ) {}

  /** A connection opened with `token`: refresh it before it expires (nothing to do without `exp`). */
  start(token: string): void {
    this.stop();
    this.retry.reset();
    this.schedule(token, this.run);
  }

  stop(): void {
    this.run++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(token: string, run: number): void {
    const exp = tokenExpiryMs(token);
    if (exp === null) return;
    this.timer = setTimeout(() => void this.refresh(run), refreshDelayMs(exp, Date.now(), this.leadMs));
  }

  private async refresh(run: number): Promise<void> {
    this.timer = null;
    let fresh: string;
    try {
      fresh = await this.hooks.getToken();
      if (run !== this.run) return;
      await this.hooks.authenticate(fresh);
    } catch (err) {
      if (run !== this.run) return;
      this.hooks.reportError(err);
      this.timer = setTimeout(() => void this.refresh(run), Math.max(tokenRefreshDelayMinMs, this.retry.next()));
      return;
    }
    if (run !== this.run) return;
    this.retry.reset();
    this.schedule(fresh, run);
  }
}
