/**
 * A minimal Redis (RESP2) client over TCP: commands out as arrays of bulk strings, replies in
 * through a streaming parser (simple strings, errors, integers, bulk strings, arrays). Enough
 * for PUBLISH, SUBSCRIBE and the push messages a subscribed connection receives.
 */
import net from 'node:net';

export type Resp = string | number | Buffer | null | Error | Resp[];

export interface RespConn {
  command(...args: (string | Buffer)[]): void;
  close(): void;
}

/** Parses one value at `pos`; returns it and the position after it, or undefined if incomplete. */
function parseAt(b: Buffer, pos: number): [Resp, number] | undefined {
  if (pos >= b.length) return undefined;
  const eol = b.indexOf('\r\n', pos);
  if (eol < 0) return undefined;
  const t = b[pos];
  const line = b.toString('latin1', pos + 1, eol);
  if (t === 0x2b /* + */) return [line, eol + 2];
  if (t === 0x2d /* - */) return [new Error(line), eol + 2];
  if (t === 0x3a /* : */) return [Number(line), eol + 2];
  if (t === 0x24 /* $ */) {
    const n = Number(line);
    if (n < 0) return [null, eol + 2];
    if (b.length < eol + 2 + n + 2) return undefined;
    return [b.subarray(eol + 2, eol + 2 + n), eol + 2 + n + 2];
  }
  if (t === 0x2a /* * */) {
    const n = Number(line);
    const out: Resp[] = [];
    let p = eol + 2;
    for (let i = 0; i < n; i++) {
      const r = parseAt(b, p);
      if (!r) return undefined;
      out.push(r[0]);
      p = r[1];
    }
    return [out, p];
  }
  throw new Error(`RESP: unexpected byte ${t} at ${pos}`);
}

export function respConnect(port: number, onReply: (r: Resp) => void): Promise<RespConn> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.setNoDelay(true);
    let buf: Buffer = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      let pos = 0;
      for (;;) {
        const r = parseAt(buf, pos);
        if (!r) break;
        pos = r[1];
        onReply(r[0]);
      }
      buf = pos === buf.length ? Buffer.alloc(0) : buf.subarray(pos);
    });
    sock.once('error', reject);
    sock.once('connect', () =>
      resolve({
        command(...args) {
          const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
          for (const a of args) {
            const b = typeof a === 'string' ? Buffer.from(a) : a;
            parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
          }
          // Commands written in one tick leave in one write(2) (pipelining).
          if (!sock.writableCorked) {
            sock.cork();
            process.nextTick(() => sock.uncork());
          }
          sock.write(Buffer.concat(parts));
        },
        close() {
          sock.destroy();
        },
      }),
    );
  });
}
