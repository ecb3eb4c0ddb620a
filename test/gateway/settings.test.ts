/**
 * The same round trip under every permutation of the settings that change the stored bytes
 * or when they become visible: compression ∈ {none, lz4} × flush ∈ {always, interval}.
 * One server and data directory per permutation.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeBatches } from '../../engine/codec/index.ts';
import { installNativeCodecs } from '../../engine/index.ts';
import { parseDataFrame } from '../../src/gateway/frames.ts';
import { Client, http, startServer, utf8 } from '../helpers/server.ts';

installNativeCodecs();

describe('settings permutations', () => {
  for (const compression of ['none', 'lz4'] as const) {
    for (const flush of ['always', 'interval'] as const) {
      test(`compression=${compression} flush=${flush}: publish, live tail, catch-up, restart`, async () => {
        const srv = await startServer({ args: ['--compression', compression, '--flush', flush, '--flush-ms', '20', '--partitions', '2'] });
        let dataDir = srv.dataDir;
        const values = Array.from({ length: 60 }, (_, i) => `${compression}/${flush}/${i} `.repeat(1 + (i % 7)));
        try {
          const live = await Client.connect(srv.url);
          live.keepFrames = true;
          await http('PUT', `${srv.http}/v1/topics/perm`, { partitions: 2 });
          await live.request({ op: 'sub', topic: 'perm', from: 'latest' });
          const pub = await Client.connect(srv.url);
          const acks = await Promise.all(values.map((value, i) => pub.request({ op: 'pub', topic: 'perm', key: `k${i % 5}`, value })));
          await live.until(() => live.records.length === values.length, 'live records');
          // The stored codec is the configured one.
          const codecs = new Set(live.frames.map((f) => parseDataFrame(f).batches[22] & 7));
          assert.deepEqual([...codecs], [compression === 'lz4' ? 3 : 0]);
          for (const [i, a] of acks.entries()) {
            const r = live.records.find((x) => x.partition === a.partition && x.offset === a.offset)!;
            assert.equal(utf8(r.value), values[i]);
          }
          live.close();
          pub.close();
          assert.equal(await srv.stop(), 0);
          const again = await startServer({ dataDir, args: ['--compression', compression, '--flush', flush] });
          dataDir = again.dataDir;
          try {
            const c = await Client.connect(again.url);
            c.decode = false;
            const got = new Map<string, string>();
            c.onData = (frame) => {
              const f = parseDataFrame(frame);
              for (const r of decodeBatches(f.batches)) got.set(`${f.partition}:${r.offset}`, utf8(r.value)!);
            };
            await c.request({ op: 'sub', topic: 'perm', from: 'earliest' });
            await c.until(() => got.size === values.length, 'catch-up after restart');
            for (const [i, a] of acks.entries()) assert.equal(got.get(`${a.partition}:${a.offset}`), values[i]);
            c.close();
          } finally {
            assert.equal(await again.stop(), 0);
          }
        } finally {
          await srv.stop();
        }
      });
    }
  }
});
