/**
 * A minimal NATS client over a WebSocket, enough to drive nats-server's `websocket` listener:
 * CONNECT, PUB (with an optional reply subject, for JetStream acks), SUB, PING/PONG, and a
 * streaming parser for INFO, MSG, PING, PONG, +OK and -ERR. NATS over WebSocket carries the
 * plain text protocol in binary frames, and an operation may straddle frames, so bytes are
 * buffered across frames. Not a general client: no headers (HMSG), no reconnection, no TLS.
 */
import { type RawWs, rawConnect } from '../raw-ws.ts';

const CRLF = Buffer.from('\r\n');

export interface NatsHandlers {
  onMsg?(subject: string, sid: number, payload: Buffer, reply: string | undefined): void;
  onPong?(): void;
  onError?(text: string): void;
}

export interface NatsWs {
  pub(subject: string, payload: Buffer, reply?: string): void;
  sub(subject: string, sid: number): void;
  ping(): void;
  /** PING, resolved by its PONG: everything sent before has been processed by the server. */
  flush(): Promise<void>;
  close(): void;
}

export async function natsConnect(port: number, h: NatsHandlers = {}): Promise<NatsWs> {
  let buf: Buffer = Buffer.alloc(0);
  // One entry per PING sent, in order: a PONG answers the oldest (flush() resolves, ping() reports).
  const pongWaiters: (() => void)[] = [];
  // rawConnect resolves on the upgrade; frames that come with it are parsed after `ws` is set.
  let ws: RawWs | undefined;
  const early: Buffer[] = [];
  const parse = (frame: Buffer) => {
    buf = buf.length === 0 ? frame : Buffer.concat([buf, frame]);
    let pos = 0;
    for (;;) {
      const eol = buf.indexOf(CRLF, pos);
      if (eol < 0) break;
      const c0 = buf[pos];
      if (c0 === 0x4d /* M */) {
        const line = buf.toString('latin1', pos, eol);
        const parts = line.split(' ');
        const size = Number(parts[parts.length - 1]);
        if (buf.length < eol + 2 + size + 2) break;
        const payload = buf.subarray(eol + 2, eol + 2 + size);
        h.onMsg?.(parts[1], Number(parts[2]), payload, parts.length === 5 ? parts[3] : undefined);
        pos = eol + 2 + size + 2;
        continue;
      }
      const line = buf.toString('latin1', pos, eol);
      pos = eol + 2;
      if (line === 'PING') ws?.sendBinary(Buffer.from('PONG\r\n'));
      else if (line === 'PONG') pongWaiters.shift()?.(); else if (line.startsWith('-ERR')) h.onError?.(line);
      // INFO and +OK need nothing.
    }
    buf = pos === buf.length ? Buffer.alloc(0) : buf.subarray(pos);
  };
  ws = await rawConnect(port, '/', (d) => (ws ? parse(d) : early.push(Buffer.from(d))));
  for (const d of early) parse(d);
  const send = (b: Buffer) => ws!.sendBinary(b);
  const api: NatsWs = {
    pub(subject, payload, reply) {
      send(Buffer.concat([Buffer.from(`PUB ${subject}${reply ? ` ${reply}` : ''} ${payload.length}\r\n`), payload, CRLF]));
    },
    sub(subject, sid) {
      send(Buffer.from(`SUB ${subject} ${sid}\r\n`));
    },
    ping() {
      pongWaiters.push(() => h.onPong?.());
      send(Buffer.from('PING\r\n'));
    },
    flush() {
      return new Promise<void>((resolve) => {
        pongWaiters.push(resolve);
        send(Buffer.from('PING\r\n'));
      });
    },
    close() {
      ws!.destroy();
    },
  };
  send(Buffer.from(`CONNECT ${JSON.stringify({ verbose: false, pedantic: false, lang: 'sluice-bench', version: '0', protocol: 1, echo: false, headers: false })}\r\n`));
  await api.flush();
  return api;
}
