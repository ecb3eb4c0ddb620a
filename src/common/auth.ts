/**
 * Authentication for every front (gateway, replay): JWT verification with `jose`, the
 * principal a connection acts as, and the checks the fronts make before each action.
 * Wire contract §6:
 *
 *   "JWT (HS256 with a shared secret, or RS256/ES256 with a public key as a PEM or JWKS
 *   file). Claims: `exp` (checked with 30 s leeway; a token without it does not expire),
 *   `nbf`, and `acl`."
 *
 * What is pinned, and why:
 *   - The algorithms come from the configured key, never from the token: a shared secret
 *     accepts HS256 only; an RSA key RS256 only; an EC P-256 key ES256 only. So `alg: none`
 *     and the HS256-signed-with-the-public-key confusion are refused before any signature
 *     work (jose's `algorithms` option), and a JWKS may not hold symmetric or private keys.
 *   - The 30 s leeway (`clockToleranceSec`) applies to `exp` and `nbf` alike, as jose's
 *     `clockTolerance` does: it absorbs clock skew between the token's minter and sluice.
 *     A connection is closed when its token would no longer verify, i.e. at exp + leeway
 *     (`msUntilExpiry`), so that "verifies now" and "connection still open" never disagree.
 *   - Key files are read and checked once, at startup (`createAuth`), and any problem is a
 *     ConfigError naming the file; nothing is read again per token.
 *
 * Every rejection is a SluiceError with code UNAUTHORIZED (bad token) or FORBIDDEN (good
 * token, wrong ACL) and a `reason` (TOKEN_MISSING, TOKEN_MALFORMED, TOKEN_TOO_LONG,
 * TOKEN_AMBIGUOUS, TOKEN_EXPIRED, TOKEN_NOT_YET_VALID, BAD_SIGNATURE, ALG_NOT_ALLOWED,
 * UNKNOWN_KEY, BAD_CLAIMS, BAD_ACL, ACL_DENIED) for logs and tests. Messages say what is
 * wrong with the token, never anything about the key.
 */
import { decodeProtectedHeader, errors as joseErrors, jwtVerify } from 'jose';
import { type ReasonOf, SluiceError } from '../../engine/errors.ts';
import { type Acl, type AclAction, aclAllows, parseAcl } from './acl.ts';
import { type Algorithm, type LoadedKey, type VerifyKey, loadPublicKeyFile, loadSecret } from './auth-keys.ts';
import { ConfigError } from './config.ts';

export type { Acl, AclAction } from './acl.ts';
export { aclPatternsMax, isValidAclPattern } from './acl.ts';
export { type Algorithm, algorithmForKey, keyFileBytesMax, rsaModulusBitsMin } from './auth-keys.ts';

/** Leeway on `exp` and `nbf`, in seconds (wire contract §6). */
export const clockToleranceSec = 30;
export const clockToleranceMs = clockToleranceSec * 1000;
/** A token longer than this is refused unread: a bound on the work an unauthenticated peer can cause. */
export const tokenLengthMax = 16 * 1024;
/** Node's setTimeout fires at once for larger delays, so longer waits are taken in steps. */
const timerDelayMsMax = 2 ** 31 - 1;

/** The part of the server config auth reads. */
export interface AuthConfig {
  authSecret?: string;
  authPublicKey?: string;
}

/** Who a connection acts as: what its verified token says. Immutable. */
export interface Principal {
  /** The token's `sub` claim, when it is a string: for logs, never for decisions. */
  readonly subject?: string;
  /** The token's `exp` in ms since the epoch (without leeway), or null: it does not expire. */
  readonly expiresAt: number | null;
  readonly acl: Readonly<Acl>;
}

export interface Auth {
  /** The algorithms a token may use: fixed by the configured key. */
  readonly algorithms: readonly Algorithm[];
  /** What the key is, for the startup log, e.g. `JWKS file keys.json (2 keys: RS256, ES256)`. */
  readonly description: string;
  /** Weak settings worth a log line at startup (e.g. a short HS256 secret). */
  readonly warnings: readonly string[];
  /**
   * Verifies a token: signature, algorithm, `exp`/`nbf` with leeway, the `acl` claim.
   * Rejects with SluiceError('UNAUTHORIZED') and a message saying what is wrong.
   * `now` (ms) is for tests.
   */
  verify(token: string, now?: number): Promise<Principal>;
}

function unauthorized(message: string, reason: ReasonOf<'UNAUTHORIZED'>): SluiceError {
  return new SluiceError('UNAUTHORIZED', message, reason);
}

// ---------------------------------------------------------------------------------------
// Verification

/**
 * Builds the verifier from the config, or returns null when no key is configured (auth
 * off: every action is allowed, see `can`). Reads and checks key files now, once, and
 * throws ConfigError naming the file for one that is unreadable or not a usable key.
 */
export function createAuth(config: AuthConfig): Auth | null {
  if (config.authSecret && config.authPublicKey) throw new ConfigError('give --auth-secret or --auth-public-key, not both');
  let loaded: LoadedKey;
  if (config.authSecret) loaded = loadSecret(config.authSecret);
  else if (config.authPublicKey) loaded = loadPublicKeyFile(config.authPublicKey);
  else return null;
  const { key, algorithms, description, warnings } = loaded;
  return Object.freeze({
    algorithms: Object.freeze([...algorithms]),
    description,
    warnings: Object.freeze([...warnings]),
    verify: (token: string, now: number = Date.now()) => verifyToken(key, algorithms, token, now),
  });
}

async function verifyToken(key: VerifyKey, algorithms: Algorithm[], token: string, now: number): Promise<Principal> {
  if (typeof token !== 'string') throw unauthorized('token must be a string', 'TOKEN_MALFORMED');
  if (token.length === 0) throw unauthorized('missing token', 'TOKEN_MISSING');
  if (token.length > tokenLengthMax) throw unauthorized(`token is ${token.length} characters, more than ${tokenLengthMax}`, 'TOKEN_TOO_LONG');
  let payload: Record<string, unknown>;
  try {
    // The overloads of jwtVerify differ for a key and a key resolver; both are handled alike.
    const result = await jwtVerify(token, key as Parameters<typeof jwtVerify>[1], {
      algorithms,
      clockTolerance: clockToleranceSec,
      currentDate: new Date(now),
    });
    payload = result.payload;
  } catch (err) {
    throw translateJoseError(err, token, algorithms);
  }
  const acl = parseAcl(payload.acl);
  const exp = payload.exp;
  return Object.freeze({
    ...(typeof payload.sub === 'string' ? { subject: payload.sub } : {}),
    expiresAt: typeof exp === 'number' ? exp * 1000 : null,
    // Frozen through: `can` caches a compiled form of the ACL object.
    acl: Object.freeze({ ...acl, pub: Object.freeze(acl.pub), sub: Object.freeze(acl.sub) }),
  });
}

/** jose's errors as UNAUTHORIZED with a message a client can act on. Anything unexpected fails closed. */
function translateJoseError(err: unknown, token: string, algorithms: readonly Algorithm[]): SluiceError {
  // The header is unauthenticated: quoted back to help the client, never trusted.
  let header: { alg?: unknown; kid?: unknown } = {};
  try {
    header = decodeProtectedHeader(token);
  } catch {}
  const quote = (v: unknown): string => JSON.stringify(String(v).slice(0, 64));
  // A date claim far out of range (nbf: 1e15) has no ISO form: toISOString would throw.
  const when = (sec: unknown): string | null => (typeof sec === 'number' && Math.abs(sec) <= 8.64e12 ? new Date(sec * 1000).toISOString() : null);
  if (err instanceof joseErrors.JWTExpired) {
    const at = when(err.payload.exp);
    return unauthorized(`token expired${at ? ` at ${at}` : ''}`, 'TOKEN_EXPIRED');
  }
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf') {
      const at = when(err.payload.nbf);
      return unauthorized(`token is not valid ${at ? `before ${at}` : 'yet'} (nbf)`, 'TOKEN_NOT_YET_VALID');
    }
    return unauthorized(`token has a bad "${err.claim}" claim: ${err.reason}`, 'BAD_CLAIMS');
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return unauthorized('token signature does not verify', 'BAD_SIGNATURE');
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return unauthorized(`token algorithm ${quote(header.alg)} is not accepted; this server accepts ${algorithms.join(', ')}`, 'ALG_NOT_ALLOWED');
  if (err instanceof joseErrors.JWKSNoMatchingKey) return unauthorized(`no configured key matches the token (kid ${header.kid === undefined ? 'absent' : quote(header.kid)}, alg ${quote(header.alg)})`, 'UNKNOWN_KEY');
  if (err instanceof joseErrors.JWKSMultipleMatchingKeys) return unauthorized('token has no kid and several configured keys could match; sign it with a kid', 'UNKNOWN_KEY');
  if (err instanceof joseErrors.JOSENotSupported) return unauthorized(`token uses an unsupported feature: ${err.message}`, 'ALG_NOT_ALLOWED');
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid) return unauthorized(`malformed token: ${err.message}`, 'TOKEN_MALFORMED');
  if (err instanceof joseErrors.JOSEError) return unauthorized(`invalid token: ${err.message}`, 'TOKEN_MALFORMED');
  return unauthorized('token could not be verified', 'TOKEN_MALFORMED');
}

/**
 * The principal for a connection or request, or null when auth is off (`auth` null).
 * With auth on, a missing token is UNAUTHORIZED (TOKEN_MISSING).
 * Use: `const principal = await authenticate(auth, tokenFromRequest({ query, authorization }))`.
 */
export async function authenticate(auth: Auth | null, token: string | null | undefined, now?: number): Promise<Principal | null> {
  if (auth === null) return null;
  if (token === null || token === undefined || token === '') throw unauthorized('missing token: give ?token=JWT or an Authorization: Bearer header', 'TOKEN_MISSING');
  return auth.verify(token, now);
}

// ---------------------------------------------------------------------------------------
// Authorization

/**
 * Whether a principal may act: `pub`/`sub` on a topic, or `admin` (create/delete topics).
 * A null principal means auth is off: everything is allowed.
 */
export function can(principal: Principal | null, action: 'admin'): boolean;
export function can(principal: Principal | null, action: 'pub' | 'sub', topic: string): boolean;
export function can(principal: Principal | null, action: AclAction, topic?: string): boolean;
export function can(principal: Principal | null, action: AclAction, topic?: string): boolean {
  if (principal === null) return true;
  return aclAllows(principal.acl, action, topic);
}

/**
 * `can`, as a check that throws SluiceError('FORBIDDEN', reason ACL_DENIED) for the answer
 * to the request. "A token without the right pattern gets FORBIDDEN and nothing else happens."
 */
export function authorize(principal: Principal | null, action: 'admin'): void;
export function authorize(principal: Principal | null, action: 'pub' | 'sub', topic: string): void;
export function authorize(principal: Principal | null, action: AclAction, topic?: string): void;
export function authorize(principal: Principal | null, action: AclAction, topic?: string): void {
  if (can(principal, action, topic)) return;
  throw forbidden(action, topic);
}

/** The FORBIDDEN a request gets for an action its token does not allow. */
export function forbidden(action: AclAction, topic?: string): SluiceError<'FORBIDDEN'> {
  const what = action === 'admin' ? 'admin (create or delete topics)' : `${action} on topic ${JSON.stringify(topic)}`;
  return new SluiceError('FORBIDDEN', `token does not allow ${what}`, 'ACL_DENIED');
}

// ---------------------------------------------------------------------------------------
// Tokens on requests

export interface TokenSources {
  /** The query string, with or without its `?` (uWS `req.getQuery()`), or parsed params. */
  query?: string | URLSearchParams | null;
  /** The Authorization header value; '' counts as absent (uWS `req.getHeader()`). */
  authorization?: string | null;
}

// RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token, b64token = 1*( ALPHA / DIGIT /
// "-" / "." / "_" / "~" / "+" / "/" ) *"="; the scheme is case-insensitive (RFC 7235 §2.1).
const BEARER_RE = /^bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/**
 * The token of an HTTP request or WebSocket upgrade: `?token=JWT` or `Authorization:
 * Bearer JWT` (wire contract §3), or null when there is none. Browsers cannot set headers
 * on a WebSocket, hence the query. The same token given both ways is fine; two different
 * tokens are refused (UNAUTHORIZED, TOKEN_AMBIGUOUS) rather than guessing which one counts
 * (RFC 6750 §2: "Clients MUST NOT use more than one method to transmit the token in each
 * request"). A Bearer header that is not a token is TOKEN_MALFORMED; another scheme
 * (e.g. Basic, meant for a proxy) is ignored.
 */
export function tokenFromRequest(sources: TokenSources): string | null {
  const found = new Set<string>();
  const { query, authorization } = sources;
  if (query) {
    const params = typeof query === 'string' ? new URLSearchParams(query) : query;
    for (const t of params.getAll('token')) if (t !== '') found.add(t);
  }
  if (authorization) {
    const header = authorization.trim();
    if (/^bearer(\s|$)/i.test(header)) {
      const m = BEARER_RE.exec(header);
      if (!m) throw unauthorized('malformed Authorization header: expected "Bearer <token>"', 'TOKEN_MALFORMED');
      found.add(m[1]);
    }
  }
  if (found.size > 1) throw unauthorized('two different tokens in one request (query and/or Authorization header); give one', 'TOKEN_AMBIGUOUS');
  return found.size === 1 ? [...found][0] : null;
}

// ---------------------------------------------------------------------------------------
// Expiry

/**
 * Milliseconds until a connection authenticated by this principal must be closed (its
 * token stops verifying at exp + leeway), 0 when that time has passed, or null when it
 * never expires (no `exp`, or auth off).
 */
export function msUntilExpiry(principal: Principal | null, now: number = Date.now()): number | null {
  if (principal === null || principal.expiresAt === null) return null;
  return Math.max(0, principal.expiresAt + clockToleranceMs - now);
}

export interface ExpiryTimer {
  /** Stops the timer (on close, or before arming a new one after an `auth` refresh). Idempotent. */
  cancel(): void;
}

/**
 * Calls `onExpired` once, when the principal's token expires (see msUntilExpiry); never
 * for a token without `exp`. For the gateway: answer UNAUTHORIZED and close with 4001,
 * unless an `auth` op refreshed the token first (cancel this timer, arm a new one).
 * Delays beyond setTimeout's 2^31-1 ms (~24.8 days) are waited in steps, where a plain
 * setTimeout would fire at once. The timer is unref'd: it never keeps the process alive.
 */
export function onExpiry(principal: Principal | null, onExpired: () => void, now: number = Date.now()): ExpiryTimer {
  const first = msUntilExpiry(principal, now);
  if (first === null) return { cancel() {} };
  // The deadline on the real clock; the callback always runs from a timer, never inside
  // this call, even for a token that has already expired.
  const deadline = Date.now() + first;
  let timer: NodeJS.Timeout | null = null;
  const schedule = (ms: number): void => {
    timer = setTimeout(tick, Math.min(ms, timerDelayMsMax));
    timer.unref();
  };
  const tick = (): void => {
    const left = deadline - Date.now();
    if (left > 0) return schedule(left);
    timer = null;
    onExpired();
  };
  schedule(first);
  return {
    cancel() {
      if (timer) clearTimeout(timer);
      timer = null;
    },
  };
}
