/**
 * Auth: JWT verification pinned to the configured key, ACL patterns, tokens on requests,
 * expiry, and the `sluice token` CLI round trip. Keys are generated per run; key files
 * go to a temp dir removed at the end.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { type CryptoKey, decodeJwt, decodeProtectedHeader, exportJWK, exportPKCS8, exportSPKI, generateKeyPair, type JWK, SignJWT, UnsecuredJWT } from 'jose';
import { SluiceError } from '../../engine/errors.ts';
import { loadPrivateKey, mintToken, parseTtl, TokenUsageError } from '../../src/cli/token.ts';
import { aclPatternProblem, isValidAclPattern } from '../../src/common/acl.ts';
import {
  type Auth,
  authenticate,
  authorize,
  can,
  clockToleranceMs,
  createAuth,
  msUntilExpiry,
  onExpiry,
  type Principal,
  tokenFromRequest,
  tokenLengthMax,
} from '../../src/common/auth.ts';
import { ConfigError } from '../../src/common/config.ts';

const execFileP = promisify(execFile);
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SECRET = 'a-test-secret-of-at-least-32-bytes!!';
const secretBytes = new TextEncoder().encode(SECRET);
/** A fixed clock so that exp/nbf cases are exact: 2026-01-01T00:00:00Z. */
const NOW = Date.UTC(2026, 0, 1);
const nowSec = NOW / 1000;
const ACL = { pub: ['orders.*'], sub: ['*'] };

let dir: string;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-auth-'));
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function writeTemp(name: string, content: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, content);
  return file;
}

/** Awaits a rejection and checks it is the SluiceError a client would see. */
async function rejects(p: Promise<unknown>, code: 'UNAUTHORIZED' | 'FORBIDDEN', reason: string, message?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof SluiceError, `expected a SluiceError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.equal(err.reason, reason, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}

function hs256(claims: Record<string, unknown>, secret: Uint8Array = secretBytes): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(secret);
}

function mustAuth(a: Auth | null): Auth {
  assert.ok(a, 'auth should be on');
  return a;
}

describe('HS256 with a shared secret', () => {
  const auth = mustAuth(createAuth({ authSecret: SECRET }));

  it('accepts a good token and returns its principal', async () => {
    const token = await hs256({ acl: { ...ACL, admin: true }, sub: 'alice', exp: nowSec + 600 });
    const p = await auth.verify(token, NOW);
    assert.deepEqual(p, { subject: 'alice', expiresAt: (nowSec + 600) * 1000, acl: { ...ACL, admin: true } });
    assert.deepEqual(auth.algorithms, ['HS256']);
    assert.deepEqual(auth.warnings, []);
    assert.ok(Object.isFrozen(p.acl) && Object.isFrozen(p.acl.pub) && Object.isFrozen(p.acl.sub), 'can() caches per ACL object');
  });

  it('refuses a bad signature', async () => {
    const token = await hs256({ acl: ACL }, new TextEncoder().encode('another-secret-of-at-least-32-bytes!!'));
    await rejects(auth.verify(token, NOW), 'UNAUTHORIZED', 'BAD_SIGNATURE', /signature/);
    // A tampered payload with the original signature.
    const [h, , s] = (await hs256({ acl: { pub: [], sub: ['a'] } })).split('.');
    const forged = Buffer.from(JSON.stringify({ acl: { pub: ['*'], sub: ['*'] } })).toString('base64url');
    await rejects(auth.verify(`${h}.${forged}.${s}`, NOW), 'UNAUTHORIZED', 'BAD_SIGNATURE');
  });

  it('refuses a token expired beyond the 30 s leeway', async () => {
    const token = await hs256({ acl: ACL, exp: nowSec - 31 });
    await rejects(auth.verify(token, NOW), 'UNAUTHORIZED', 'TOKEN_EXPIRED', /expired at 2025-12-31T23:59:29/);
  });

  it('accepts a token expired within the leeway', async () => {
    const token = await hs256({ acl: ACL, exp: nowSec - 29 });
    const p = await auth.verify(token, NOW);
    assert.equal(p.expiresAt, (nowSec - 29) * 1000);
    // ...and the connection it opens is closed when the leeway runs out.
    assert.equal(msUntilExpiry(p, NOW), 1000);
  });

  it('refuses a token whose nbf is in the future beyond the leeway, accepts one within it', async () => {
    await rejects(auth.verify(await hs256({ acl: ACL, nbf: nowSec + 60 }), NOW), 'UNAUTHORIZED', 'TOKEN_NOT_YET_VALID', /nbf/);
    await auth.verify(await hs256({ acl: ACL, nbf: nowSec + 20 }), NOW);
    await auth.verify(await hs256({ acl: ACL, nbf: nowSec - 20 }), NOW);
    // Regression: an nbf beyond what Date can show must still be an UNAUTHORIZED, not a RangeError.
    await rejects(auth.verify(await hs256({ acl: ACL, nbf: 1e15 }), NOW), 'UNAUTHORIZED', 'TOKEN_NOT_YET_VALID', /not valid yet/);
  });

  it('accepts a token without exp, which never expires', async () => {
    const p = await auth.verify(await hs256({ acl: ACL }), NOW);
    assert.equal(p.expiresAt, null);
    assert.equal(p.subject, undefined);
    assert.equal(msUntilExpiry(p, NOW + 100 * 365 * 86400_000), null);
  });

  it('refuses alg none', async () => {
    const token = new UnsecuredJWT({ acl: { pub: ['*'], sub: ['*'], admin: true } }).encode();
    await rejects(auth.verify(token, NOW), 'UNAUTHORIZED', 'ALG_NOT_ALLOWED', /"none"/);
    // Also with a signature part glued on.
    await rejects(auth.verify(`${token}AAAA`, NOW), 'UNAUTHORIZED', 'ALG_NOT_ALLOWED');
  });

  it('refuses malformed tokens, a missing token and one over the length limit', async () => {
    for (const bad of ['abc', 'a.b.c', 'a.b', '...', `${Buffer.from('{"alg":"HS256"}').toString('base64url')}.bm90IGpzb24.AAAA`]) {
      await assert.rejects(auth.verify(bad, NOW), (err: unknown) => err instanceof SluiceError && err.code === 'UNAUTHORIZED', bad);
    }
    await rejects(auth.verify('abc', NOW), 'UNAUTHORIZED', 'TOKEN_MALFORMED');
    await rejects(auth.verify('', NOW), 'UNAUTHORIZED', 'TOKEN_MISSING');
    // A JSON `auth` op can carry anything as its token.
    await rejects(auth.verify(42 as unknown as string, NOW), 'UNAUTHORIZED', 'TOKEN_MALFORMED', /must be a string/);
    await rejects(auth.verify('a'.repeat(tokenLengthMax + 1), NOW), 'UNAUTHORIZED', 'TOKEN_TOO_LONG');
    const long = await hs256({ acl: ACL, pad: 'x'.repeat(tokenLengthMax) });
    await rejects(auth.verify(long, NOW), 'UNAUTHORIZED', 'TOKEN_TOO_LONG');
  });

  it('refuses a token with a missing or invalid acl claim', async () => {
    await rejects(auth.verify(await hs256({ sub: 'alice' }), NOW), 'UNAUTHORIZED', 'BAD_ACL', /no acl/);
    await rejects(auth.verify(await hs256({ acl: 'all' }), NOW), 'UNAUTHORIZED', 'BAD_ACL');
    await rejects(auth.verify(await hs256({ acl: { pub: 'orders' } }), NOW), 'UNAUTHORIZED', 'BAD_ACL', /acl\.pub/);
    await rejects(auth.verify(await hs256({ acl: { pub: ['ok', '*.eu'] } }), NOW), 'UNAUTHORIZED', 'BAD_ACL', /acl\.pub\.1: invalid pattern "\*\.eu"/);
    await rejects(auth.verify(await hs256({ acl: { sub: ['or*ders'] } }), NOW), 'UNAUTHORIZED', 'BAD_ACL');
    await rejects(auth.verify(await hs256({ acl: { Pub: ['*'] } }), NOW), 'UNAUTHORIZED', 'BAD_ACL', /unknown key\(s\) Pub/);
    await rejects(auth.verify(await hs256({ acl: { admin: 'yes' } }), NOW), 'UNAUTHORIZED', 'BAD_ACL', /acl\.admin/);
    await rejects(auth.verify(await hs256({ acl: { pub: Array(1025).fill('a') } }), NOW), 'UNAUTHORIZED', 'BAD_ACL');
  });

  it('defaults a left-out pub or sub list to no topic', async () => {
    const p = await auth.verify(await hs256({ acl: { sub: ['news'] } }), NOW);
    assert.deepEqual(p.acl, { pub: [], sub: ['news'] });
    assert.equal(can(p, 'sub', 'news'), true);
    assert.equal(can(p, 'pub', 'news'), false);
  });

  it('refuses an exp that is not a number', async () => {
    await rejects(auth.verify(await hs256({ acl: ACL, exp: 'tomorrow' }), NOW), 'UNAUTHORIZED', 'BAD_CLAIMS', /exp/);
  });

  it('answers any input with a principal or UNAUTHORIZED, never another error', async () => {
    const isUnauthorized = (err: unknown) => err instanceof SluiceError && err.code === 'UNAUTHORIZED';
    // Arbitrary strings, and strings shaped like a JWT.
    const b64 = fc.string().map((x) => Buffer.from(x).toString('base64url'));
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string(), fc.tuple(b64, b64, b64).map((p) => p.join('.'))), async (token) => {
        await auth.verify(token, NOW).then(
          () => assert.fail(`accepted ${token}`),
          (err) => assert.ok(isUnauthorized(err), String(err)),
        );
      }),
      { numRuns: 200 },
    );
    // Correctly signed tokens with arbitrary claims: only a valid acl yields a principal.
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.constantFrom('acl', 'exp', 'nbf', 'sub', 'iat', 'x'), fc.jsonValue()), async (claims) => {
        const token = await hs256(claims);
        await auth.verify(token, NOW).then(
          (p) => assert.ok(Array.isArray(p.acl.pub) && Array.isArray(p.acl.sub)),
          (err) => assert.ok(isUnauthorized(err), String(err)),
        );
      }),
      { numRuns: 200 },
    );
  });

  it('warns about a short secret', () => {
    const weak = mustAuth(createAuth({ authSecret: 'dev' }));
    assert.equal(weak.warnings.length, 1);
    assert.match(weak.warnings[0], /3 bytes/);
  });
});

/** One helper, one subtest per permutation of algorithm × key file format. */
for (const alg of ['RS256', 'ES256'] as const) {
  for (const format of ['pem', 'jwks'] as const) {
    describe(`${alg} with a ${format.toUpperCase()} public key file`, () => {
      let privateKey: CryptoKey;
      let otherPrivateKey: CryptoKey;
      let publicPem: string;
      let auth: Auth;
      const kid = `${alg}-key-1`;
      const sign = (claims: Record<string, unknown>, header: { kid?: string } = { kid }, key: CryptoKey = privateKey) =>
        new SignJWT(claims).setProtectedHeader({ alg, ...header }).sign(key);

      before(async () => {
        const pair = await generateKeyPair(alg, { extractable: true });
        privateKey = pair.privateKey;
        otherPrivateKey = (await generateKeyPair(alg, { extractable: true })).privateKey;
        publicPem = await exportSPKI(pair.publicKey);
        let file: string;
        if (format === 'pem') {
          file = writeTemp(`${alg}.pem`, publicPem);
        } else {
          // Two keys of each type in the set, so that kid is what picks the key.
          const other = await generateKeyPair(alg, { extractable: true });
          const jwks = { keys: [{ ...(await exportJWK(other.publicKey)), kid: `${alg}-key-0` }, { ...(await exportJWK(pair.publicKey)), kid, use: 'sig', alg }] };
          file = writeTemp(`${alg}.jwks.json`, JSON.stringify(jwks));
        }
        auth = mustAuth(createAuth({ authPublicKey: file }));
      });

      it('accepts a good token', async () => {
        const p = await auth.verify(await sign({ acl: ACL, sub: 'svc', exp: nowSec + 60 }), NOW);
        assert.deepEqual(p, { subject: 'svc', expiresAt: (nowSec + 60) * 1000, acl: ACL });
        assert.deepEqual(auth.algorithms, [alg]);
        assert.match(auth.description, format === 'pem' ? new RegExp(`PEM public key .*\\(${alg}\\)`) : new RegExp(`JWKS file .*\\(2 keys: ${alg}\\)`));
      });

      it('refuses a token signed by another key', async () => {
        const token = await sign({ acl: ACL }, { kid }, otherPrivateKey);
        await rejects(auth.verify(token, NOW), 'UNAUTHORIZED', 'BAD_SIGNATURE');
      });

      it('refuses an expired token', async () => {
        await rejects(auth.verify(await sign({ acl: ACL, exp: nowSec - 31 }), NOW), 'UNAUTHORIZED', 'TOKEN_EXPIRED');
      });

      if (format === 'jwks') {
        it('picks the key by kid and refuses an unknown kid', async () => {
          await rejects(auth.verify(await sign({ acl: ACL }, { kid: 'nope' }), NOW), 'UNAUTHORIZED', 'UNKNOWN_KEY', /kid "nope"/);
          // The other key's kid: the right key type, but the signature does not match it.
          await rejects(auth.verify(await sign({ acl: ACL }, { kid: `${alg}-key-0` }), NOW), 'UNAUTHORIZED', 'BAD_SIGNATURE');
          // No kid with two candidate keys: refused rather than tried one by one.
          await rejects(auth.verify(await sign({ acl: ACL }, {}), NOW), 'UNAUTHORIZED', 'UNKNOWN_KEY', /no kid/);
        });
      } else {
        it('ignores the kid: the one key verifies', async () => {
          await auth.verify(await sign({ acl: ACL }, { kid: 'whatever' }), NOW);
          await auth.verify(await sign({ acl: ACL }, {}), NOW);
        });
      }

      it('refuses alg none', async () => {
        await rejects(auth.verify(new UnsecuredJWT({ acl: ACL }).encode(), NOW), 'UNAUTHORIZED', 'ALG_NOT_ALLOWED');
      });

      it('refuses an HS256 token, also one keyed with the public key itself', async () => {
        // The classic confusion attack: HMAC keyed with the public key's bytes.
        const pemKeyed = await new SignJWT({ acl: { pub: ['*'], sub: ['*'], admin: true } }).setProtectedHeader({ alg: 'HS256', kid }).sign(new TextEncoder().encode(publicPem));
        await rejects(auth.verify(pemKeyed, NOW), 'UNAUTHORIZED', 'ALG_NOT_ALLOWED', /"HS256"/);
        await rejects(auth.verify(await hs256({ acl: ACL }), NOW), 'UNAUTHORIZED', 'ALG_NOT_ALLOWED');
      });

      it('refuses the other asymmetric algorithm', async () => {
        const otherAlg = alg === 'RS256' ? 'ES256' : 'RS256';
        const k = (await generateKeyPair(otherAlg)).privateKey;
        const token = await new SignJWT({ acl: ACL }).setProtectedHeader({ alg: otherAlg, kid }).sign(k);
        await rejects(auth.verify(token, NOW), 'UNAUTHORIZED', 'ALG_NOT_ALLOWED');
      });
    });
  }
}

describe('a JWKS with both key types', () => {
  it('accepts RS256 and ES256, each by its kid', async () => {
    const rs = await generateKeyPair('RS256', { extractable: true });
    const es = await generateKeyPair('ES256', { extractable: true });
    const file = writeTemp('mixed.jwks.json', JSON.stringify({ keys: [{ ...(await exportJWK(rs.publicKey)), kid: 'r' }, { ...(await exportJWK(es.publicKey)), kid: 'e' }] }));
    const auth = mustAuth(createAuth({ authPublicKey: file }));
    assert.deepEqual(auth.algorithms, ['ES256', 'RS256']);
    await auth.verify(await new SignJWT({ acl: ACL }).setProtectedHeader({ alg: 'RS256', kid: 'r' }).sign(rs.privateKey), NOW);
    await auth.verify(await new SignJWT({ acl: ACL }).setProtectedHeader({ alg: 'ES256', kid: 'e' }).sign(es.privateKey), NOW);
    // A single key of each type: no kid needed.
    await auth.verify(await new SignJWT({ acl: ACL }).setProtectedHeader({ alg: 'ES256' }).sign(es.privateKey), NOW);
    await rejects(auth.verify(await new SignJWT({ acl: ACL }).setProtectedHeader({ alg: 'ES256', kid: 'r' }).sign(es.privateKey), NOW), 'UNAUTHORIZED', 'UNKNOWN_KEY');
  });
});

describe('createAuth and key files', () => {
  const configError = (config: Parameters<typeof createAuth>[0], message: RegExp) =>
    assert.throws(() => createAuth(config), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.match(err.message, message);
      return true;
    });

  it('is off (null) without a key', () => {
    assert.equal(createAuth({}), null);
    assert.equal(createAuth({ authSecret: undefined, authPublicKey: undefined }), null);
  });

  it('refuses both a secret and a public key', () => {
    configError({ authSecret: SECRET, authPublicKey: '/x' }, /not both/);
  });

  it('names an unreadable or unusable file', async () => {
    configError({ authPublicKey: path.join(dir, 'missing.pem') }, /missing\.pem: cannot read: ENOENT/);
    configError({ authPublicKey: dir }, /cannot read: not a regular file/);
    configError({ authPublicKey: writeTemp('empty.pem', '') }, /neither a PEM public key nor a JWKS/);
    configError({ authPublicKey: writeTemp('junk.pem', '-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n') }, /junk\.pem: not a valid PEM public key/);
    configError({ authPublicKey: writeTemp('bad.json', '{"keys": [') }, /bad\.json: not valid JSON/);
    configError({ authPublicKey: writeTemp('nokeys.json', '{"keys": []}') }, /no keys/);
    configError({ authPublicKey: writeTemp('other.json', '{"hello": 1}') }, /not a JWKS/);
  });

  it('refuses private keys, symmetric keys and keys of other types or sizes', async () => {
    const es = await generateKeyPair('ES256', { extractable: true });
    configError({ authPublicKey: writeTemp('private.pem', await exportPKCS8(es.privateKey)) }, /private key; give the public key only/);
    configError({ authPublicKey: writeTemp('private.jwks', JSON.stringify({ keys: [await exportJWK(es.privateKey)] })) }, /private key \("d"\)/);
    configError({ authPublicKey: writeTemp('oct.jwks', JSON.stringify({ keys: [{ kty: 'oct', k: 'c2VjcmV0', kid: 'h' }] })) }, /key 0 \(kid "h"\): a symmetric key .* --auth-secret/);
    const rsa1024 = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
    configError({ authPublicKey: writeTemp('rsa1024.pem', rsa1024.export({ type: 'spki', format: 'pem' }) as string) }, /RSA key of 1024 bits/);
    const p384 = crypto.generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey;
    configError({ authPublicKey: writeTemp('p384.pem', p384.export({ type: 'spki', format: 'pem' }) as string) }, /curve secp384r1: only P-256/);
    const ed = crypto.generateKeyPairSync('ed25519').publicKey;
    configError({ authPublicKey: writeTemp('ed.pem', ed.export({ type: 'spki', format: 'pem' }) as string) }, /ed25519 key: only RSA/);
    const esJwk = await exportJWK(es.publicKey);
    configError({ authPublicKey: writeTemp('wrongalg.jwks', JSON.stringify({ keys: [{ ...esJwk, alg: 'ES384' }] })) }, /"alg" is "ES384"/);
    configError({ authPublicKey: writeTemp('enc.jwks', JSON.stringify({ keys: [{ ...esJwk, use: 'enc' }] })) }, /"use" is "enc"/);
    configError({ authPublicKey: writeTemp('dupkid.jwks', JSON.stringify({ keys: [{ ...esJwk, kid: 'a' }, { ...esJwk, kid: 'a' }] })) }, /kid "a" appears twice/);
    configError({ authPublicKey: writeTemp('badjwk.jwks', JSON.stringify({ keys: [{ kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' }] })) }, /not a valid public JWK/);
  });

  it('accepts a single JWK and a PKCS#1 RSA PEM', async () => {
    const es = await generateKeyPair('ES256', { extractable: true });
    const single = mustAuth(createAuth({ authPublicKey: writeTemp('single.jwk', JSON.stringify(await exportJWK(es.publicKey))) }));
    await single.verify(await new SignJWT({ acl: ACL }).setProtectedHeader({ alg: 'ES256' }).sign(es.privateKey), NOW);
    const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pkcs1 = mustAuth(createAuth({ authPublicKey: writeTemp('rsa.pkcs1.pem', rsa.publicKey.export({ type: 'pkcs1', format: 'pem' }) as string) }));
    await pkcs1.verify(await new SignJWT({ acl: ACL }).setProtectedHeader({ alg: 'RS256' }).sign(rsa.privateKey), NOW);
  });
});

describe('ACL patterns', () => {
  it('knows valid and invalid patterns', () => {
    for (const ok of ['*', 'orders', 'orders.eu', 'orders.*', 'o*', '.*', 'a-b_c.D9', `${'a'.repeat(249)}`, `${'a'.repeat(249)}*`]) {
      assert.equal(aclPatternProblem(ok), null, ok);
    }
    for (const bad of ['', '**', '*.eu', 'or*ders', 'orders.**', '*orders', 'orders/eu', 'orders eu', '.', '..', 'ü', `${'a'.repeat(250)}`, `${'a'.repeat(250)}*`, 'a?', 'a*b*']) {
      assert.equal(isValidAclPattern(bad), false, bad);
    }
  });

  const principal = (acl: Principal['acl']): Principal => ({ expiresAt: null, acl });

  it('matches exact names, prefixes and *', () => {
    const p = principal({ pub: ['orders', 'logs.*'], sub: ['*'] });
    assert.equal(can(p, 'pub', 'orders'), true);
    assert.equal(can(p, 'pub', 'orders2'), false);
    assert.equal(can(p, 'pub', 'order'), false);
    assert.equal(can(p, 'pub', 'logs.'), true);
    assert.equal(can(p, 'pub', 'logs.app.eu'), true);
    assert.equal(can(p, 'pub', 'logs'), false);
    assert.equal(can(p, 'pub', 'xlogs.app'), false);
    assert.equal(can(p, 'sub', 'anything-at_all.9'), true);
    assert.equal(can(principal({ pub: ['a*'], sub: [] }), 'pub', 'a'), true, 'a* matches a itself');
  });

  it('never allows a topic name that is not valid, even under *', () => {
    const p = principal({ pub: ['*', 'a*'], sub: ['*'] });
    for (const bad of ['', '.', '..', '../etc', 'a/b', 'a'.repeat(250)]) {
      assert.equal(can(p, 'pub', bad), false, bad);
      assert.equal(can(p, 'sub', bad), false, bad);
    }
  });

  it('gives admin only with admin: true, and admin implies no topic', () => {
    assert.equal(can(principal({ pub: ['*'], sub: ['*'] }), 'admin'), false);
    assert.equal(can(principal({ pub: ['*'], sub: ['*'], admin: false }), 'admin'), false);
    const admin = principal({ pub: [], sub: [], admin: true });
    assert.equal(can(admin, 'admin'), true);
    assert.equal(can(admin, 'pub', 'orders'), false);
    assert.equal(can(admin, 'sub', 'orders'), false);
  });

  it('allows everything when auth is off (null principal)', () => {
    assert.equal(can(null, 'pub', 'x'), true);
    assert.equal(can(null, 'sub', 'x'), true);
    assert.equal(can(null, 'admin'), true);
    authorize(null, 'admin');
  });

  it('authorize throws FORBIDDEN naming the action and topic', () => {
    const p = principal({ pub: ['a'], sub: [] });
    authorize(p, 'pub', 'a');
    assert.throws(() => authorize(p, 'sub', 'a'), (err: unknown) => err instanceof SluiceError && err.code === 'FORBIDDEN' && err.reason === 'ACL_DENIED' && /sub on topic "a"/.test(err.message));
    assert.throws(() => authorize(p, 'admin'), (err: unknown) => err instanceof SluiceError && err.code === 'FORBIDDEN' && /admin/.test(err.message));
  });
});

describe('tokenFromRequest', () => {
  const unauthorized = (reason: string) => (err: unknown) => err instanceof SluiceError && err.code === 'UNAUTHORIZED' && err.reason === reason;

  it('reads ?token= and Authorization: Bearer', () => {
    assert.equal(tokenFromRequest({ query: 'token=abc.def.ghi' }), 'abc.def.ghi');
    assert.equal(tokenFromRequest({ query: '?a=1&token=abc.def.ghi' }), 'abc.def.ghi');
    assert.equal(tokenFromRequest({ query: new URLSearchParams({ token: 't' }) }), 't');
    assert.equal(tokenFromRequest({ authorization: 'Bearer abc.def.ghi' }), 'abc.def.ghi');
    assert.equal(tokenFromRequest({ authorization: 'bearer  abc.def-_~+/=' }), 'abc.def-_~+/=');
    assert.equal(tokenFromRequest({ query: 'token=abc', authorization: 'Bearer abc' }), 'abc', 'the same token twice is fine');
  });

  it('returns null when there is no token', () => {
    assert.equal(tokenFromRequest({}), null);
    assert.equal(tokenFromRequest({ query: '', authorization: '' }), null, 'uWS gives "" for absent');
    assert.equal(tokenFromRequest({ query: 'token=' }), null);
    assert.equal(tokenFromRequest({ query: 'tokens=abc' }), null);
    assert.equal(tokenFromRequest({ authorization: 'Basic dXNlcjpwYXNz' }), null, 'another scheme is not ours');
  });

  it('refuses two different tokens and a malformed Bearer header', () => {
    assert.throws(() => tokenFromRequest({ query: 'token=a', authorization: 'Bearer b' }), unauthorized('TOKEN_AMBIGUOUS'));
    assert.throws(() => tokenFromRequest({ query: 'token=a&token=b' }), unauthorized('TOKEN_AMBIGUOUS'));
    assert.throws(() => tokenFromRequest({ authorization: 'Bearer' }), unauthorized('TOKEN_MALFORMED'));
    assert.throws(() => tokenFromRequest({ authorization: 'Bearer a b' }), unauthorized('TOKEN_MALFORMED'));
    assert.throws(() => tokenFromRequest({ authorization: 'Bearer {json}' }), unauthorized('TOKEN_MALFORMED'));
  });
});

describe('authenticate', () => {
  it('is null with auth off, whatever the token', async () => {
    assert.equal(await authenticate(null, null), null);
    assert.equal(await authenticate(null, 'garbage'), null);
  });

  it('needs a token with auth on', async () => {
    const auth = createAuth({ authSecret: SECRET });
    await rejects(authenticate(auth, null), 'UNAUTHORIZED', 'TOKEN_MISSING', /\?token=/);
    await rejects(authenticate(auth, ''), 'UNAUTHORIZED', 'TOKEN_MISSING');
    const p = await authenticate(auth, await hs256({ acl: ACL }), NOW);
    assert.deepEqual(p?.acl, ACL);
  });
});

describe('expiry', () => {
  const withExp = (expiresAt: number | null): Principal => ({ expiresAt, acl: { pub: [], sub: [] } });

  it('msUntilExpiry counts the leeway and never goes below 0', () => {
    assert.equal(msUntilExpiry(null), null);
    assert.equal(msUntilExpiry(withExp(null), NOW), null);
    assert.equal(msUntilExpiry(withExp(NOW + 5000), NOW), 5000 + clockToleranceMs);
    assert.equal(msUntilExpiry(withExp(NOW - clockToleranceMs), NOW), 0);
    assert.equal(msUntilExpiry(withExp(NOW - 3_600_000), NOW), 0);
  });

  it('onExpiry fires once when the token expires, never inside the call', async () => {
    const start = Date.now();
    let calls = 0;
    const keepAlive = setTimeout(() => {}, 5000);
    await new Promise<void>((resolve) => {
      onExpiry(withExp(start - clockToleranceMs + 60), () => {
        calls++;
        resolve();
      }, start);
      assert.equal(calls, 0);
    });
    assert.ok(Date.now() - start >= 55, `fired after ${Date.now() - start} ms`);
    // An already-expired token: fired from a timer, not synchronously.
    let fired = false;
    const done = new Promise<void>((resolve) => onExpiry(withExp(0), () => ((fired = true), resolve())));
    assert.equal(fired, false);
    await done;
    clearTimeout(keepAlive);
    assert.equal(calls, 1);
  });

  it('onExpiry can be cancelled, does nothing without exp, and waits beyond 2^31 ms', async () => {
    let fired = 0;
    const now = Date.now();
    const t1 = onExpiry(withExp(now - clockToleranceMs + 30), () => fired++, now);
    t1.cancel();
    t1.cancel();
    onExpiry(withExp(null), () => fired++).cancel();
    onExpiry(null, () => fired++).cancel();
    // 40 days: a plain setTimeout would clamp this to 1 ms and fire at once.
    const far = onExpiry(withExp(now + 40 * 86400_000), () => fired++, now);
    await new Promise((r) => setTimeout(r, 80));
    far.cancel();
    assert.equal(fired, 0);
  });
});

describe('mintToken and parseTtl', () => {
  it('parses ttls', () => {
    assert.equal(parseTtl('0'), 0);
    assert.equal(parseTtl('3600'), 3600);
    assert.equal(parseTtl('3600s'), 3600);
    assert.equal(parseTtl('30m'), 1800);
    assert.equal(parseTtl('1h'), 3600);
    assert.equal(parseTtl('7d'), 7 * 86400);
    for (const bad of ['', '1y', '-1', '1.5h', 'h', '1 h h', '99999d']) assert.throws(() => parseTtl(bad), TokenUsageError, bad);
  });

  it('mints what createAuth accepts, and refuses what it would not', async () => {
    const auth = mustAuth(createAuth({ authSecret: SECRET }));
    const token = await mintToken({ secret: SECRET, acl: { pub: ['a*'], sub: ['b'], admin: true }, ttlSec: 60, subject: 'bob', now: NOW });
    assert.deepEqual(await auth.verify(token, NOW), { subject: 'bob', expiresAt: NOW + 60_000, acl: { pub: ['a*'], sub: ['b'], admin: true } });
    await assert.rejects(mintToken({ secret: SECRET, acl: { pub: ['*a'], sub: [] } }), /--pub "\*a": "\*" is only allowed at the end/);
    await assert.rejects(mintToken({ acl: { pub: [], sub: [] } }), TokenUsageError);
    const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    await assert.rejects(mintToken({ privateKey: rsa.publicKey, acl: { pub: [], sub: [] } }), /not a private key/);
  });
});

describe('sluice token (CLI round trip)', () => {
  const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    execFileP(process.execPath, [path.join(repoRoot, 'bin/sluice.js'), 'token', ...args], { cwd: repoRoot, env: { ...process.env, SLUICE_AUTH_SECRET: '', ...env } });

  it('HS256: --secret, repeated --pub/--sub, --admin, --ttl, --sub-claim', async () => {
    const before = Math.floor(Date.now() / 1000);
    const { stdout } = await cli(['--secret', SECRET, '--pub', 'orders.*', '--pub', 'logs', '--sub', '*', '--admin', '--ttl', '30m', '--sub-claim', 'alice']);
    assert.match(stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const token = stdout.trim();
    const p = await mustAuth(createAuth({ authSecret: SECRET })).verify(token);
    assert.deepEqual(p.acl, { pub: ['orders.*', 'logs'], sub: ['*'], admin: true });
    assert.equal(p.subject, 'alice');
    const exp = decodeJwt(token).exp!;
    assert.ok(exp >= before + 1800 && exp <= before + 1800 + 60, `exp ${exp}`);
    assert.equal(decodeProtectedHeader(token).alg, 'HS256');
  });

  it('HS256: the secret from SLUICE_AUTH_SECRET, --ttl 0 means no exp', async () => {
    const { stdout } = await cli(['--sub', 'news', '--ttl', '0'], { SLUICE_AUTH_SECRET: SECRET });
    const p = await mustAuth(createAuth({ authSecret: SECRET })).verify(stdout.trim());
    assert.equal(p.expiresAt, null);
    assert.deepEqual(p.acl, { pub: [], sub: ['news'] });
  });

  it('ES256: a PKCS#8 private key against a JWKS, picked by --kid', async () => {
    const es = await generateKeyPair('ES256', { extractable: true });
    const keyFile = writeTemp('cli-es.p8.pem', await exportPKCS8(es.privateKey));
    const jwksFile = writeTemp('cli-es.jwks.json', JSON.stringify({ keys: [{ ...(await exportJWK(es.publicKey)), kid: 'dev-1' }] }));
    const { stdout } = await cli(['--private-key', keyFile, '--kid', 'dev-1', '--sub', 'x']);
    assert.deepEqual(decodeProtectedHeader(stdout.trim()), { alg: 'ES256', typ: 'JWT', kid: 'dev-1' });
    const p = await mustAuth(createAuth({ authPublicKey: jwksFile })).verify(stdout.trim());
    assert.deepEqual(p.acl, { pub: [], sub: ['x'] });
  });

  it('RS256: a private JWK carrying its kid, against a PEM public key', async () => {
    const rs = await generateKeyPair('RS256', { extractable: true });
    const jwk: JWK = { ...(await exportJWK(rs.privateKey)), kid: 'r1' };
    const keyFile = writeTemp('cli-rs.jwk.json', JSON.stringify(jwk));
    const pemFile = writeTemp('cli-rs.pub.pem', await exportSPKI(rs.publicKey));
    const { stdout } = await cli(['--private-key', keyFile, '--pub', '*']);
    assert.equal(decodeProtectedHeader(stdout.trim()).kid, 'r1');
    assert.equal(decodeProtectedHeader(stdout.trim()).alg, 'RS256');
    const p = await mustAuth(createAuth({ authPublicKey: pemFile })).verify(stdout.trim());
    assert.deepEqual(p.acl, { pub: ['*'], sub: [] });
    assert.equal(loadPrivateKey(keyFile).kid, 'r1');
  });

  it('exits 2 with a message for a bad pattern, a bad ttl, or no key', async () => {
    const cases = [
      [['--secret', SECRET, '--pub', 'a*b'], /--pub "a\*b": "\*" is only allowed at the end/],
      [['--secret', SECRET, '--ttl', '1y'], /--ttl "1y"/],
      [['--sub', 'x'], /give --secret or --private-key/],
      [['--private-key', path.join(dir, 'nope.pem')], /--private-key .*nope\.pem: cannot read/],
    ] as const;
    // Concurrently: each run loads the whole CLI, which takes most of a second.
    await Promise.all(
      cases.map(([args, message]) =>
        assert.rejects(cli([...args]), (err: { code?: number; stdout?: string; stderr?: string }) => {
          assert.equal(err.code, 2);
          assert.equal(err.stdout, '');
          assert.match(err.stderr ?? '', message);
          return true;
        }),
      ),
    );
  });
});
