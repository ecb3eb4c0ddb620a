/**
 * The sluice client: the facade apps use, and the transport under it — one WebSocket
 * (protocol §3) at a time, to one of the URLs it was given, that reconnects by itself.
 * What travels over the socket is owned by three parts, each handed the callbacks it needs:
 * requests.ts (ids, timeouts, deferral), publish-queue.ts (bounded, retried in order) and
 * recovery.ts (sub, resume, gap, epoch change); token-refresh.ts keeps the token fresh.
 *
 * Lifetimes and guarantees, in one place:
 * - Every socket gets a generation number; a callback of a socket whose generation is not
 *   the current one is ignored, so a dead socket's late `message` or `close` can never touch
 *   the state of its successor.
 * - Several URLs (the nodes of a cluster, which share epochs and offsets): a lost connection,
 *   or an attempt that fails, moves to the next URL after a full-jitter backoff delay, and
 *   every subscription resumes there from its `{epoch, offset}`.
 * - A refused token is not a network error: HTTP 401/403 on the upgrade (visible in Node) or
 *   close code 4001/4003 closes the client at once with UNAUTHORIZED/FORBIDDEN, except that
 *   with `getToken` one more attempt is made with a fresh token after a 401/4001.
 * - Answers are matched by request id (uint32, wrapping, one counter for requests and
 *   publishes). The server answers publishes in the order they arrived (§3), which is also
 *   the order this client sends them again after a reconnection.
 */
import type { AckAnswer, ServerMessage } from '../../engine/codec/wire-messages.ts';
import { Backoff } from './backoff.ts';
import { CLIENT_REASONS, CLOSE_CODES, ConnectionState, FRAME_TYPES, SluiceError, clientError, wireError } from './codes.ts';
import { Emitter } from './emitter.ts';
import { toBase64 } from './frames.ts';
import { Producer, type ProducerOptions, type ProducerSink } from './producer.ts';
import { type PubAsk, PublishQueue } from './publish-queue.ts';
import { Recovery } from './recovery.ts';
import { Requests } from './requests.ts';
import type { OnRecords, Subscription } from './subscription.ts';
import { TokenRefresh } from './token-refresh.ts';
import { type UpgradeRefusal, type WebSocketLike, onUpgradeRefused, resolveWebSocket } from './transport.ts';
import type { ClientEvents, ClientOptions, PublishAck, PublishOptions, SubscribeOptions, TopicMeta } from './types.ts';

type Settings = Required<Omit<ClientOptions, 'token' | 'getToken' | 'WebSocket' | 'backoff'>> & ClientOptions;

/** A text frame's JSON, taken as a server message once it has an `op` (a handler that then finds a field missing throws, and the connection is dropped). */
function isMessage(m: unknown): m is ServerMessage {
  return typeof m === 'object' && m !== null && typeof (m as { op?: unknown }).op === 'string';
}

function hasId(m: ServerMessage): m is ServerMessage & { id: number } {
  return 'id' in m && typeof m.id === 'number';
}

/** The error a refused upgrade means, or null for a status that is worth another try (503: shutting down, full). */
function refusalError(url: string, r: UpgradeRefusal): SluiceError | null {
  const code = r.status === 401 ? 'UNAUTHORIZED' : r.status === 403 ? 'FORBIDDEN' : null;
  return code && new SluiceError(code, `${url} refused the connection (HTTP ${r.status}): ${r.message ?? code}`, code);
}

export class SluiceClient implements ProducerSink {
  /** Every URL given, in the order they are tried. */
  readonly urls: readonly string[];
  private urlIndex = 0;
  private readonly opts: Settings;
  private readonly events: Emitter<ClientEvents>;
  private stateValue = ConnectionState.Disconnected;
  /** The open socket (null while connecting). */
  private ws: WebSocketLike | null = null;
  /** The socket being opened or open. */
  private socket: WebSocketLike | null = null;
  /** Generation of the current socket; bumped whenever a socket is opened or given up. */
  private generation = 0;
  private nextId = 0;
  private readonly allocId = (): number => (this.nextId = (this.nextId + 1) >>> 0);
  /** The first ping of an opened socket, until its pong. */
  private handshake: { id: number; done(): void } | null = null;
  private readonly backoff: Backoff;
  private token: string | undefined;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  /** Gives up a socket that did not open (and answer its first ping) within connectTimeoutMs. */
  private openTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private everConnected = false;
  /** Attempts that failed since a socket last opened. */
  private failedAttempts = 0;
  /** Token refusals in a row, with no answer from a server in between. */
  private authRefusals = 0;
  /** What the server said about the socket's token just before it closes it, or answered instead of upgrading. */
  private refusal: { error: SluiceError | null; status?: number } | null = null;
  private closeErrorValue: SluiceError | null = null;
  private readonly requests: Requests;
  private readonly publishes: PublishQueue;
  private readonly recovery: Recovery;
  private readonly refresh: TokenRefresh | null;
  private readonly metaCache = new Map<string, Promise<TopicMeta>>();

  constructor(url: string | readonly string[], options: ClientOptions = {}) {
    const list = typeof url === 'string' ? [url] : [...url];
    if (list.length === 0) throw new SluiceError('BAD_REQUEST', 'no URL to connect to');
    this.urls = list.map(wsUrl);
    this.opts = {
      reconnect: true,
      connectTimeoutMs: 10_000,
      requestTimeoutMs: 10_000,
      pingIntervalMs: 25_000,
      retryPublishes: true,
      retryFirstConnect: true,
      maxPendingPublishes: 10_000,
      maxPendingBytes: 16 * 1024 * 1024,
      maxFrameBytes: 1024 * 1024,
      tokenRefreshLeadMs: 30_000,
      ...options,
    };
    this.token = options.token;
    this.backoff = new Backoff(options.backoff);
    this.events = new Emitter<ClientEvents>((err) => this.reportError(err));
    const allocId = this.allocId;
    const send = (data: string | Uint8Array): void => this.ws!.send(data);
    this.requests = new Requests({ allocId, send, timeoutMs: this.opts.requestTimeoutMs });
    this.publishes = new PublishQueue(
      { retry: this.opts.retryPublishes, pendingMax: this.opts.maxPendingPublishes, pendingBytesMax: this.opts.maxPendingBytes, frameBytesMax: this.opts.maxFrameBytes },
      { allocId, send },
    );
    this.recovery = new Recovery({
      ask: (msg, h) => this.requests.askWith(msg, h),
      isOpen: () => this.stateValue === ConnectionState.Connected,
      generation: () => this.generation,
      dropConnection: (gen, reason) => this.drop(gen, 4000, reason),
      reportError: (err) => this.reportError(err),
    });
    const getToken = options.getToken;
    this.refresh = getToken
      ? new TokenRefresh(
          {
            getToken: async () => getToken(),
            authenticate: (token) => this.requests.ask({ op: 'auth', token }).then(() => undefined),
            reportError: (err) => this.reportError(err),
          },
          this.opts.tokenRefreshLeadMs,
        )
      : null;
  }

  // ---- public API -------------------------------------------------------------------------

  get state(): ConnectionState {
    return this.stateValue;
  }

  /** The URL of the current connection, or of the next attempt. */
  get url(): string {
    return this.urls[this.urlIndex];
  }

  /** Why the client closed by itself (a refused token, no server reachable); null while open or after close(). */
  get closeError(): SluiceError | null {
    return this.closeErrorValue;
  }

  on<K extends keyof ClientEvents>(name: K, fn: (e: ClientEvents[K]) => void): () => void {
    return this.events.on(name, fn);
  }

  /**
   * Starts connecting (and reconnecting, unless `reconnect: false`). Resolves once the first
   * connection is open; rejects, and closes the client, if none opened within
   * `connectTimeoutMs`, if the server refused the token, or if the client was closed meanwhile.
   */
  connect(): Promise<this> {
    if (this.stateValue === ConnectionState.Closed) return Promise.reject(this.closedError());
    if (this.stateValue === ConnectionState.Connected) return Promise.resolve(this);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        const err = clientError(CLIENT_REASONS.TIMEOUT, `could not connect to ${this.urls.join(', ')} within ${this.opts.connectTimeoutMs} ms`);
        this.closeWith(err);
        reject(err);
      }, this.opts.connectTimeoutMs);
      const off = this.events.on('state', ({ newState }) => {
        if (newState === ConnectionState.Connected) {
          clearTimeout(timer);
          off();
          resolve(this);
        } else if (newState === ConnectionState.Closed) {
          clearTimeout(timer);
          off();
          reject(this.closeErrorValue ?? clientError(CLIENT_REASONS.CLOSED, 'client closed before it connected'));
        }
      });
      if (this.stateValue === ConnectionState.Disconnected) void this.openSocket();
    });
  }

  /** The partitions of a topic with their epoch, start and hw. */
  meta(topic: string): Promise<TopicMeta> {
    return this.requests.ask({ op: 'meta', topic }).then((m) => ({ topic: m.topic, partitions: m.partitions }));
  }

  /** The partition count of a topic, from a cached `meta` (used for keyed placement). */
  partitionCount(topic: string): Promise<number> {
    let p = this.metaCache.get(topic);
    if (!p) {
      p = this.meta(topic);
      this.metaCache.set(topic, p);
      p.catch(() => this.metaCache.delete(topic));
    }
    return p.then((m) => m.partitions.length);
  }

  /**
   * Follows a topic (every partition, or `partition`) from `from` (default 'latest') and calls
   * `onRecords` with each run of records, in offset order per partition, with no gap and no
   * duplicate across reconnections (a gap the server reports — retention deleted what was
   * not read yet — comes as a `gap` event). Resolves once the server has answered `subbed`.
   */
  subscribe(topic: string, options: SubscribeOptions, onRecords: OnRecords): Promise<Subscription> {
    if (this.stateValue === ConnectionState.Closed) return Promise.reject(this.closedError());
    return this.recovery.add(topic, options, onRecords);
  }

  /**
   * Publishes one record through the JSON `pub` op and resolves with where it was stored,
   * once it is appended (and fsynced under `flush: always`). A string value is stored as
   * UTF-8; bytes travel as base64. For many records, use `producer()`.
   */
  publish(topic: string, value: string | Uint8Array | null, options: PublishOptions = {}): Promise<PublishAck> {
    const msg: PubAsk = { op: 'pub', topic };
    if (options.partition !== undefined) msg.partition = options.partition;
    if (options.key !== undefined) msg.key = options.key;
    if (typeof value === 'string') msg.value = value;
    else if (value !== null) msg.value64 = toBase64(value);
    if (options.headers) msg.headers = options.headers;
    const approx = 64 + topic.length + (options.key?.length ?? 0) + (typeof value === 'string' ? value.length * 3 : value ? Math.ceil(value.length / 3) * 4 : 0);
    return this.publishes.enqueue(msg, approx).then((a) => ({ partition: a.partition, offset: a.offset }));
  }

  /** A batching producer over binary PRODUCE frames (see producer.ts). */
  producer(options: ProducerOptions = {}): Producer {
    return new Producer(this, options);
  }

  /** Replaces the token on the open connection (`auth` op) and for later reconnections. */
  async setToken(token: string): Promise<void> {
    this.token = token;
    if (this.stateValue === ConnectionState.Connected) await this.requests.ask({ op: 'auth', token });
  }

  /** Round trip to the server. */
  async ping(): Promise<void> {
    await this.requests.ask({ op: 'ping' });
  }

  /**
   * Closes the connection for good. Unanswered publishes and requests are rejected with
   * `SluiceError{code: 'UNAVAILABLE', reason: 'CLOSED'}`; call `producer.flush()` and await
   * your publishes first to close without losing any.
   */
  close(): void {
    this.closeWith(null);
  }

  // ---- the producer's sink ----------------------------------------------------------------

  /** Sends a PRODUCE frame (its id is written here) and resolves with the ack. */
  sendProduce(frame: Uint8Array): Promise<AckAnswer> {
    return this.publishes.enqueue(frame, frame.length);
  }

  get maxFrameBytes(): number {
    return this.opts.maxFrameBytes;
  }

  // ---- connection lifecycle ---------------------------------------------------------------

  private setState(next: ConnectionState): void {
    const old = this.stateValue;
    if (old === next) return;
    this.stateValue = next;
    this.events.emit('state', { oldState: old, newState: next });
  }

  private clearOpenTimer(): void {
    if (this.openTimer) clearTimeout(this.openTimer);
    this.openTimer = null;
  }

  private closedError(): SluiceError {
    return this.closeErrorValue ?? clientError(CLIENT_REASONS.CLOSED, 'client is closed');
  }

  private async openSocket(): Promise<void> {
    const gen = ++this.generation;
    this.setState(ConnectionState.Connecting);
    const url = this.url;
    this.refusal = null;
    let ws: WebSocketLike;
    let token: string | undefined;
    try {
      token = this.opts.getToken ? await this.opts.getToken() : this.token;
      const Ctor = await resolveWebSocket(this.opts.WebSocket);
      if (gen !== this.generation) return;
      let target = url;
      if (token) {
        const u = new URL(url);
        u.searchParams.set('token', token);
        target = u.toString();
      }
      ws = new Ctor(target);
    } catch (err) {
      if (gen !== this.generation) return;
      this.reportError(err);
      this.onSocketGone(gen, 1006, (err as Error).message);
      return;
    }
    this.socket = ws;
    ws.binaryType = 'arraybuffer';
    onUpgradeRefused(ws, (r) => {
      if (gen === this.generation) this.refusal = { error: refusalError(url, r), status: r.status };
    });
    this.openTimer = setTimeout(() => this.drop(gen, 4000, 'connect timeout'), this.opts.connectTimeoutMs);
    ws.onopen = () => {
      if (gen !== this.generation) return;
      this.ws = ws;
      // Connected only once the server answered a first ping: a server that checks the token
      // after the upgrade (it must, for browsers, which cannot read an HTTP 401) closes with
      // 4001/4003 instead of answering, and connect() then fails with that reason.
      this.handshake = {
        id: this.allocId(),
        done: () => {
          this.clearOpenTimer();
          this.handshake = null;
          this.everConnected = true;
          this.failedAttempts = 0;
          this.backoff.reset();
          this.setState(ConnectionState.Connected);
          if (gen === this.generation) this.onConnected(gen, token); // unless a state listener closed us
        },
      };
      ws.send(JSON.stringify({ op: 'ping', id: this.handshake.id }));
    };
    ws.onmessage = (ev) => {
      if (gen === this.generation) this.onMessage(gen, ev.data);
    };
    ws.onclose = (ev) => this.onSocketGone(gen, ev.code, ev.reason);
    ws.onerror = () => {
      // A close event always follows; nothing to do here.
    };
  }

  /** Gives up the socket of generation `gen` from our side. */
  private drop(gen: number, code: number, reason: string): void {
    if (gen !== this.generation) return;
    try {
      this.socket?.close(code >= 4000 ? code : 1000, reason);
    } catch {
      // already closing
    }
    this.onSocketGone(gen, code, reason);
  }

  private onConnected(gen: number, token: string | undefined): void {
    if (this.opts.pingIntervalMs > 0) {
      this.pingTimer = setInterval(() => {
        this.requests.ask({ op: 'ping' }).catch((err: SluiceError) => {
          if (err.reason === CLIENT_REASONS.TIMEOUT) this.drop(gen, 4000, 'ping timeout');
        });
      }, this.opts.pingIntervalMs);
    }
    // Publishes first, in their original order; then subscriptions and deferred requests.
    this.publishes.onOpen();
    this.recovery.onOpen();
    this.requests.onOpen();
    if (token) this.refresh?.start(token);
  }

  /**
   * Why a socket's end refuses its token, or null: an HTTP 401/403 instead of the upgrade, or
   * close code 4001/4003 (with the server's error message when it sent one first).
   */
  private tokenRefusal(code: number): SluiceError | null {
    if (this.refusal?.error) return this.refusal.error;
    if (code === CLOSE_CODES.TOKEN_EXPIRED) return this.serverSaid ?? new SluiceError('UNAUTHORIZED', `${this.url} closed the connection: token expired or refused (4001)`, 'TOKEN_EXPIRED');
    if (code === CLOSE_CODES.FORBIDDEN) return this.serverSaid ?? new SluiceError('FORBIDDEN', `${this.url} closed the connection: forbidden (4003)`);
    return null;
  }

  /** An UNAUTHORIZED/FORBIDDEN error without id or topic: the server closes the socket next, and this says why. */
  private serverSaid: SluiceError | null = null;

  /** The socket of generation `gen` is gone: settle what was in flight, then reconnect (to the next URL) or stop. */
  private onSocketGone(gen: number, code: number, reason: string): void {
    if (gen !== this.generation) return;
    this.generation++;
    this.clearOpenTimer();
    const url = this.url;
    const wasOpen = this.stateValue === ConnectionState.Connected;
    this.handshake = null;
    this.ws = null;
    this.socket = null;
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = null;
    this.refresh?.stop();
    const refused = this.tokenRefusal(code);
    const status = this.refusal?.status;
    this.refusal = null;
    this.serverSaid = null;
    if (status !== undefined && !reason) reason = `HTTP ${status} instead of an upgrade`;
    const lost = clientError(CLIENT_REASONS.DISCONNECTED, `connection to ${url} lost (${code}${reason ? ` ${reason}` : ''})`);
    this.requests.onLost(lost);
    this.publishes.onLost(lost);
    this.recovery.onLost();
    this.metaCache.clear();
    if (this.stateValue === ConnectionState.Closed) return;
    if (!wasOpen) this.failedAttempts++;
    let fatal: SluiceError | null = null;
    if (refused) {
      // Not a network error: retrying the same token would fail the same way. A fresh token
      // from getToken() gets one more try after a 401/4001.
      this.authRefusals++;
      if (refused.code !== 'UNAUTHORIZED' || !this.opts.getToken || this.authRefusals > 1) fatal = refused;
    }
    if (!fatal && !this.opts.reconnect) fatal = clientError(CLIENT_REASONS.DISCONNECTED, `connection to ${url} lost (${code}${reason ? ` ${reason}` : ''})`);
    if (!fatal && !this.everConnected && !this.opts.retryFirstConnect && this.failedAttempts >= this.urls.length) {
      fatal = clientError(CLIENT_REASONS.DISCONNECTED, `cannot connect to ${this.urls.join(', ')} (last: ${code}${reason ? ` ${reason}` : ''})`);
    }
    this.events.emit('disconnected', { url, code, reason, willReconnect: fatal === null, error: fatal ?? refused ?? undefined });
    if (fatal) {
      this.closeWith(fatal);
      return;
    }
    this.urlIndex = (this.urlIndex + 1) % this.urls.length;
    this.setState(ConnectionState.Connecting);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.stateValue !== ConnectionState.Closed) void this.openSocket();
    }, this.backoff.next());
  }

  private closeWith(err: SluiceError | null): void {
    if (this.stateValue === ConnectionState.Closed) return;
    this.closeErrorValue = err;
    const s = this.socket;
    this.generation++;
    this.ws = null;
    this.socket = null;
    this.handshake = null;
    try {
      s?.close(1000, 'client closed');
    } catch {
      // already closing
    }
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.reconnectTimer = this.pingTimer = null;
    this.clearOpenTimer();
    this.refresh?.stop();
    const closed = err ?? clientError(CLIENT_REASONS.CLOSED, 'client closed');
    this.requests.close(closed);
    this.publishes.close(closed);
    this.recovery.close(closed);
    this.setState(ConnectionState.Closed);
  }

  private reportError(err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err));
    if (this.events.listenerCount('error') > 0) this.events.emit('error', e);
    else console.error('sluice client:', e);
  }

  // ---- inbound ----------------------------------------------------------------------------

  private onMessage(gen: number, data: unknown): void {
    if (typeof data === 'string') {
      let m: unknown = null;
      try {
        m = JSON.parse(data);
      } catch {
        // reported below
      }
      if (!isMessage(m)) {
        this.reportError(clientError(CLIENT_REASONS.PROTOCOL, 'server sent a text frame that is not a JSON message'));
        return;
      }
      try {
        this.onControl(m);
      } catch (err) {
        // A message whose fields are not what its op promises: start again on a new connection.
        this.reportError(clientError(CLIENT_REASONS.PROTOCOL, `server sent a malformed ${m.op}: ${(err as Error).message}`));
        this.drop(gen, 4000, 'malformed message');
      }
      return;
    }
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : null;
    if (!bytes || bytes.length === 0 || bytes[0] !== FRAME_TYPES.DATA) {
      this.reportError(clientError(CLIENT_REASONS.PROTOCOL, 'server sent an unknown binary frame'));
      return;
    }
    this.authRefusals = 0;
    try {
      this.recovery.onData(bytes);
    } catch (err) {
      // A batch that fails its CRC or does not parse: reconnect and read it again from where we are.
      this.reportError(err);
      this.drop(gen, 4000, 'bad data frame');
    }
  }

  private onControl(m: ServerMessage): void {
    // Any answer but an error shows that the server took the token.
    if (m.op !== 'error') this.authRefusals = 0;
    const hs = this.handshake;
    if (hs && m.op === 'pong' && m.id === hs.id) return hs.done();
    if (m.op === 'gap') return this.recovery.onGap(m);
    if (hasId(m) && (this.publishes.onAnswer(m) || this.requests.onAnswer(m))) return;
    if (m.op === 'error') {
      const err = wireError(m.code, m.message);
      if (this.recovery.onSubscriptionError(m, err)) return;
      if (m.id === undefined && (err.code === 'UNAUTHORIZED' || err.code === 'FORBIDDEN')) {
        // "it gets UNAUTHORIZED and is closed (code 4001)": the close reports it.
        this.serverSaid = err;
        return;
      }
      this.reportError(err);
      return;
    }
    const what = m.op === 'ack' ? `an ack for unknown publish id ${String(m.id)}` : `unexpected message ${JSON.stringify(m).slice(0, 200)}`;
    this.reportError(clientError(CLIENT_REASONS.PROTOCOL, `server sent ${what}`));
  }
}

/** `ws://host:port` → `ws://host:port/v1/ws`; http(s) URLs become ws(s). */
export function wsUrl(url: string): string {
  const u = new URL(url);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  if (u.protocol === 'https:') u.protocol = 'wss:';
  if (u.pathname === '' || u.pathname === '/') u.pathname = '/v1/ws';
  return u.toString();
}

/**
 * Creates a client and resolves once its first connection is open. Several URLs (the nodes
 * of a cluster, or an array split from `a,b,c`) are tried in order; a lost connection moves
 * to the next one.
 */
export function connect(url: string | readonly string[], options: ClientOptions = {}): Promise<SluiceClient> {
  return new SluiceClient(url, options).connect();
}
