/**
 * SASL for the Kafka front (wire contract §8): the JWT that the WebSocket takes, given as
 *
 *   PLAIN        RFC 4616: `authzid NUL authcid NUL passwd`; the password is the JWT. The
 *                user name is not checked (the token says who the client is) and is logged.
 *   OAUTHBEARER  RFC 7628 §3.1: `gs2-header kvsep *(kvpair) kvsep` with kvsep = 0x01, e.g.
 *                `n,,\x01auth=Bearer <JWT>\x01\x01`; the bearer token is the JWT.
 *
 * Either way the token is verified as every front verifies it (../common/auth.ts): signature,
 * algorithm, exp/nbf with leeway, the acl claim. A failure is SASL_AUTHENTICATION_FAILED
 * and closes the connection, as a Kafka broker does.
 */
import { SluiceError } from '../../engine/errors.ts';
import { type Auth, type Principal, tokenLengthMax } from '../common/auth.ts';

export const MECHANISMS = ['PLAIN', 'OAUTHBEARER'] as const;
export type Mechanism = (typeof MECHANISMS)[number];

export type SaslResult = { ok: true; principal: Principal } | { ok: false; error: SluiceError };

/** The SASL message is at most a token and a little framing. */
export const saslBytesMax = tokenLengthMax + 1024;

function bad(message: string): SluiceError {
  return new SluiceError('UNAUTHORIZED', message, 'TOKEN_MALFORMED');
}

/** The JWT carried by a PLAIN message. */
export function tokenFromPlain(bytes: Uint8Array): string {
  const text = Buffer.from(bytes).toString('utf8');
  const parts = text.split('\0');
  if (parts.length !== 3) throw bad('PLAIN message is not authzid NUL user NUL password');
  return parts[2];
}

/** The JWT carried by an OAUTHBEARER client's first message. */
export function tokenFromOauthBearer(bytes: Uint8Array): string {
  const text = Buffer.from(bytes).toString('utf8');
  // gs2-header: "n," or "y," or "p=..." then the optional authzid "a=...," ; then 0x01.
  const sep = text.indexOf('\x01');
  if (sep < 0 || !/^[nyp][^,]*,[^,]*,$/.test(text.slice(0, sep))) throw bad('OAUTHBEARER message has no GS2 header');
  for (const kv of text.slice(sep + 1).split('\x01')) {
    if (kv.startsWith('auth=')) {
      const m = /^auth=Bearer +(\S+)$/i.exec(kv);
      if (!m) throw bad('OAUTHBEARER auth value is not "Bearer <token>"');
      return m[1];
    }
  }
  throw bad('OAUTHBEARER message has no auth value');
}

export async function saslAuthenticate(auth: Auth, mechanism: string | null, bytes: Uint8Array): Promise<SaslResult> {
  try {
    if (bytes.length > saslBytesMax) throw bad(`SASL message of ${bytes.length} bytes is over ${saslBytesMax}`);
    let token: string;
    if (mechanism === 'PLAIN') token = tokenFromPlain(bytes);
    else if (mechanism === 'OAUTHBEARER') token = tokenFromOauthBearer(bytes);
    else throw new SluiceError('UNAUTHORIZED', 'SaslAuthenticate before SaslHandshake chose a mechanism', 'UNAUTHORIZED');
    return { ok: true, principal: await auth.verify(token) };
  } catch (err) {
    if (err instanceof SluiceError) return { ok: false, error: err };
    throw err;
  }
}
