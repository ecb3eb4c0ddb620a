/**
 * Serves the chat page of this example on its own origin, as an app would, and hands the
 * browser the SDK bundle that sluice itself serves at /sluice-client.js.
 *
 *   node --import tsx examples/browser-page/serve.ts [--port 3000] [--sluice http://127.0.0.1:8080]
 *   then open http://127.0.0.1:3000/?sluice=ws://127.0.0.1:8080
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '3000' },
    sluice: { type: 'string', default: process.env.SLUICE_HTTP ?? 'http://127.0.0.1:8080' },
  },
});

const page = fs.readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'index.html'));

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname === '/') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page);
    return;
  }
  if (url.pathname === '/sluice-client.js') {
    fetch(`${args.sluice}/sluice-client.js`).then(
      async (r) => res.writeHead(r.status, { 'content-type': 'text/javascript' }).end(Buffer.from(await r.arrayBuffer())),
      (err) => res.writeHead(502).end(String(err)),
    );
    return;
  }
  res.writeHead(404).end();
});
server.listen(Number(args.port), '127.0.0.1', () => {
  const { port } = server.address() as { port: number };
  console.log(JSON.stringify({ event: 'listening', port }));
});
