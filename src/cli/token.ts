/**
 * `sluice token`: mints a JWT for development and tests, the counterpart of the server's
 * verification (src/common/auth.ts). Prints the token and a newline on stdout.
 *
 *   sluice token --secret S --pub 'orders.*' --sub '*' --ttl 1h
 *   sluice token --private-key key.pem --kid k1 --sub orders --admin --ttl 0
 *
 * The algorithm follows the key: a secret signs HS256, an RSA key RS256, an EC P-256
 * key ES256 (the same pinning as the server). The patterns are checked with the server's
 * own rules before anything is signed, so a token this prints is one sluice accepts.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { Command } from 'commander';
import { type JWTPayload, SignJWT } from 'jose';
import type { Acl } from '../common/acl.ts';
import { aclPatternProblem } from '../common/acl.ts';
import { type Algorithm, algorithmForKey } from '../common/auth.ts';

export interface MintOptions {
  /** HS256 shared secret; exactly one of `secret` and `privateKey`. */
  secret?: string;
  /** An RSA or EC P-256 private key; the algorithm follows its type. */
  privateKey?: crypto.KeyObject;
  /** The `kid` header, to pick the key from a JWKS. */
  kid?: string;
  acl: Acl;
  /** Lifetime in seconds; 0 or absent: no `exp`, the token never expires. */
  ttlSec?: number;
  /** The `sub` claim (who the token is for). */
  subject?: string;
  /** ms since the epoch; for tests. */
  now?: number;
}

export class TokenUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenUsageError';
  }
}

/** Signs a token; throws TokenUsageError for options sluice would not accept. */
export async function mintToken(opts: MintOptions): Promise<string> {
  if (Boolean(opts.secret) === Boolean(opts.privateKey)) throw new TokenUsageError('give --secret or --private-key (exactly one)');
  for (const list of ['pub', 'sub'] as const) {
    for (const p of opts.acl[list]) {
      const problem = aclPatternProblem(p);
      if (problem) throw new TokenUsageError(`--${list} ${JSON.stringify(p)}: ${problem}`);
    }
  }
  let alg: Algorithm;
  let key: Uint8Array | crypto.KeyObject;
  if (opts.secret) {
    alg = 'HS256';
    key = new TextEncoder().encode(opts.secret);
  } else {
    key = opts.privateKey!;
    if (key.type !== 'private') throw new TokenUsageError('--private-key: not a private key');
    try {
      alg = algorithmForKey(key);
    } catch (err) {
      throw new TokenUsageError(`--private-key: ${(err as Error).message}`);
    }
  }
  const nowSec = Math.floor((opts.now ?? Date.now()) / 1000);
  const acl: Acl = { pub: [...opts.acl.pub], sub: [...opts.acl.sub], ...(opts.acl.admin ? { admin: true } : {}) };
  const payload: JWTPayload = { acl };
  const jwt = new SignJWT(payload).setProtectedHeader({ alg, typ: 'JWT', ...(opts.kid ? { kid: opts.kid } : {}) }).setIssuedAt(nowSec);
  if (opts.subject !== undefined) jwt.setSubject(opts.subject);
  if (opts.ttlSec) jwt.setExpirationTime(nowSec + opts.ttlSec);
  return jwt.sign(key);
}

const TTL_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };
/** Ten years: beyond that, leave `exp` out (`--ttl 0`) rather than pretend. */
export const ttlSecMax = 10 * 365 * 86400;

/** `1h`, `30m`, `3600s`, `3600` (seconds), `7d`; `0` means no expiry. Returns seconds. */
export function parseTtl(text: string): number {
  const m = /^(\d+)([smhd]?)$/.exec(text.trim());
  if (!m) throw new TokenUsageError(`--ttl ${JSON.stringify(text)}: expected a number with an optional unit s, m, h or d (e.g. 30m, 1h, 3600s), or 0 for no expiry`);
  const sec = Number(m[1]) * TTL_UNITS[m[2] || 's'];
  if (sec > ttlSecMax) throw new TokenUsageError(`--ttl ${text}: more than ten years; use --ttl 0 for a token that does not expire`);
  return sec;
}

/**
 * A private key file: PEM (PKCS#8, or PKCS#1 / SEC1), a JWK with "d", or a JWKS holding
 * private JWKs (pick one with `kid`). Returns the key and the kid a JWK carried.
 */
export function loadPrivateKey(file: string, kid?: string): { key: crypto.KeyObject; kid?: string } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new TokenUsageError(`--private-key ${file}: cannot read: ${(err as Error).message}`);
  }
  try {
    if (!text.trimStart().startsWith('{')) return { key: crypto.createPrivateKey(text) };
    const parsed = JSON.parse(text) as { keys?: crypto.JsonWebKey[] } & crypto.JsonWebKey;
    const jwks = Array.isArray(parsed.keys) ? parsed.keys : [parsed];
    const candidates = kid === undefined ? jwks : jwks.filter((k) => k.kid === kid);
    if (candidates.length !== 1) throw new Error(kid === undefined ? `${jwks.length} keys in the file: choose one with --kid` : `no single key with kid ${JSON.stringify(kid)}`);
    const jwk = candidates[0];
    if (jwk.d === undefined) throw new Error('the JWK is a public key ("d" is missing)');
    return { key: crypto.createPrivateKey({ key: jwk, format: 'jwk' }), ...(typeof jwk.kid === 'string' ? { kid: jwk.kid } : {}) };
  } catch (err) {
    throw new TokenUsageError(`--private-key ${file}: ${(err as Error).message}`);
  }
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function registerToken(program: Command): void {
  program
    .command('token')
    .description('mint a JWT for development: prints it on stdout')
    .option('--secret <secret>', 'HS256 shared secret, as given to serve --auth-secret (default: $SLUICE_AUTH_SECRET)')
    .option('--private-key <file>', 'RSA or EC P-256 private key (PEM, JWK or JWKS): signs RS256 or ES256')
    .option('--kid <kid>', 'key id header, to pick the key from the server\'s JWKS (default: the JWK\'s kid)')
    .option('--pub <pattern>', 'topic, prefix* or * the token may publish to (repeatable)', collect, [])
    .option('--sub <pattern>', 'topic, prefix* or * the token may subscribe to (repeatable)', collect, [])
    .option('--admin', 'allow creating and deleting topics', false)
    .option('--ttl <ttl>', 'lifetime: 30m, 1h, 3600s, 7d; 0 = no expiry', '1h')
    .option('--sub-claim <name>', 'the JWT "sub" claim: who the token is for')
    .action(async (opts: { secret?: string; privateKey?: string; kid?: string; pub: string[]; sub: string[]; admin: boolean; ttl: string; subClaim?: string }) => {
      try {
        const secret = opts.secret ?? (opts.privateKey ? undefined : process.env.SLUICE_AUTH_SECRET || undefined);
        let privateKey: crypto.KeyObject | undefined;
        let kid = opts.kid;
        if (opts.privateKey) {
          const loaded = loadPrivateKey(opts.privateKey, opts.kid);
          privateKey = loaded.key;
          kid ??= loaded.kid;
        }
        const token = await mintToken({
          secret,
          privateKey,
          kid,
          acl: { pub: opts.pub, sub: opts.sub, ...(opts.admin ? { admin: true } : {}) },
          ttlSec: parseTtl(opts.ttl),
          subject: opts.subClaim,
        });
        process.stdout.write(`${token}\n`);
      } catch (err) {
        if (!(err instanceof TokenUsageError)) throw err;
        process.stderr.write(`sluice token: ${err.message}\n`);
        process.exitCode = 2;
      }
    });
}
