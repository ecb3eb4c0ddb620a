/** ApiVersions (18): the APIs and versions this front speaks (docs/kafka.md has the table). */
import type { Handler } from '../session.ts';
import { advertisedApis } from '../protocol/header.ts';
import { KafkaError } from '../protocol/errors.ts';

export function apiVersionsHandler(authOn: boolean): Handler {
  const apiKeys = advertisedApis(authOn);
  return () => ({ body: { errorCode: KafkaError.NONE, apiKeys, throttleTimeMs: 0 } });
}
