/**
 * The byte scanner for `pub` (pub-scanner.ts) against the general path it stands in for
 * (JSON.parse, the schema, the record limits), on generated frames written every which way:
 * keys in any order and repeated, whitespace anywhere, escapes, numbers as 1.0, 1e0, 01 or
 * -0, unknown fields, values of every JSON type, trailing bytes, any Unicode. Whatever it
 * takes, the general path takes too, with the same topic, id, partition, key and value
 * bytes; and it does take plainly written pubs, so that the fast path is the one used.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { type ScannedPub, scanPub } from '../../src/gateway/pub-scanner.ts';
import { isProtocolError, parseControl, toJsonRecord } from '../../src/gateway/ws-protocol.ts';

/** --max-record-bytes here: key + value. */
const RECORD_MAX = 64;

interface Reference {
  topic: string;
  id: number | undefined;
  partition: number | undefined;
  key: Buffer | null;
  value: Buffer | null;
}

/** What the general path makes of the frame: a pub it accepts without headers, or null. */
function reference(bytes: Buffer): Reference | null {
  const r = parseControl(bytes.toString('utf8'));
  if (!r.ok || r.req.op !== 'pub') return null;
  const req = r.req;
  const rec = toJsonRecord(req, { recordBytesMax: RECORD_MAX, recordHeadersMax: 128 });
  if (isProtocolError(rec)) return null;
  if (rec.headers !== null) return null;
  const asBuffer = (f: string | Uint8Array | null): Buffer | null => (f === null ? null : typeof f === 'string' ? Buffer.from(f, 'utf8') : Buffer.from(f));
  return { topic: req.topic, id: req.id, partition: req.partition, key: asBuffer(rec.key), value: asBuffer(rec.value) };
}

function scanned(bytes: Buffer): Reference | null {
  const out: ScannedPub = { id: undefined, topic: '', partition: undefined, keyStart: -1, keyEnd: -1, valueStart: -1, valueEnd: -1 };
  if (!scanPub(bytes, RECORD_MAX, out)) return null;
  return {
    topic: out.topic,
    id: out.id,
    partition: out.partition,
    key: out.keyStart < 0 ? null : Buffer.from(bytes.subarray(out.keyStart, out.keyEnd)),
    value: out.valueStart < 0 ? null : Buffer.from(bytes.subarray(out.valueStart, out.valueEnd)),
  };
}

const ws = fc.stringMatching(/^[ \t\r\n]{0,2}$/);
const anyText = fc.oneof(fc.string({ maxLength: 12 }), fc.string({ unit: 'grapheme', maxLength: 8 }), fc.string({ unit: 'binary', maxLength: 6 }));

/** A JSON string for `s`, sometimes with escapes JSON.parse reads back to the same text. */
const stringRepr = (s: string) =>
  fc.oneof(
    { weight: 6, arbitrary: fc.constant(JSON.stringify(s)) },
    { weight: 1, arbitrary: fc.constant(JSON.stringify(s).replace(/[a-z]/, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)) },
    { weight: 1, arbitrary: fc.constant(`"${s.replace(/\//g, '\\/')}"`) },
  );

/** A number as JSON writes it, or as other spellings JSON.parse reads (or refuses). */
const numberRepr = (n: number) => fc.oneof({ weight: 8, arbitrary: fc.constant(String(n)) }, fc.constantFrom(`${n}.0`, `${n}e0`, `${n}E+0`, `0${n}`, `-${n}`, `+${n}`, `${n}.`, `-0`, `${n} 1`));

const otherRepr = fc.constantFrom('null', 'true', 'false', '[]', '{}', '{"a":[1,{"b":"}"}]}', '1.5', '"x"', '-1', '1e400');

const topicArb = fc.oneof({ weight: 8, arbitrary: fc.constantFrom('t', 'bench', 'a.b_c-D9', 'x'.repeat(249)) }, fc.constantFrom('', '.', '..', 'a/b', 'é', 'x'.repeat(250)), anyText);
const uintArb = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 1100 }) }, fc.constantFrom(0xffffffff, 0x100000000, 2 ** 53, 99999999999));
const textArb = fc.oneof({ weight: 4, arbitrary: fc.stringMatching(/^[ -~]{0,20}$/) }, anyText, fc.constantFrom('x'.repeat(RECORD_MAX), 'x'.repeat(RECORD_MAX + 1), 'é'.repeat(RECORD_MAX / 2 + 1), '€'.repeat(21), '"', '\\'));

/** [key as written, value as written] for one field of the frame. */
const pairArb: fc.Arbitrary<[string, string]> = fc.oneof(
  { weight: 6, arbitrary: fc.constant(['"op"', '"pub"'] as [string, string]) },
  fc.constantFrom(['"op"', '"sub"'], ['"op"', '"p\\u0075b"'], ['"\\u006fp"', '"pub"'], ['"op"', 'null']) as fc.Arbitrary<[string, string]>,
  { weight: 4, arbitrary: fc.tuple(fc.constant('"topic"'), topicArb.chain(stringRepr)) },
  { weight: 3, arbitrary: fc.tuple(fc.constant('"id"'), fc.oneof({ weight: 5, arbitrary: uintArb.chain(numberRepr) }, otherRepr)) },
  { weight: 2, arbitrary: fc.tuple(fc.constant('"partition"'), fc.oneof({ weight: 5, arbitrary: uintArb.chain(numberRepr) }, otherRepr)) },
  { weight: 3, arbitrary: fc.tuple(fc.constant('"key"'), fc.oneof({ weight: 5, arbitrary: textArb.chain(stringRepr) }, otherRepr)) },
  { weight: 4, arbitrary: fc.tuple(fc.constant('"value"'), fc.oneof({ weight: 5, arbitrary: textArb.chain(stringRepr) }, otherRepr)) },
  fc.tuple(fc.constantFrom('"value64"', '"headers"', '"extra"', '"Value"', '"op "', '""'), fc.oneof(otherRepr, fc.constantFrom('"YQ=="', '{"h":"v"}', '{}'))),
);

const frameArb = fc
  .record({
    pairs: fc.array(pairArb, { minLength: 0, maxLength: 7 }),
    gaps: fc.array(ws, { minLength: 40, maxLength: 40 }),
    tail: fc.oneof({ weight: 9, arbitrary: fc.constant('') }, fc.constantFrom('x', ',', '}', '\u0000', '{}', ' ')),
    head: fc.oneof({ weight: 9, arbitrary: fc.constant('') }, fc.constantFrom('\ufeff', '[', 'x')),
  })
  .map(({ pairs, gaps, tail, head }) => {
    let g = 0;
    const gap = () => gaps[g++ % gaps.length];
    const body = pairs.map(([k, v]) => `${gap()}${k}${gap()}:${gap()}${v}${gap()}`).join(',');
    return Buffer.from(`${head}${gap()}{${body}}${gap()}${tail}`, 'utf8');
  });

/** One byte changed, added or removed in a frame the scanner takes. */
const mutatedArb = fc
  .tuple(
    fc.constantFrom('{"op":"pub","id":7,"topic":"t","key":"k","value":"hello"}', '{"op":"pub","topic":"bench","partition":3,"value":"é€"}', '{ "value" : "v" , "topic" : "t" , "op" : "pub" }'),
    fc.nat(),
    fc.integer({ min: 0, max: 255 }),
    fc.constantFrom('replace', 'insert', 'delete'),
  )
  .map(([text, at, byte, how]) => {
    const b = Buffer.from(text, 'utf8');
    const i = at % b.length;
    if (how === 'replace') b[i] = byte;
    else if (how === 'insert') return Buffer.concat([b.subarray(0, i), Buffer.from([byte]), b.subarray(i)]);
    else return Buffer.concat([b.subarray(0, i), b.subarray(i + 1)]);
    return b;
  })
  // uWS hands over valid UTF-8 only: a text frame that is not is closed before it gets here.
  .filter((b) => Buffer.from(b.toString('utf8'), 'utf8').equals(b));

test('whatever the scanner takes, the general path takes with the same fields', () => {
  let taken = 0;
  fc.assert(
    fc.property(fc.oneof(frameArb, mutatedArb), (bytes) => {
      const s = scanned(bytes);
      if (s === null) return;
      taken++;
      const r = reference(bytes);
      assert.ok(r !== null, `the scanner took what the general path refuses: ${bytes.toString()}`);
      assert.deepEqual(s, r, bytes.toString());
    }),
    { numRuns: 30_000 },
  );
  assert.ok(taken > 500, `only ${taken} generated frames were taken: the generator needs more plain pubs`);
});

test('plainly written pubs are taken by the scanner, in any key order and spacing', () => {
  const plain = fc.record({
    id: fc.option(fc.integer({ min: 0, max: 0xffffffff }), { nil: undefined }),
    topic: fc.stringMatching(/^[a-zA-Z0-9._-]{1,40}$/).filter((t) => t !== '.' && t !== '..'),
    partition: fc.option(fc.integer({ min: 0, max: 1023 }), { nil: undefined }),
    key: fc.option(fc.string({ unit: 'grapheme', maxLength: 10 }).filter((k) => !/["\\\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(k)), { nil: undefined }),
    value: fc.option(fc.stringMatching(/^[ !#-[\]-~]{0,64}$/), { nil: undefined }),
    order: fc.nat(),
    spaced: fc.boolean(),
  }).filter((p) => Buffer.byteLength(p.key ?? '') + Buffer.byteLength(p.value ?? '') <= RECORD_MAX);
  fc.assert(
    fc.property(plain, (p) => {
      const entries: [string, unknown][] = [['op', 'pub'], ['topic', p.topic]];
      if (p.id !== undefined) entries.push(['id', p.id]);
      if (p.partition !== undefined) entries.push(['partition', p.partition]);
      if (p.key !== undefined) entries.push(['key', p.key]);
      if (p.value !== undefined) entries.push(['value', p.value]);
      const rot = p.order % entries.length;
      const ordered = [...entries.slice(rot), ...entries.slice(0, rot)];
      const sep = p.spaced ? ' ' : '';
      const text = `{${ordered.map(([k, v]) => `${JSON.stringify(k)}${sep}:${sep}${JSON.stringify(v)}`).join(`,${sep}`)}}`;
      const bytes = Buffer.from(text, 'utf8');
      const s = scanned(bytes);
      assert.ok(s !== null, `not taken: ${text}`);
      assert.deepEqual(s, reference(bytes));
    }),
    { numRuns: 3000 },
  );
});

test('a record over the limit (key and value together), an escape, value64 and headers are left to the general path', () => {
  for (const text of [
    `{"op":"pub","topic":"t","value":"${'x'.repeat(RECORD_MAX + 1)}"}`,
    `{"op":"pub","topic":"t","key":"${'k'.repeat(RECORD_MAX / 2 + 1)}","value":"${'v'.repeat(RECORD_MAX / 2)}"}`,
    '{"op":"pub","topic":"t","value":"a\\"b"}',
    '{"op":"pub","topic":"t","value64":"YQ=="}',
    '{"op":"pub","topic":"t","value":"v","headers":{"h":"v"}}',
    '{"op":"pub","topic":"t","id":1.0}',
    '{"op":"pub","topic":"t","topic":"u"}',
  ]) {
    assert.equal(scanned(Buffer.from(text)), null, text);
  }
});
