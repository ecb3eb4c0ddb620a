/**
 * The JSON wire types (engine/codec/wire-messages.ts) and the gateway's zod schemas agree.
 * The schemas `satisfies` the types (what they take and give is a wire message); this checks
 * the other way: every request written as its wire type — each optional field present and
 * absent — is accepted as it is (only `from` gets its default).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ControlRequest } from '../../../engine/codec/wire-messages.ts';
import { parseControl } from '../../../src/gateway/ws-protocol.ts';

const requests: ControlRequest[] = [
  { op: 'meta', topic: 't' },
  { op: 'meta', id: 1, topic: 't' },
  { op: 'sub', topic: 't' },
  { op: 'sub', id: 0xffffffff, topic: 't', partition: 0, from: 'earliest' },
  { op: 'sub', topic: 't', from: 'latest' },
  { op: 'sub', topic: 't', from: { offset: 5 } },
  { op: 'sub', topic: 't', from: { time: 1_700_000_000_000 } },
  { op: 'unsub', topic: 't' },
  { op: 'unsub', id: 2, topic: 't', partition: 3 },
  { op: 'pub', topic: 't' },
  { op: 'pub', id: 3, topic: 't', partition: 1, key: '', value: 'v', headers: { h: 'x' } },
  { op: 'pub', topic: 't', key: 'k', value64: 'AAEC/w==' },
  { op: 'ping' },
  { op: 'ping', id: 4 },
  { op: 'auth', token: 'a.b.c' },
  { op: 'auth', id: 5, token: 'a.b.c' },
];

test('every request the wire types describe parses as it was written', () => {
  for (const req of requests) {
    const r = parseControl(JSON.stringify(req));
    assert.ok(r.ok, `${JSON.stringify(req)}: ${r.ok ? '' : r.message}`);
    const want = req.op === 'sub' && req.from === undefined ? { ...req, from: 'latest' } : req;
    assert.deepEqual(r.req, want);
  }
});
