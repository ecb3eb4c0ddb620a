/**
 * A WebSocket subscriber that costs next to nothing, for timing catch-up: a python3 process
 * that upgrades, sends `sub` from earliest, and then only walks the frame headers of what
 * arrives (text answers, DATA messages whole or in fragments), reading into one reused
 * buffer, until it has seen `batchBytes` bytes of batches. A Node client spent as much CPU
 * taking the bytes in as the server spent sending them, on the same two cores.
 */
import { runPython } from './replay-core.ts';

const PY_WS_CATCHUP_READER = `
import os, socket, struct, sys, time
port, topic, want = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
key = "c2x1aWNlLWNhdGNoLXVwIQ=="
s.sendall(("GET /v1/ws HTTP/1.1\\r\\nHost: x\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Key: %s\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n" % key).encode())
head = b""
while b"\\r\\n\\r\\n" not in head:
    head += s.recv(4096)
rest = head[head.index(b"\\r\\n\\r\\n") + 4:]
sub = ('{"op":"sub","id":1,"topic":"%s","partition":0,"from":"earliest"}' % topic).encode()
s.sendall(bytes([0x81, 0x80 | len(sub), 0, 0, 0, 0]) + sub)
data_header = 2 + len(topic) + 4
buf = bytearray(4 << 20); mv = memoryview(buf)
have = len(rest); buf[:have] = rest
pos = 0; skip = 0
batch_bytes = 0; messages = 0; fragments = 0
t0 = time.perf_counter()
while True:
    while True:
        if skip:
            take = min(skip, have - pos); skip -= take; pos += take
            if skip: break
            continue
        if batch_bytes >= want: break
        if have - pos < 2: break
        b0, ln = buf[pos], buf[pos + 1] & 0x7f; hl = 2
        if ln == 126:
            if have - pos < 4: break
            ln = struct.unpack_from(">H", buf, pos + 2)[0]; hl = 4
        elif ln == 127:
            if have - pos < 10: break
            ln = struct.unpack_from(">Q", buf, pos + 2)[0]; hl = 10
        op = b0 & 0x0f
        if op == 2:
            messages += 1; batch_bytes += ln - data_header
        elif op == 0:
            fragments += 1; batch_bytes += ln
        pos += hl; skip = ln
    if batch_bytes >= want and not skip: break
    tail = have - pos
    if tail and pos: buf[:tail] = buf[pos:have]
    have, pos = tail, 0
    k = s.recv_into(mv[have:])
    if k == 0: break
    have += k
t1 = time.perf_counter()
print(batch_bytes, t1 - t0, messages, fragments, flush=True)
`;

export interface CatchupRead {
  batchBytes: number;
  seconds: number;
  /** DATA messages, and continuation fragments among their frames. */
  messages: number;
  fragments: number;
}

/** Subscribes from earliest on `topic` partition 0 and reads until `batchBytes` bytes of batches came, at most `timeoutMs`. */
export async function readCatchup(port: number, topic: string, batchBytes: number, timeoutMs = 120_000): Promise<CatchupRead> {
  const [b, secs, messages, fragments] = await runPython(PY_WS_CATCHUP_READER, [String(port), topic, String(batchBytes)], timeoutMs, 'catch-up reader');
  return { batchBytes: b, seconds: secs, messages, fragments };
}
