/**
 * The keys tokens are verified with, read and checked once at startup: a shared secret
 * (HS256), or a public key file, PEM (RSA → RS256, EC P-256 → ES256, or an X.509
 * certificate) or JWKS. The algorithm comes from the key, never from a token. Anything
 * unusable — a private key, a symmetric key in a public file, a short RSA modulus, another
 * curve, a duplicate kid — is a ConfigError naming the file and the problem.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createLocalJWKSet, type JSONWebKeySet, type JWK, type JWTVerifyGetKey } from 'jose';
import { ConfigError } from './config.ts';

/** JWKS files are small; a bigger file is a mistake (a wrong path), not a key set. */
export const keyFileBytesMax = 1024 * 1024;
/** RSA keys below this size are refused (as jose and RFC 7518 §3.3 require for RS256). */
export const rsaModulusBitsMin = 2048;

export type Algorithm = 'HS256' | 'RS256' | 'ES256';

export type VerifyKey = Uint8Array | crypto.KeyObject | JWTVerifyGetKey;

export interface LoadedKey {
  key: VerifyKey;
  algorithms: Algorithm[];
  description: string;
  warnings: string[];
}

/** The algorithm a public or private key is pinned to, or why it cannot be used. */
export function algorithmForKey(key: crypto.KeyObject): Algorithm {
  if (key.asymmetricKeyType === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < rsaModulusBitsMin) throw new Error(`RSA key of ${bits} bits: at least ${rsaModulusBitsMin} are needed`);
    return 'RS256';
  }
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return 'ES256';
    throw new Error(`EC key on curve ${curve}: only P-256 (ES256) is accepted`);
  }
  throw new Error(`${key.asymmetricKeyType ?? key.type} key: only RSA (RS256) and EC P-256 (ES256) keys are accepted`);
}

export function loadSecret(secret: string): LoadedKey {
  const bytes = new TextEncoder().encode(secret);
  const warnings: string[] = [];
  // RFC 7518 §3.2: "A key of the same size as the hash output (for instance, 256 bits for
  // "HS256") or larger MUST be used with this algorithm."
  if (bytes.length < 32) warnings.push(`the auth secret is ${bytes.length} bytes; HS256 needs at least 32 random bytes to resist guessing`);
  return { key: bytes, algorithms: ['HS256'], description: 'shared secret (HS256)', warnings };
}

function loadPem(file: string, text: string): LoadedKey {
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    throw new Error('holds a private key; give the public key only (openssl pkey -in KEY -pubout)');
  }
  let key: crypto.KeyObject;
  try {
    key = /-----BEGIN CERTIFICATE-----/.test(text) ? new crypto.X509Certificate(text).publicKey : crypto.createPublicKey(text);
  } catch (err) {
    throw new Error(`not a valid PEM public key: ${(err as Error).message}`);
  }
  const alg = algorithmForKey(key);
  return { key, algorithms: [alg], description: `PEM public key ${file} (${alg})`, warnings: [] };
}

function loadJwks(file: string, text: string): LoadedKey {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new Error(`not valid JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JWKS (a JSON object with "keys")');
  const obj = parsed as Record<string, unknown>;
  // A single JWK is accepted as a set of one: what `jose`/`openssl` tools often write.
  const rawKeys = Array.isArray(obj.keys) ? obj.keys : typeof obj.kty === 'string' ? [obj] : null;
  if (!rawKeys) throw new Error('not a JWKS (a JSON object with a "keys" array) nor a single JWK');
  if (rawKeys.length === 0) throw new Error('the JWKS has no keys');
  const keys: JWK[] = [];
  const algorithms = new Set<Algorithm>();
  const kids = new Set<string>();
  rawKeys.forEach((raw, i) => {
    const where = `key ${i}${typeof raw === 'object' && raw !== null && typeof (raw as JWK).kid === 'string' ? ` (kid ${JSON.stringify((raw as JWK).kid)})` : ''}`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${where}: not a JSON object`);
    const jwk = raw as JWK;
    if (jwk.kty === 'oct') throw new Error(`${where}: a symmetric key has no place in a public key file; use --auth-secret for HS256`);
    if (jwk.d !== undefined) throw new Error(`${where}: holds a private key ("d"); publish the public part only`);
    if (jwk.use !== undefined && jwk.use !== 'sig') throw new Error(`${where}: "use" is ${JSON.stringify(jwk.use)}, not "sig"`);
    let keyObject: crypto.KeyObject;
    try {
      keyObject = crypto.createPublicKey({ key: jwk as crypto.JsonWebKey, format: 'jwk' });
    } catch (err) {
      throw new Error(`${where}: not a valid public JWK: ${(err as Error).message}`);
    }
    let alg: Algorithm;
    try {
      alg = algorithmForKey(keyObject);
    } catch (err) {
      throw new Error(`${where}: ${(err as Error).message}`);
    }
    if (jwk.alg !== undefined && jwk.alg !== alg) throw new Error(`${where}: "alg" is ${JSON.stringify(jwk.alg)}; this key type allows ${alg} only`);
    if (typeof jwk.kid === 'string') {
      if (kids.has(jwk.kid)) throw new Error(`${where}: kid ${JSON.stringify(jwk.kid)} appears twice`);
      kids.add(jwk.kid);
    }
    algorithms.add(alg);
    keys.push(jwk);
  });
  const set: JSONWebKeySet = { keys };
  const algs = [...algorithms].sort();
  return {
    key: createLocalJWKSet(set),
    algorithms: algs,
    description: `JWKS file ${file} (${keys.length} key${keys.length === 1 ? '' : 's'}: ${algs.join(', ')})`,
    warnings: [],
  };
}

export function loadPublicKeyFile(file: string): LoadedKey {
  let text: string;
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) throw new Error('not a regular file');
    if (st.size > keyFileBytesMax) throw new Error(`${st.size} bytes, more than a key file can be (${keyFileBytesMax})`);
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`--auth-public-key ${file}: cannot read: ${(err as Error).message}`);
  }
  try {
    const trimmed = text.trimStart();
    if (trimmed.startsWith('{')) return loadJwks(file, text);
    if (trimmed.startsWith('-----BEGIN')) return loadPem(file, text);
    throw new Error('neither a PEM public key nor a JWKS (JSON) file');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`--auth-public-key ${file}: ${(err as Error).message}`);
  }
}
