/**
 * A bare WebSocket client for load generation: the upgrade, masked text frames out, and
 * unmasked frames in, with no per-message machinery beyond a callback. Against the `ws`
 * package it cuts the generator's cost per received frame several times, so that a bench
 * with 1,000 subscribers in one process measures the server rather than the generator.
 * Not a general client: fragmented messages are joined, but there is no close handshake
 * and no ping answers.
 */
import crypto from 'node:crypto';
import net from 'node:net';

export interface RawWs {
  sendText(text: string): void;
  sendBinary(data: Uint8Array): void;
  destroy(): void;
}

export function rawConnect(port: number, path: string, onMessage: (data: Buffer, binary: boolean) => void): Promise<RawWs> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.setNoDelay(true);
    let upgraded = false;
    let buf: Buffer = Buffer.alloc(0);
    const api: RawWs = {
      sendText(text: string) {
        send(Buffer.from(text), 0x81);
      },
      sendBinary(data: Uint8Array) {
        send(data, 0x82);
      },
      destroy() {
        sock.destroy();
      },
    };
    const send = (payload: Uint8Array, opcode: number): void => {
      const len = payload.length;
      const head = len < 126 ? 2 : len < 65536 ? 4 : 10;
      const f = Buffer.alloc(head + 4 + len);
      f[0] = opcode;
      if (len < 126) f[1] = 0x80 | len;
      else if (len < 65536) {
        f[1] = 0x80 | 126;
        f.writeUInt16BE(len, 2);
      } else {
        f[1] = 0x80 | 127;
        f.writeUInt32BE(len, 6);
      }
      // RFC 6455: "a client MUST mask all frames that it sends to the server"; a zero key is a valid key.
      f.set(payload, head + 4);
      // Frames written in one tick leave in one write(2), as an SDK batching them would.
      if (!sock.writableCorked) {
        sock.cork();
        process.nextTick(() => sock.uncork());
      }
      sock.write(f);
    };
    sock.once('error', reject);
    sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    // Chunks of a frame not yet complete wait in `pending` and are joined once, when enough
    // bytes are there: joining on every chunk would copy a 1 MiB frame ~16 times over.
    const pending: Buffer[] = [];
    let fragments: { binary: boolean; parts: Buffer[] } | null = null;
    let pendingLen = 0;
    let need = 0;
    sock.on('data', (chunk: Buffer) => {
      if (buf.length + pendingLen + chunk.length < need) {
        pending.push(chunk);
        pendingLen += chunk.length;
        return;
      }
      if (pending.length) {
        buf = Buffer.concat([buf, ...pending, chunk]);
        pending.length = 0;
        pendingLen = 0;
      } else buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      need = 0;
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        if (!buf.subarray(0, 12).toString().includes('101')) return reject(new Error(buf.toString()));
        upgraded = true;
        buf = buf.subarray(end + 4);
        resolve(api);
      }
      let pos = 0;
      while (buf.length - pos >= 2) {
        const op = buf[pos] & 0x0f;
        let len = buf[pos + 1] & 0x7f;
        let hdr = 2;
        if (len === 126) {
          if (buf.length - pos < 4) break;
          len = buf.readUInt16BE(pos + 2);
          hdr = 4;
        } else if (len === 127) {
          if (buf.length - pos < 10) break;
          len = buf.readUInt32BE(pos + 6);
          hdr = 10;
        }
        if (buf.length - pos < hdr + len) {
          need = hdr + len;
          break;
        }
        const fin = (buf[pos] & 0x80) !== 0;
        const payload = buf.subarray(pos + hdr, pos + hdr + len);
        if ((op === 1 || op === 2) && fin) onMessage(payload, op === 2);
        else if (op === 1 || op === 2) fragments = { binary: op === 2, parts: [Buffer.from(payload)] };
        else if (op === 0 && fragments) {
          // A message sent in fragments (sluice sends catch-up reads so): joined once whole.
          fragments.parts.push(Buffer.from(payload));
          if (fin) {
            const f = fragments;
            fragments = null;
            onMessage(Buffer.concat(f.parts), f.binary);
          }
        }
        pos += hdr + len;
      }
      buf = pos === buf.length ? Buffer.alloc(0) : buf.subarray(pos);
    });
  });
}
