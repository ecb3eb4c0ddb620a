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
