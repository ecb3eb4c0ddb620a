/**
 * The one place that knows where a WebSocket comes from. Browsers have a native one; Node 20
 * does not (without a flag), so there the `ws` package is loaded by a dynamic import whose
 * specifier bundlers cannot see — the browser bundle never contains `ws`. An app may also
 * inject any constructor that follows the browser API (`options.WebSocket`).
 */

/** The part of the browser WebSocket API the SDK uses; `ws` implements it too. */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  /** Bytes queued and not yet sent (browser) — ws has it too. */
  readonly bufferedAmount: number;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** The HTTP answer a server gave instead of upgrading: its status and its `{code, message}` body. */
export interface UpgradeRefusal {
  status: number;
  code?: string;
  message?: string;
}

/** A refusal body is a short JSON object; more than this is not read. */
const refusalBodyCharsMax = 4096;

/**
 * Calls `onRefused` when the server answers the upgrade with an HTTP status instead of 101,
 * then aborts the socket (which then closes with 1006 as usual). Only Node's `ws` shows that
 * answer (its `unexpected-response` event); a browser WebSocket hides it, so there the
 * server has to say it over an upgraded socket (close code 4001/4003, see CLOSE_CODES).
 */
export function onUpgradeRefused(ws: WebSocketLike, onRefused: (r: UpgradeRefusal) => void): void {
  type Res = { statusCode?: number; setEncoding(e: string): void; on(ev: string, fn: (d?: string) => void): void };
  const emitter = ws as unknown as { on?: (ev: string, fn: (req: unknown, res: Res) => void) => void; terminate?: () => void };
  if (typeof emitter.on !== 'function') return;
  emitter.on('unexpected-response', (_req, res) => {
    let body = '';
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      const r: UpgradeRefusal = { status: res.statusCode ?? 0 };
      try {
        const j = JSON.parse(body) as { code?: unknown; message?: unknown };
        if (typeof j.code === 'string') r.code = j.code;
        if (typeof j.message === 'string') r.message = j.message;
      } catch {
        // not the JSON body sluice sends: the status alone says enough
      }
      onRefused(r);
      // ws leaves the handshake to a listener of this event: end it, so that close follows.
      emitter.terminate?.();
    };
    res.setEncoding('utf8');
    res.on('data', (d) => {
      if (body.length < refusalBodyCharsMax) body += d;
      if (body.length >= refusalBodyCharsMax) finish();
    });
    res.on('end', finish);
    res.on('error', finish);
    res.on('close', finish);
  });
}

export const OPEN = 1;

let nodeWs: Promise<WebSocketConstructor> | null = null;

export async function resolveWebSocket(injected?: WebSocketConstructor): Promise<WebSocketConstructor> {
  if (injected) return injected;
  const g = globalThis as { WebSocket?: WebSocketConstructor };
  if (typeof g.WebSocket === 'function') return g.WebSocket;
  // Node without a global WebSocket: load `ws`. The specifier is computed at run time on
  // purpose (a constant would be folded by esbuild and resolved by other bundlers), so the
  // browser bundle neither contains nor refers to `ws`.
  const isNode = typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === 'string';
  if (!isNode) throw new Error('no WebSocket in this environment: pass options.WebSocket');
  const specifier = ['w', 's'].join('');
  nodeWs ??= import(/* webpackIgnore: true */ /* @vite-ignore */ specifier).then((m: { WebSocket?: WebSocketConstructor; default?: WebSocketConstructor }) => {
    const ctor = m.WebSocket ?? m.default;
    if (!ctor) throw new Error('no WebSocket: pass options.WebSocket, or install the `ws` package');
    return ctor;
  });
  return nodeWs;
}
