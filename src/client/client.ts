/**
 * The sluice client: one WebSocket (protocol §3) that reconnects by itself, the
 * subscriptions that resume over it, and the publishes that wait for their acks.
 *
 * Lifetimes and guarantees, in one place:
 * - Every socket gets a generation number; a callback of a socket whose generation is not
 *   the current one is ignored, so a dead socket's late `message` or `close` can never touch
 *   the state of its successor.
 * - Answers are matched by request id (uint32, wrapping). The server sends one answer per
 *   request, and answers to publishes in the order the publishes arrived (§3), which is also
 *   the order this client re-sends them after a reconnection.
 * - Subscriptions resume after every reconnection from their resume point `{epoch, offset}`
 *   (see subscription.ts); the `subscribed` event says whether the resume was exact.
 * - Publishes: see `ClientOptions.retryPublishes` — never dropped silently.
 */
import { Backoff } from './backoff.ts';
import { CLIENT_REASONS, CLOSE_CODES, ConnectionState, FRAME_TYPES, SluiceError, clientError, wireError } from './codes.ts';
import { Emitter } from './emitter.ts';
import { type Message, decodeData, parseDataFrame, setProduceId, toBase64 } from './frames.ts';
import { Producer, type ProducerOptions } from './producer.ts';
import { type OnRecords, type PartState, Subscription } from './subscription.ts';
import { type WebSocketLike, resolveWebSocket } from './transport.ts';
import type { ClientEvents, ClientOptions, From, PublishAck, PublishOptions, ResumeReason, SubscribeOptions, TopicMeta } from './types.ts';

type Json = Record<string, unknown>;

interface Pending {
  onAnswer(msg: Json): void;
  onError(err: SluiceError): void;
  timer: ReturnType<typeof setTimeout> | null;
}

/** A publish (JSON `pub` or binary PRODUCE) from the moment it is asked until its answer. */
interface PendingPublish {
  /** The JSON message (its id is set at each send) or the PRODUCE frame (id rewritten at each send). */
  msg: Json | Uint8Array;
  bytes: number;
  id: number;
  resolve(ack: Json): void;
  reject(err: SluiceError): void;
}

/** A control request asked while disconnected, sent once connected. */
interface Deferred {
  msg: Json;
  pending: Pending;
}

type SubMode = 'initial' | 'resume' | 'restart' | 'out-of-range';

const utf8 = new TextEncoder();

function wireFrom(from: From): unknown {
  if (typeof from === 'string') return from;
  if ('time' in from) return { time: from.time };
  return { offset: from.offset };
}

export class SluiceClient {
  readonly url: string;
  private readonly opts: Required<Omit<ClientOptions, 'token' | 'getToken' | 'WebSocket' | 'backoff'>> & ClientOptions;
  private readonly events: Emitter<ClientEvents>;
  private stateValue = ConnectionState.Disconnected;
  private ws: WebSocketLike | null = null;
  /** Generation of the current socket; bumped whenever a socket is opened or given up. */
  private generation = 0;
  private nextId = 0;
  private readonly backoff: Backoff;
  private token: string | undefined;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private readonly pending = new Map<number, Pending>();
  private deferred: Deferred[] = [];
  /** Unanswered publishes in the order they were asked (Set keeps insertion order). */
  private readonly publishes = new Set<PendingPublish>();
  private readonly publishById = new Map<number, PendingPublish>();
  private pendingBytes = 0;
  private readonly subs = new Set<Subscription>();
  private readonly metaCache = new Map<string, Promise<TopicMeta>>();

  constructor(url: string, options: ClientOptions = {}) {
    this.url = wsUrl(url);
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
      ...options,
    };
    this.token = options.token;
    this.backoff = new Backoff(options.backoff);
    this.events = new Emitter<ClientEvents>((err) => this.reportError(err));
  }

  // ---- public API -------------------------------------------------------------------------

  get state(): ConnectionState {
    return this.stateValue;
  }

  on<K extends keyof ClientEvents>(name: K, fn: (e: ClientEvents[K]) => void): () => void {
    return this.events.on(name, fn);
  }

  /**
   * Starts connecting (and reconnecting, unless `reconnect: false`). Resolves once the first
   * connection is open; rejects, and closes the client, if none opened within
   * `connectTimeoutMs` or the client was closed meanwhile.
   */
  connect(): Promise<this> {
    if (this.stateValue === ConnectionState.Closed) return Promise.reject(clientError(CLIENT_REASONS.CLOSED, 'client is closed'));
    if (this.stateValue === ConnectionState.Connected) return Promise.resolve(this);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        const err = clientError(CLIENT_REASONS.TIMEOUT, `could not connect to ${this.url} within ${this.opts.connectTimeoutMs} ms`);
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
          reject(this.closeReason ?? clientError(CLIENT_REASONS.CLOSED, 'client closed before it connected'));
        }
      });
      if (this.stateValue === ConnectionState.Disconnected) void this.openSocket();
    });
  }

  /** The partitions of a topic with their epoch, start and hw. */
  meta(topic: string): Promise<TopicMeta> {
    return this.request({ op: 'meta', topic }).then((m) => ({ topic: m.topic as string, partitions: m.partitions as TopicMeta['partitions'] }));
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
    if (this.stateValue === ConnectionState.Closed) return Promise.reject(clientError(CLIENT_REASONS.CLOSED, 'client is closed'));
    const sub = new Subscription(topic, options.partition, options.from ?? 'latest', onRecords, (s) => this.unsubscribe(s), (err) => this.reportError(err));
    // Listeners given here see the events that come before the promise resolves.
    if (options.onSubscribed) sub.on('subscribed', options.onSubscribed);
    if (options.onGap) sub.on('gap', options.onGap);
    this.subs.add(sub);
    const done = new Promise<Subscription>((resolve, reject) => {
      sub.settle = { resolve, reject };
    });
    if (this.stateValue === ConnectionState.Connected) this.sendSubscription(sub);
    return done;
  }

  /**
   * Publishes one record through the JSON `pub` op and resolves with where it was stored,
   * once it is appended (and fsynced under `flush: always`). A string value is stored as
   * UTF-8; bytes travel as base64. For many records, use `producer()`.
   */
  publish(topic: string, value: string | Uint8Array | null, options: PublishOptions = {}): Promise<PublishAck> {
    const msg: Json = { op: 'pub', topic };
    if (options.partition !== undefined) msg.partition = options.partition;
    if (options.key !== undefined) msg.key = options.key;
    if (typeof value === 'string') msg.value = value;
    else if (value !== null) msg.value64 = toBase64(value);
    if (options.headers) msg.headers = options.headers;
    const approx = 64 + topic.length + (options.key?.length ?? 0) + (typeof value === 'string' ? value.length * 3 : value ? Math.ceil(value.length / 3) * 4 : 0);
    return this.enqueuePublish(msg, approx).then((a) => ({ partition: a.partition as number, offset: a.offset as number }));
  }

  /** A batching producer over binary PRODUCE frames (see producer.ts). */
  producer(options: ProducerOptions = {}): Producer {
    return new Producer(this, options);
  }

  /** Replaces the token on the open connection (`auth` op) and for later reconnections. */
  async setToken(token: string): Promise<void> {
    this.token = token;
    if (this.stateValue === ConnectionState.Connected) await this.request({ op: 'auth', token });
  }

  /** Round trip to the server. */
  async ping(): Promise<void> {
    await this.request({ op: 'ping' });
  }

  /**
   * Closes the connection for good. Unanswered publishes and requests are rejected with
   * `SluiceError{code: 'UNAVAILABLE', reason: 'CLOSED'}`; call `producer.flush()` and await
   * your publishes first to close without losing any.
   */
  close(): void {
    this.closeWith(null);
  }

  // ---- internal API for the producer ------------------------------------------------------

  /** @internal Sends a PRODUCE frame (its id is written here) and resolves with the ack. */
  sendProduce(frame: Uint8Array): Promise<Json> {
    return this.enqueuePublish(frame, frame.length);
  }

  /** @internal */
  get maxFrameBytes(): number {
    return this.opts.maxFrameBytes;
  }

  // ---- connection lifecycle ---------------------------------------------------------------

  private closeReason: SluiceError | null = null;
  private everConnected = false;

  private setState(next: ConnectionState): void {
    const old = this.stateValue;
    if (old === next) return;
    this.stateValue = next;
    this.events.emit('state', { oldState: old, newState: next });
  }

  private async openSocket(): Promise<void> {
    const gen = ++this.generation;
    this.setState(ConnectionState.Connecting);
    let url = this.url;
    let ws: WebSocketLike;
    try {
      const token = this.opts.getToken ? await this.opts.getToken() : this.token;
      if (token) {
        const u = new URL(url);
        u.searchParams.set('token', token);
        url = u.toString();
      }
      const Ctor = await resolveWebSocket(this.opts.WebSocket);
      if (gen !== this.generation) return;
      ws = new Ctor(url);
    } catch (err) {
      if (gen !== this.generation) return;
      this.reportError(err);
      this.onSocketGone(gen, 1006, (err as Error).message);
      return;
    }
    ws.binaryType = 'arraybuffer';
    const openTimer = setTimeout(() => this.dropSocket(gen, 4000, 'connect timeout'), this.opts.connectTimeoutMs);
    ws.onopen = () => {
      if (gen !== this.generation) return;
      clearTimeout(openTimer);
      this.ws = ws;
      this.everConnected = true;
      this.backoff.reset();
      this.setState(ConnectionState.Connected);
      if (gen !== this.generation) return; // a state listener closed us
      this.onConnected(gen);
    };
    ws.onmessage = (ev) => {
      if (gen !== this.generation) return;
      this.onMessage(gen, ev.data);
    };
    ws.onclose = (ev) => {
      clearTimeout(openTimer);
      if (gen !== this.generation) return;
      this.onSocketGone(gen, ev.code, ev.reason);
    };
    ws.onerror = () => {
      // A close event always follows; nothing to do here.
    };
    this.currentSocket = ws;
  }

  /** The socket being opened or open (ws is set only once it is open). */
  private currentSocket: WebSocketLike | null = null;

  /** Gives up the socket of generation `gen` from our side. */
  private dropSocket(gen: number, code: number, reason: string): void {
    if (gen !== this.generation) return;
    const s = this.currentSocket;
    try {
      s?.close(code >= 4000 ? code : 1000, reason);
    } catch {
      // already closing
    }
    this.onSocketGone(gen, code, reason);
  }

  private onConnected(gen: number): void {
    if (this.opts.pingIntervalMs > 0) {
      this.pingTimer = setInterval(() => {
        if (gen !== this.generation) return;
        this.request({ op: 'ping' }).catch((err: SluiceError) => {
          if (err.reason === CLIENT_REASONS.TIMEOUT) this.dropSocket(gen, 4000, 'ping timeout');
        });
      }, this.opts.pingIntervalMs);
    }
    // Publishes first, in their original order, then subscriptions, then deferred requests.
    for (const p of this.publishes) this.sendPublish(p);
    for (const s of this.subs) this.sendSubscription(s);
    const deferred = this.deferred;
    this.deferred = [];
    for (const d of deferred) this.sendRequest(d.msg, d.pending);
  }

  /** The socket of generation `gen` is gone: settle what was in flight, then reconnect or stop. */
  private onSocketGone(gen: number, code: number, reason: string): void {
    if (gen !== this.generation) return;
    this.generation++;
    this.ws = null;
    this.currentSocket = null;
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = null;
    const lost = clientError(CLIENT_REASONS.DISCONNECTED, `connection lost (${code}${reason ? ` ${reason}` : ''})`);
    // Control requests in flight are answered by nobody now.
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) {
      if (p.timer) clearTimeout(p.timer);
      p.onError(lost);
    }
    // Publishes: kept for the next connection, or rejected; never dropped silently.
    this.publishById.clear();
    if (!this.opts.retryPublishes) this.rejectPublishes(lost);
    this.metaCache.clear();
    if (this.stateValue === ConnectionState.Closed) return;
    let willReconnect = this.opts.reconnect;
    if (!this.everConnected && !this.opts.retryFirstConnect) willReconnect = false;
    if (code === CLOSE_CODES.TOKEN_EXPIRED && !this.opts.getToken) willReconnect = false;
    this.events.emit('disconnected', { code, reason, willReconnect });
    if (!willReconnect) {
      const err =
        code === CLOSE_CODES.TOKEN_EXPIRED
          ? new SluiceError('UNAUTHORIZED', 'token expired and no getToken() to refresh it', 'UNAUTHORIZED')
          : clientError(CLIENT_REASONS.DISCONNECTED, this.everConnected ? `connection lost (${code})` : `cannot connect to ${this.url} (${code}${reason ? ` ${reason}` : ''})`);
      this.closeWith(err);
      return;
    }
    this.setState(ConnectionState.Connecting);
    const delay = this.backoff.next();
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.stateValue !== ConnectionState.Closed) void this.openSocket();
    }, delay);
  }

  private closeWith(err: SluiceError | null): void {
    if (this.stateValue === ConnectionState.Closed) return;
    this.closeReason = err;
    const s = this.currentSocket;
    this.generation++;
    this.ws = null;
    this.currentSocket = null;
    try {
      s?.close(1000, 'client closed');
    } catch {
      // already closing
    }
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.reconnectTimer = this.pingTimer = null;
    const closed = err ?? clientError(CLIENT_REASONS.CLOSED, 'client closed');
    for (const p of this.pending.values()) {
      if (p.timer) clearTimeout(p.timer);
      p.onError(closed);
    }
    this.pending.clear();
    for (const d of this.deferred) {
      if (d.pending.timer) clearTimeout(d.pending.timer);
      d.pending.onError(closed);
    }
    this.deferred = [];
    this.rejectPublishes(closed);
    for (const sub of this.subs) {
      sub.status = 'unsubscribed';
      sub.settle?.reject(closed);
      sub.settle = null;
    }
    this.subs.clear();
    this.setState(ConnectionState.Closed);
  }

  private rejectPublishes(err: SluiceError): void {
    const all = [...this.publishes];
    this.publishes.clear();
    this.publishById.clear();
    this.pendingBytes = 0;
    for (const p of all) p.reject(err);
  }

  private reportError(err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err));
    if (this.events.listenerCount('error') > 0) this.events.emit('error', e);
    else console.error('sluice client:', e);
  }

  // ---- requests ---------------------------------------------------------------------------

  private allocId(): number {
    this.nextId = (this.nextId + 1) >>> 0;
    return this.nextId;
  }

  /** A control request whose answer resolves the promise (an error answer rejects it). */
  private request(msg: Json): Promise<Json> {
    return new Promise((resolve, reject) => {
      this.requestWith(msg, { onAnswer: resolve, onError: reject, timer: null });
    });
  }

  private requestWith(msg: Json, pending: Pending): void {
    if (this.stateValue === ConnectionState.Closed) {
      pending.onError(this.closeReason ?? clientError(CLIENT_REASONS.CLOSED, 'client is closed'));
      return;
    }
    let settled = false;
    const once = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      fn();
    };
    const p: Pending = {
      onAnswer: (m) => once(() => pending.onAnswer(m)),
      onError: (e) => once(() => pending.onError(e)),
      timer: null,
    };
    p.timer = setTimeout(() => {
      p.timer = null;
      for (const [id, q] of this.pending) if (q === p) this.pending.delete(id);
      this.deferred = this.deferred.filter((d) => d.pending !== p);
      p.onError(clientError(CLIENT_REASONS.TIMEOUT, `no answer to ${String(msg.op)} within ${this.opts.requestTimeoutMs} ms`));
    }, this.opts.requestTimeoutMs);
    if (this.stateValue === ConnectionState.Connected) this.sendRequest(msg, p);
    else this.deferred.push({ msg, pending: p });
  }

  private sendRequest(msg: Json, p: Pending): void {
    const id = this.allocId();
    this.pending.set(id, p);
    this.ws!.send(JSON.stringify({ ...msg, id }));
  }

  private enqueuePublish(msg: Json | Uint8Array, bytes: number): Promise<Json> {
    return new Promise((resolve, reject) => {
      if (this.stateValue === ConnectionState.Closed) {
        reject(this.closeReason ?? clientError(CLIENT_REASONS.CLOSED, 'client is closed'));
        return;
      }
      if (bytes > this.opts.maxFrameBytes) {
        const exact = msg instanceof Uint8Array ? msg.length : utf8.encode(JSON.stringify(msg)).length + 16;
        if (exact > this.opts.maxFrameBytes) {
          reject(clientError(CLIENT_REASONS.FRAME_TOO_LARGE, `a ${exact}-byte frame exceeds maxFrameBytes ${this.opts.maxFrameBytes}`));
          return;
        }
      }
      if (this.publishes.size >= this.opts.maxPendingPublishes || this.pendingBytes + bytes > this.opts.maxPendingBytes) {
        reject(clientError(CLIENT_REASONS.QUEUE_FULL, `${this.publishes.size} publishes (${this.pendingBytes} bytes) await their answer; wait for some`));
        return;
      }
      const p: PendingPublish = {
        msg,
        bytes,
        id: -1,
        resolve: (a) => {
          this.settlePublish(p);
          resolve(a);
        },
        reject: (e) => {
          this.settlePublish(p);
          reject(e);
        },
      };
      this.publishes.add(p);
      this.pendingBytes += bytes;
      if (this.stateValue === ConnectionState.Connected) this.sendPublish(p);
    });
  }

  private settlePublish(p: PendingPublish): void {
    if (this.publishes.delete(p)) this.pendingBytes -= p.bytes;
    if (p.id >= 0 && this.publishById.get(p.id) === p) this.publishById.delete(p.id);
  }

  private sendPublish(p: PendingPublish): void {
    const id = this.allocId();
    p.id = id;
    this.publishById.set(id, p);
    if (p.msg instanceof Uint8Array) {
      setProduceId(p.msg, id);
      this.ws!.send(p.msg);
    } else {
      this.ws!.send(JSON.stringify({ ...p.msg, id }));
    }
  }

  // ---- subscriptions ----------------------------------------------------------------------

  private sendSubscription(sub: Subscription): void {
    if (sub.parts.size === 0) {
      const msg: Json = { op: 'sub', topic: sub.topic, from: wireFrom(sub.from) };
      if (sub.partition !== undefined) msg.partition = sub.partition;
      this.sendSub(sub, msg, 'initial');
      return;
    }
    for (const p of sub.parts.values()) {
      // A partition whose epoch changed restarts from its earliest record; its old offset means nothing there.
      if (p.discarding) this.sendSub(sub, { op: 'sub', topic: sub.topic, partition: p.partition, from: 'earliest' }, 'restart');
      else this.sendSub(sub, { op: 'sub', topic: sub.topic, partition: p.partition, from: { offset: p.next } }, 'resume');
    }
  }

  private sendSub(sub: Subscription, msg: Json, mode: SubMode): void {
    const gen = this.generation;
    this.requestWith(msg, {
      timer: null,
      onAnswer: (m) => {
        if (gen !== this.generation || !this.subs.has(sub)) return;
        this.onSubbed(sub, m, mode);
      },
      onError: (err) => {
        if (!this.subs.has(sub)) return;
        if (err.reason === CLIENT_REASONS.DISCONNECTED) return; // re-sent on the next connection
        if (err.reason === CLIENT_REASONS.TIMEOUT && gen === this.generation) {
          this.dropSocket(gen, 4000, 'sub timeout'); // reconnect and try again
          return;
        }
        if (err.code === 'OFFSET_OUT_OF_RANGE' && mode === 'resume' && typeof msg.partition === 'number') {
          // The partition now ends below where we stopped: go on from its hw and say so.
          this.sendSub(sub, { op: 'sub', topic: sub.topic, partition: msg.partition, from: 'latest' }, 'out-of-range');
          return;
        }
        this.failSubscription(sub, err);
      },
    });
  }

  private onSubbed(sub: Subscription, m: Json, mode: SubMode): void {
    const answer = (m.partitions as { partition: number; epoch: string; next: number; hw: number }[]) ?? [];
    let exact = mode !== 'initial';
    let reason: ResumeReason = mode === 'initial' ? 'initial' : mode === 'resume' ? 'resumed' : mode === 'restart' ? 'epoch-changed' : 'offset-out-of-range';
    if (mode === 'restart' || mode === 'out-of-range') exact = false;
    const from = sub.from;
    const reported: PartState[] = [];
    for (const e of answer) {
      let part = sub.parts.get(e.partition);
      let knownEpoch = part?.epoch;
      let expectNext = part?.next;
      if (mode === 'initial' && typeof from === 'object' && 'epoch' in from) {
        knownEpoch = from.epoch;
        expectNext = from.offset;
        exact = true;
        reason = 'resumed';
      }
      if (mode === 'initial' || mode === 'restart' || !part) {
        part = { partition: e.partition, epoch: e.epoch, next: e.next, hw: e.hw, discarding: false };
        sub.parts.set(e.partition, part);
      }
      if ((mode === 'resume' || mode === 'initial' || mode === 'out-of-range') && knownEpoch !== undefined && knownEpoch !== e.epoch) {
        // A different history under the same name: offsets from the old one mean nothing here.
        part.epoch = e.epoch;
        part.discarding = true;
        this.requestWith({ op: 'unsub', topic: sub.topic, partition: e.partition }, { timer: null, onAnswer: () => {}, onError: () => {} });
        this.sendSub(sub, { op: 'sub', topic: sub.topic, partition: e.partition, from: 'earliest' }, 'restart');
        continue;
      }
      part.hw = e.hw;
      part.discarding = false;
      if (expectNext !== undefined && e.next !== expectNext) {
        exact = false;
        if (e.next > part.next) this.emitGap(sub, part, e.next);
      }
      part.next = e.next;
      reported.push(part);
    }
    if (reported.length > 0 || answer.length === 0) {
      const ev = {
        topic: sub.topic,
        resumed: exact,
        reason,
        partitions: reported.map((p) => ({ partition: p.partition, epoch: p.epoch, offset: p.next, hw: p.hw })),
      };
      sub.lastSubscribed = ev;
      sub.events.emit('subscribed', ev);
    }
    if (sub.status === 'subscribing' && [...sub.parts.values()].every((p) => !p.discarding)) {
      sub.status = 'subscribed';
      sub.settle?.resolve(sub);
      sub.settle = null;
    }
  }

  private emitGap(sub: Subscription, part: PartState, to: number): void {
    const from = part.next;
    part.next = to;
    sub.events.emit('gap', { topic: sub.topic, partition: part.partition, from, to });
  }

  private failSubscription(sub: Subscription, err: Error): void {
    this.subs.delete(sub);
    sub.status = 'failed';
    if (sub.settle) {
      sub.settle.reject(err);
      sub.settle = null;
    } else if (sub.events.listenerCount('error') > 0) {
      sub.events.emit('error', err);
    } else {
      this.reportError(err);
    }
  }

  private unsubscribe(sub: Subscription): Promise<void> {
    if (!this.subs.delete(sub)) return Promise.resolve();
    sub.status = 'unsubscribed';
    sub.settle?.reject(clientError(CLIENT_REASONS.CLOSED, 'unsubscribed before the server answered'));
    sub.settle = null;
    if (this.stateValue !== ConnectionState.Connected) return Promise.resolve();
    const msg: Json = { op: 'unsub', topic: sub.topic };
    if (sub.partition !== undefined) msg.partition = sub.partition;
    return this.request(msg).then(
      () => undefined,
      (err: SluiceError) => {
        if (err.reason !== CLIENT_REASONS.DISCONNECTED && err.reason !== CLIENT_REASONS.CLOSED) throw err;
      },
    );
  }

  private findSub(topic: string, partition: number): Subscription | undefined {
    for (const s of this.subs) if (s.topic === topic && (s.partition === undefined || s.partition === partition)) return s;
    return undefined;
  }

  // ---- inbound ----------------------------------------------------------------------------

  private onMessage(gen: number, data: unknown): void {
    if (typeof data === 'string') {
      let m: Json;
      try {
        m = JSON.parse(data) as Json;
      } catch {
        this.reportError(clientError(CLIENT_REASONS.PROTOCOL, 'server sent a text frame that is not JSON'));
        return;
      }
      this.onControl(m);
      return;
    }
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : null;
    if (!bytes || bytes.length === 0 || bytes[0] !== FRAME_TYPES.DATA) {
      this.reportError(clientError(CLIENT_REASONS.PROTOCOL, 'server sent an unknown binary frame'));
      return;
    }
    try {
      this.onData(bytes);
    } catch (err) {
      // A batch that fails its CRC or does not parse: reconnect and read it again from where we are.
      this.reportError(err);
      this.dropSocket(gen, 4000, 'bad data frame');
    }
  }

  private onData(bytes: Uint8Array): void {
    const df = parseDataFrame(bytes);
    const sub = this.findSub(df.topic, df.partition);
    if (!sub) return; // unsubscribed meanwhile
    const part = sub.parts.get(df.partition);
    if (!part || part.discarding) return;
    // "Only the first batch sent for a partition of a subscription may hold records below
    // the offset it started from (a batch is never split); the client skips those."
    const records: Message[] = decodeData(df, part.next);
    if (records.length === 0) return;
    if (records[0].offset !== part.next) {
      if (records[0].offset > part.next) this.emitGap(sub, part, records[0].offset);
      else throw clientError(CLIENT_REASONS.PROTOCOL, `records out of order on ${df.topic}/${df.partition}`);
    }
    for (let i = 1; i < records.length; i++) {
      if (records[i].offset !== records[i - 1].offset + 1) throw clientError(CLIENT_REASONS.PROTOCOL, `offsets not dense on ${df.topic}/${df.partition}`);
    }
    part.next = records[records.length - 1].offset + 1;
    if (part.next > part.hw) part.hw = part.next;
    try {
      sub.onRecords(records, sub);
    } catch (err) {
      this.reportError(err);
    }
  }

  private onControl(m: Json): void {
    const op = m.op;
    const id = typeof m.id === 'number' ? m.id : undefined;
    if (op === 'ack' || (op === 'error' && id !== undefined && this.publishById.has(id))) {
      const p = id !== undefined ? this.publishById.get(id) : undefined;
      if (!p) {
        this.reportError(clientError(CLIENT_REASONS.PROTOCOL, `answer for unknown publish id ${String(m.id)}`));
        return;
      }
      if (op === 'ack') p.resolve(m);
      else p.reject(wireError(m.code, m.message));
      return;
    }
    if (op === 'gap') {
      const sub = this.findSub(m.topic as string, m.partition as number);
      const part = sub?.parts.get(m.partition as number);
      if (sub && part && (m.to as number) > part.next) this.emitGap(sub, part, m.to as number);
      else if (sub && !part) sub.events.emit('gap', { topic: sub.topic, partition: m.partition as number, from: m.from as number, to: m.to as number });
      return;
    }
    if (id !== undefined) {
      const p = this.pending.get(id);
      if (p) {
        this.pending.delete(id);
        if (p.timer) clearTimeout(p.timer);
        if (op === 'error') p.onError(wireError(m.code, m.message));
        else p.onAnswer(m);
        return;
      }
    }
    if (op === 'error') {
      const err = wireError(m.code, m.message);
      // An error about a topic we follow (e.g. UNKNOWN_TOPIC after DELETE) ends those subscriptions.
      if (typeof m.topic === 'string') {
        const hit = [...this.subs].filter((s) => s.topic === m.topic && (typeof m.partition !== 'number' || s.partition === undefined || s.partition === m.partition));
        if (hit.length > 0) {
          for (const s of hit) this.failSubscription(s, err);
          return;
        }
        // The same deletion is reported once per partition: the first one ended the subscription.
        if (err.code === 'UNKNOWN_TOPIC') return;
      }
      this.reportError(err);
      return;
    }
    this.reportError(clientError(CLIENT_REASONS.PROTOCOL, `unexpected message ${JSON.stringify(m).slice(0, 200)}`));
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

/** Creates a client and resolves once its first connection is open. */
export function connect(url: string, options: ClientOptions = {}): Promise<SluiceClient> {
  return new SluiceClient(url, options).connect();
}

