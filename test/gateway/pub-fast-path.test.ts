/**
 * The hand-written check of `pub` (fastPub) against the zod schema it stands in for, on
 * generated frames: it takes exactly the frames the schema accepts — except a `__proto__`
 * header, which it leaves to zod — and hands on the same fields; every other frame goes to
 * zod, so what is refused, and the words of the refusal, are zod's.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Pub, fastPub, parseControl } from '../../src/gateway/ws-protocol.ts';

const KNOWN = ['op', 'id', 'topic', 'partition', 'key', 'value', 'value64', 'headers'] as const;

/** The fields a handler reads, as it reads them (absent and undefined alike). */
function fields(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of KNOWN) {
    if (o[k] === undefined) continue;
    out[k] = k === 'headers' ? Object.entries(o[k] as object) : o[k];
  }
  return out;
}

const anything = fc.oneof(fc.constant(null), fc.boolean(), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.string({ maxLength: 8 }), fc.constant([]), fc.constant({}));
/** Absent, the right type (mostly), or anything at all. */
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(fc.oneof({ weight: 15, arbitrary: arb }, { weight: 1, arbitrary: anything }), { nil: undefined, freq: 3 });
const uintish = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 10 }) }, fc.constantFrom(-1, -0, 1.5, 1023, 1024, 0xffffffff, 0x100000000, 2 ** 53, Number.MAX_SAFE_INTEGER), fc.integer());
const topicish = fc.oneof(
  { weight: 8, arbitrary: fc.stringMatching(/^[a-zA-Z0-9._-]{1,20}$/) },
  fc.constantFrom('', '.', '..', '...', 'a/b', 'a b', 'é', 'x'.repeat(249), 'x'.repeat(250)),
  fc.string({ maxLength: 10 }),
);
const base64ish = fc.oneof({ weight: 4, arbitrary: fc.base64String({ maxLength: 24 }) }, fc.constantFrom('', '=', 'YQ', 'YQ=', 'YQ==', 'YWI=', 'Y===', 'YW I=', 'YWJj', 'YWJj\n'), fc.string({ maxLength: 8 }));
const headerKey = fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', '', '0', '10'));
const headersish = fc.oneof(
  fc.dictionary(headerKey, fc.oneof({ weight: 5, arbitrary: fc.string({ maxLength: 6 }) }, { weight: 1, arbitrary: anything }), { maxKeys: 4 }),
  fc.array(fc.string(), { maxLength: 2 }),
);

const frameArb = fc.record(
  {
    op: fc.oneof({ weight: 8, arbitrary: fc.constant('pub') }, { weight: 1, arbitrary: fc.constantFrom('sub', 'PUB', 'ping') }, { weight: 1, arbitrary: anything }),
    id: maybe(uintish),
    topic: fc.option(topicish, { nil: undefined, freq: 20 }),
    partition: maybe(uintish),
    key: maybe(fc.string({ maxLength: 10 })),
    value: maybe(fc.string({ maxLength: 20 })),
    value64: fc.option(base64ish, { nil: undefined, freq: 2 }),
    headers: maybe(headersish),
    extra: maybe(anything),
  },
  { requiredKeys: [] },
);

/** What arrives: the frame as JSON text, parsed (as the server parses it). */
const wire = frameArb.map((f) => JSON.parse(JSON.stringify(f)) as Record<string, unknown>);

const hasProtoHeader = (o: Record<string, unknown>): boolean => typeof o.headers === 'object' && o.headers !== null && Object.hasOwn(o.headers, '__proto__');

test('fastPub accepts exactly what the Pub schema accepts (a __proto__ header left to zod), with the same fields', () => {
  let accepted = 0;
  fc.assert(
    fc.property(wire, (o) => {
      const fast = fastPub(o);
      const z = Pub.safeParse(o);
      if (fast !== undefined) {
        accepted++;
        assert.ok(z.success, `fastPub accepted what zod refuses: ${JSON.stringify(o)}`);
        assert.deepEqual(fields(fast), fields(z.data as Record<string, unknown>));
      } else if (z.success) {
        assert.ok(hasProtoHeader(o), `fastPub left a valid pub to zod: ${JSON.stringify(o)}`);
      }
    }),
    { numRuns: 20_000 },
  );
  assert.ok(accepted > 1000, `only ${accepted} generated frames were valid pubs: the generator needs more valid ones`);
});

test('parseControl answers every pub frame as the zod schema alone would: the same request, or BAD_REQUEST with the same words', () => {
  fc.assert(
    fc.property(wire, (o) => {
      const r = parseControl(JSON.stringify(o));
      if (o.op !== 'pub') return;
      const z = Pub.safeParse(o);
      assert.equal(r.ok, z.success, JSON.stringify(o));
      if (r.ok && z.success) assert.deepEqual(fields(r.req as Record<string, unknown>), fields(z.data as Record<string, unknown>));
    }),
    { numRuns: 5000 },
  );
});

test('numbers JSON rounds to infinity are refused like zod refuses them', () => {
  for (const text of ['{"op":"pub","topic":"t","id":1e400}', '{"op":"pub","topic":"t","partition":1e400}', '{"op":"pub","topic":"t","id":-1e400}']) {
    const o = JSON.parse(text) as Record<string, unknown>;
    assert.equal(fastPub(o), undefined, text);
    assert.equal(Pub.safeParse(o).success, false, text);
    assert.equal(parseControl(text).ok, false, text);
  }
});

test('a __proto__ header is dropped, as the schema drops it, not stored', () => {
  const r = parseControl('{"op":"pub","topic":"t","value":"v","headers":{"__proto__":"x","a":"b"}}');
  assert.ok(r.ok);
  assert.deepEqual(Object.entries((r.req as { headers: object }).headers), [['a', 'b']]);
});
