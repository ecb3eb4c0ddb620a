/**
 * One record as JSON, the same for every reader that renders records as text: the HTTP API
 * (`GET /v1/topics/{t}/records`) and the CLI (`consume --json`, `replay --json`,
 * `dump --json`).
 *
 *   {"topic"?, "partition"?, "offset", "timestamp", "key" | "key64", "value" | "value64",
 *    "headers"?: {name: "utf8 text" | {"value64": "..."} | null}}
 *
 * Bytes that are valid UTF-8 are given as text under their own name, anything else as
 * standard base64 under `<name>64`; a null key or value is `null` under its own name.
 * Header values follow the same rule inside the headers object (a null value is `null`,
 * binary is `{"value64"}`). Headers are an object, as a `pub` gives them: when a record
 * repeats a header name (Kafka allows it), the last value is shown.
 */

const utf8 = new TextDecoder('utf-8', { fatal: true });

export interface RecordLike {
  topic?: string;
  partition?: number;
  offset: number;
  timestamp: number;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: { key: string; value: Uint8Array | null }[];
}

export type HeaderJson = string | { value64: string } | null;

export interface RecordJson {
  topic?: string;
  partition?: number;
  offset: number;
  timestamp: number;
  key?: string | null;
  key64?: string;
  value?: string | null;
  value64?: string;
  headers?: Record<string, HeaderJson>;
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** The text of valid UTF-8, or null for anything else. */
function utf8Text(bytes: Uint8Array): string | null {
  try {
    return utf8.decode(bytes);
  } catch {
    return null;
  }
}

function setBytes(o: RecordJson, name: 'key' | 'value', bytes: Uint8Array | null): void {
  if (bytes === null) {
    o[name] = null;
    return;
  }
  const text = utf8Text(bytes);
  if (text !== null) o[name] = text;
  else o[`${name}64`] = base64(bytes);
}

function headerJson(bytes: Uint8Array | null): HeaderJson {
  if (bytes === null) return null;
  const text = utf8Text(bytes);
  return text !== null ? text : { value64: base64(bytes) };
}

export function recordToJson(r: RecordLike): RecordJson {
  const o: RecordJson = {
    ...(r.topic !== undefined && { topic: r.topic }),
    ...(r.partition !== undefined && { partition: r.partition }),
    offset: r.offset,
    timestamp: r.timestamp,
  };
  setBytes(o, 'key', r.key);
  setBytes(o, 'value', r.value);
  if (r.headers.length > 0) {
    const h: Record<string, HeaderJson> = {};
    for (const x of r.headers) h[x.key] = headerJson(x.value);
    o.headers = h;
  }
  return o;
}
