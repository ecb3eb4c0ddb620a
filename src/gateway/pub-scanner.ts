/**
 * The cheapest way in for the commonest frame: a `pub` written plainly, read straight from
 * the bytes uWS hands over, with no text decoding, no JSON.parse and no string for the
 * value — whose UTF-8 bytes are copied as they are into the batch.
 *
 * It takes a strict subset of what the `pub` schema accepts and declines everything else
 * (returns false), which then takes the general path — JSON.parse, `fastPub`, zod — where
 * it is accepted or refused as before, with the same words. What it takes:
 *
 *   ws { ws "key" ws : ws value ws (, ...) } ws          (ws: space, tab, CR, LF)
 *
 * - keys `op` ("pub"), `id`, `topic`, `partition`, `key`, `value`, each at most once;
 *   any other key (`value64`, `headers`, unknown fields) declines;
 * - `id` and `partition` as plain decimal digits, no sign, fraction, exponent or leading
 *   zero, within the schema's range;
 * - `topic`, `key`, `value` as strings without a backslash (an escape declines), with a
 *   topic name the schema takes; key + value within --max-record-bytes (the engine's
 *   record limit, engine/produce-validation.ts: a record it takes is within it, and one
 *   over it is refused by the general path, which words the refusal).
 * A text frame's bytes are valid UTF-8 (uWS closes the connection otherwise, RFC 6455
 * §8.1), so the bytes between the quotes are exactly the UTF-8 that JSON.parse and
 * Buffer.from would give. test/gateway/pub-scanner.test.ts checks it against the general
 * path on generated frames.
 */
import { isValidTopicName, limits } from '../../engine/index.ts';

/** What a scanned `pub` holds; key and value as byte ranges of the frame (-1: absent). */
export interface ScannedPub {
  id: number | undefined;
  topic: string;
  partition: number | undefined;
  keyStart: number;
  keyEnd: number;
  valueStart: number;
  valueEnd: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN = 0x7b;
const CLOSE = 0x7d;

/** 1 for the bytes that end plain string content: the quote, the backslash, the controls below 0x20. */
const STRING_STOP = new Uint8Array(256);
for (let c = 0; c < 0x20; c++) STRING_STOP[c] = 1;
STRING_STOP[QUOTE] = 1;
STRING_STOP[BACKSLASH] = 1;

/** Bits of the keys seen, so that a repeated key declines (JSON.parse keeps the last; be plain). */
const SEEN_OP = 1;
const SEEN_ID = 2;
const SEEN_TOPIC = 4;
const SEEN_PARTITION = 8;
const SEEN_KEY = 16;
const SEEN_VALUE = 32;

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/**
 * Reads a `pub` frame into `out` (reused by the caller: nothing is allocated but the topic
 * string); false when the frame is not one it takes. `recordBytesMax` is --max-record-bytes.
 */
export function scanPub(b: Uint8Array, recordBytesMax: number, out: ScannedPub): boolean {
  const n = b.length;
  let p = 0;
  while (p < n && isWs(b[p])) p++;
  if (p >= n || b[p] !== OPEN) return false;
  p++;
  let seen = 0;
  out.id = undefined;
  out.partition = undefined;
  out.keyStart = out.keyEnd = out.valueStart = out.valueEnd = -1;
  let topicStart = -1;
  let topicEnd = -1;
  for (;;) {
    while (p < n && isWs(b[p])) p++;
    if (p >= n || b[p] !== QUOTE) return false;
    // The key: one of six short ASCII names, told apart by length and first letter.
    const k = p + 1;
    let q = k;
    while (q < n && b[q] !== QUOTE) {
      if (b[q] === BACKSLASH) return false;
      q++;
    }
    if (q >= n) return false;
    const keyLen = q - k;
    let which = 0;
    if (keyLen === 2 && b[k] === 0x6f && b[k + 1] === 0x70) which = SEEN_OP;
    else if (keyLen === 2 && b[k] === 0x69 && b[k + 1] === 0x64) which = SEEN_ID;
    else if (keyLen === 5 && b[k] === 0x74 && b[k + 1] === 0x6f && b[k + 2] === 0x70 && b[k + 3] === 0x69 && b[k + 4] === 0x63) which = SEEN_TOPIC;
    else if (keyLen === 9 && b[k] === 0x70 && matchAscii(b, k, 'partition')) which = SEEN_PARTITION;
    else if (keyLen === 3 && b[k] === 0x6b && b[k + 1] === 0x65 && b[k + 2] === 0x79) which = SEEN_KEY;
    else if (keyLen === 5 && b[k] === 0x76 && matchAscii(b, k, 'value')) which = SEEN_VALUE;
    else return false;
    if (seen & which) return false;
    seen |= which;
    p = q + 1;
    while (p < n && isWs(b[p])) p++;
    if (p >= n || b[p] !== COLON) return false;
    p++;
    while (p < n && isWs(b[p])) p++;
    if (p >= n) return false;
    if (which === SEEN_ID || which === SEEN_PARTITION) {
      // Plain digits: '0', or a non-zero digit and at most nine (id) or three (partition) more.
      const start = p;
      let v = 0;
      while (p < n && b[p] >= 0x30 && b[p] <= 0x39) v = v * 10 + (b[p++] - 0x30);
      const digits = p - start;
      if (digits === 0 || (digits > 1 && b[start] === 0x30) || digits > 10) return false;
      if (which === SEEN_ID) {
        if (v > 0xffffffff) return false;
        out.id = v;
      } else {
        if (v > limits.partitionsMax - 1) return false;
        out.partition = v;
      }
      // A fraction or exponent (1.0, 1e2) is a number JSON.parse would take: not plain.
      if (p < n && (b[p] === 0x2e || b[p] === 0x65 || b[p] === 0x45)) return false;
    } else {
      if (b[p] !== QUOTE) return false;
      const start = p + 1;
      let q2 = start;
      // Up to the first byte that is not plain string content (one table load a byte).
      while (q2 < n && STRING_STOP[b[q2]] === 0) q2++;
      // The closing quote, or else: an escape (not plain) or a raw control character (not JSON).
      if (q2 >= n || b[q2] !== QUOTE) return false;
      if (which === SEEN_OP) {
        if (q2 - start !== 3 || b[start] !== 0x70 || b[start + 1] !== 0x75 || b[start + 2] !== 0x62) return false;
      } else if (which === SEEN_TOPIC) {
        topicStart = start;
        topicEnd = q2;
      } else if (which === SEEN_KEY) {
        out.keyStart = start;
        out.keyEnd = q2;
      } else {
        out.valueStart = start;
        out.valueEnd = q2;
      }
      p = q2 + 1;
    }
    while (p < n && isWs(b[p])) p++;
    if (p >= n) return false;
    if (b[p] === COMMA) {
      p++;
      continue;
    }
    if (b[p] !== CLOSE) return false;
    p++;
    break;
  }
  while (p < n && isWs(b[p])) p++;
  if (p !== n || (seen & (SEEN_OP | SEEN_TOPIC)) !== (SEEN_OP | SEEN_TOPIC)) return false;
  // The record's bytes (no headers here): the bytes between the quotes are its UTF-8.
  if (out.keyEnd - out.keyStart + (out.valueEnd - out.valueStart) > recordBytesMax) return false;
  const topic = topicString(b, topicStart, topicEnd);
  if (topic === null) return false;
  out.topic = topic;
  return true;
}

/**
 * The last topic names read, so that a publisher's frames share one string (its hash
 * computed once for the maps it is looked up in) and the name is checked once.
 */
const recentTopics: string[] = [];
const recentTopicsMax = 8;

/** The topic name in `b[start, end)`, or null when it is not one the schema takes. */
function topicString(b: Uint8Array, start: number, end: number): string | null {
  const len = end - start;
  if (len < 1 || len > limits.topicNameLengthMax) return null;
  next: for (const t of recentTopics) {
    if (t.length !== len) continue;
    for (let i = 0; i < len; i++) if (b[start + i] !== t.charCodeAt(i)) continue next;
    return t;
  }
  // Topic names are ASCII: any byte at or above 0x80 fails the name check.
  const topic = String.fromCharCode.apply(null, b.subarray(start, end) as unknown as number[]);
  if (!isValidTopicName(topic)) return null;
  if (recentTopics.unshift(topic) > recentTopicsMax) recentTopics.pop();
  return topic;
}

function matchAscii(b: Uint8Array, at: number, word: string): boolean {
  for (let i = 0; i < word.length; i++) if (b[at + i] !== word.charCodeAt(i)) return false;
  return true;
}
