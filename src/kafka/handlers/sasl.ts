/**
 * SaslHandshake (17) and SaslAuthenticate (36). The handshake names the mechanism (PLAIN or
 * OAUTHBEARER); with handshake v1 the token then comes in SaslAuthenticate, with v0 as the
 * next bare frame (../connection.ts). A failed authentication answers
 * SASL_AUTHENTICATION_FAILED with the reason and closes the connection, as Kafka does.
 * A client may authenticate again on an open connection (KIP-368): the new token's lifetime
 * then replaces the old one's. SaslAuthenticate v1+ tells the client that lifetime.
 */
import { msUntilExpiry } from '../../common/auth.ts';
import type { Handler } from '../session.ts';
import { KafkaError } from '../protocol/errors.ts';
import { MECHANISMS } from '../sasl.ts';
import type { KafkaShared } from '../shared.ts';

export function saslHandshakeHandler(): Handler {
  return (body, version, session) => {
    const mechanism = body.mechanism as string;
    if (!(MECHANISMS as readonly string[]).includes(mechanism)) {
      return { body: { errorCode: KafkaError.UNSUPPORTED_SASL_MECHANISM, mechanisms: [...MECHANISMS] } };
    }
    session.mechanism = mechanism;
    if (version === 0) session.rawSasl = true;
    return { body: { errorCode: KafkaError.NONE, mechanisms: [...MECHANISMS] } };
  };
}

export function saslAuthenticateHandler(shared: KafkaShared): Handler {
  return async (body, _version, session) => {
    if (session.mechanism === null) {
      return { body: { errorCode: KafkaError.ILLEGAL_SASL_STATE, errorMessage: 'SaslAuthenticate before SaslHandshake', authBytes: Buffer.alloc(0) }, closeAfter: true };
    }
    const result = await shared.sasl(session, body.authBytes as Buffer);
    if (!result.ok) {
      return {
        body: { errorCode: KafkaError.SASL_AUTHENTICATION_FAILED, errorMessage: `${result.error.reason}: ${result.error.message}`, authBytes: Buffer.alloc(0) },
        closeAfter: true,
      };
    }
    return { body: { errorCode: KafkaError.NONE, errorMessage: null, authBytes: Buffer.alloc(0), sessionLifetimeMs: msUntilExpiry(result.principal) ?? 0 } };
  };
}
