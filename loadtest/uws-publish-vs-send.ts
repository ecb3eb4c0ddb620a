/**
 * Question: for the live fan-out, does uWS's topic `publish` cost the server less CPU than a
 * loop of per-socket `send`s of the same frame? (sluice uses per-socket sends because
 * `publish` skips sockets over maxBackpressure without telling anyone; this measures what
 * that choice costs.)
 *
 *   node --import tsx loadtest/uws-publish-vs-send.ts [--subs 1000] [--messages 2000] [--bytes 1000]
 *
 * A child process runs a bare uWS app; this process connects the subscribers (ws) and
 * counts what arrives. For each mode the server sends `messages` frames of `bytes` bytes to
 * every subscriber, 20 (then 1) per event-loop turn — by `publish`, by a `send` per socket
 * per message, or by the sends of a turn inside one `cork` per socket — and the server's
 * CPU time (from /proc) is reported per delivered message. maxBackpressure is set high so that publish skips nobody.
 */
import { fork } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: number): number => (argv.includes(`--${name}`) ? Number(argv[argv.indexOf(`--${name}`) + 1]) : dflt);

type Mode = 'publish' | 'send' | 'send-corked';

async function server(): Promise<void> {
  const { loadUws } = await import('../src/gateway/uws.ts');
  const uws = loadUws();
  const app = uws.App();
  const sockets = new Set<any>();
  app.ws('/*', {
    maxBackpressure: 512 * 1024 * 1024,
    open: (ws) => {
      ws.subscribe('dummy');
      ws.subscribe('fan');
      sockets.add(ws);
    },
    close: (ws) => sockets.delete(ws),
  });
  app.listen('127.0.0.1', 0, (ls) => {
    process.send!({ port: uws.us_socket_local_port(ls as never) });
  });
  process.on('message', (m: { mode: Mode; messages: number; bytes: number; perTurn: number }) => {
    const frame = Buffer.alloc(m.bytes, 7);
    let left = m.messages;
    const turn = () => {
      const n = Math.min(m.perTurn, left);
      left -= n;
      if (m.mode === 'publish') for (let i = 0; i < n; i++) app.publish('fan', frame, true);
      else if (m.mode === 'send') for (let i = 0; i < n; i++) for (const ws of sockets) ws.send(frame, true);
      else
        for (const ws of sockets)
          ws.cork(() => {
            for (let i = 0; i < n; i++) ws.send(frame, true);
          });
      if (left > 0) setImmediate(turn);
    };
    turn();
  });
}

function cpuSeconds(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

async function main(): Promise<void> {
  const subs = arg('subs', 1000);
  const messages = arg('messages', 2000);
  const bytes = arg('bytes', 1000);
  const child = fork(fileURLToPath(import.meta.url), ['server'], { execArgv: ['--import', 'tsx'] });
  const { port } = await new Promise<{ port: number }>((r) => child.once('message', r as never));
  let received = 0;
  const clients: WebSocket[] = [];
  for (let i = 0; i < subs; i += 100) {
    clients.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(100, subs - i) }, () => {
          const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
          ws.on('message', () => received++);
          return new Promise<WebSocket>((r) => ws.once('open', () => r(ws)));
        }),
      )),
    );
  }
  console.log(`uWS publish vs per-socket send: ${subs} subscribers, ${messages} messages of ${bytes} B each`);
  for (const [mode, perTurn] of [['send', 20], ['send-corked', 20], ['publish', 20], ['send', 1], ['send-corked', 1], ['publish', 1]] as const) {
    received = 0;
    const c0 = cpuSeconds(child.pid!);
    const t0 = performance.now();
    child.send({ mode, messages, bytes, perTurn });
    const want = subs * messages;
    for (let i = 0; i < 6000 && received < want; i++) await new Promise((r) => setTimeout(r, 10));
    const wall = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(child.pid!) - c0;
    console.log(
      `${mode.padEnd(11)} ${String(perTurn).padStart(2)}/turn delivered ${received}/${want}  server CPU ${cpu.toFixed(2)} s = ${((cpu / received) * 1e6).toFixed(2)} µs per delivery  wall ${wall.toFixed(2)} s (${Math.round(received / wall).toLocaleString('en')} msg/s, client-bound)`,
    );
  }
  for (const ws of clients) ws.terminate();
  child.kill();
}

if (process.argv[2] === 'server') await server();
else await main();
