/**
 * Request and response headers, and the table of APIs and versions sluice offers.
 *
 *   request header v1   apiKey int16 | apiVersion int16 | correlationId int32 | clientId nullable string (int16 length)
 *   request header v2   the same, then tagged fields (flexible request versions)
 *   response header v0  correlationId int32
 *   response header v1  correlationId int32 | tagged fields (flexible response versions)
 *
 * "ApiVersionsResponse always includes a v0 header" (Kafka's ApiVersionsResponse definition):
 * a client that does not yet know which versions the broker speaks can always read it.
 */
import { API, MESSAGES } from './messages.ts';
import { bounds, compileAll, type Codec, inRange } from './schema.ts';
import { KafkaDecodeError, Reader, Writer } from './wire.ts';

export interface RequestHeader {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  clientId: string | null;
}

/** What can be read of a header before the API and version are known to be ours. */
export function readHeaderStart(r: Reader): { apiKey: number; apiVersion: number; correlationId: number } {
  return { apiKey: r.int16(), apiVersion: r.int16(), correlationId: r.int32() };
}

/** The rest of the header: the clientId, then tagged fields for a flexible version (skipped). */
export function readHeaderRest(r: Reader, flexible: boolean): string | null {
  const clientId = r.string();
  if (flexible) {
    const n = r.uvarint();
    for (let i = 0; i < n; i++) {
      r.uvarint();
      r.raw(r.uvarint(), 'header tagged field');
    }
  }
  return clientId;
}

export interface ApiEntry {
  readonly apiKey: number;
  readonly minVersion: number;
  readonly maxVersion: number;
  readonly requests: Map<number, Codec>;
  readonly responses: Map<number, Codec>;
  readonly requestFlexible: (v: number) => boolean;
  readonly responseFlexible: (v: number) => boolean;
}

const SASL_APIS: ReadonlySet<number> = new Set([API.SaslHandshake, API.SaslAuthenticate]);

function buildTable(): Map<number, ApiEntry> {
  const table = new Map<number, ApiEntry>();
  for (const [apiKey, { request, response }] of MESSAGES) {
    const [minVersion, maxVersion] = bounds(request.versions);
    table.set(apiKey, {
      apiKey,
      minVersion,
      maxVersion,
      requests: compileAll(request),
      responses: compileAll(response),
      requestFlexible: (v) => inRange(request.flexible, v),
      responseFlexible: (v) => inRange(response.flexible, v),
    });
  }
  return table;
}

/** Every API sluice speaks, compiled once per process. */
export const API_TABLE: ReadonlyMap<number, ApiEntry> = buildTable();

/** The APIs ApiVersions advertises: SaslHandshake and SaslAuthenticate only when auth is on. */
export function advertisedApis(authOn: boolean): { apiKey: number; minVersion: number; maxVersion: number }[] {
  const out: { apiKey: number; minVersion: number; maxVersion: number }[] = [];
  for (const e of API_TABLE.values()) {
    if (!authOn && SASL_APIS.has(e.apiKey)) continue;
    out.push({ apiKey: e.apiKey, minVersion: e.minVersion, maxVersion: e.maxVersion });
  }
  return out.sort((a, b) => a.apiKey - b.apiKey);
}

/** Starts a response: the header for this API and version. The caller writes the body after it. */
export function writeResponseHeader(w: Writer, apiKey: number, apiVersion: number, correlationId: number): void {
  w.int32(correlationId);
  const entry = API_TABLE.get(apiKey);
  if (apiKey !== API.ApiVersions && entry?.responseFlexible(apiVersion)) w.uvarint(0);
}

export { KafkaDecodeError };
