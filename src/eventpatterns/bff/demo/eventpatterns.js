// eventpatterns real-time client: one WebSocket to the gateway, many filtered
// subscriptions, automatic reconnection and gapless resume.
//
// A dependency-free ES module for browsers and React Native (and Node >= 22, or any
// runtime given a WebSocket constructor). It speaks the gateway's wire protocol
// (docs/realtime-protocol.md): JSON text frames `authenticate`, `subscribe`,
// `unsubscribe`, `ping` from the client; `connected`, `subscribed`, `event`, `error`,
// `resync-required`, `token-expiring`, `pong` from the server.
//
// Delivery: each subscription remembers the position of the last event it delivered
// and, after a reconnection, subscribes again with `since` = that position, so the
// gateway replays what was missed and then goes live. An event whose position is not
// newer than the last one delivered is dropped, so the application sees every event
// once, in log order, across reconnections.

/** @typedef {"connecting" | "open" | "reconnecting" | "closed"} ClientState */

/**
 * @typedef {object} BackoffOptions
 * @property {number} [initial] First delay bound in milliseconds (default 500).
 * @property {number} [max] Largest delay bound in milliseconds (default 30000).
 * @property {number} [factor] Growth of the bound per failed attempt (default 2).
 * @property {number} [maxAttempts] Attempts in a row before giving up (default Infinity).
 */

/**
 * @typedef {object} ConnectOptions
 * @property {string} [token] A static token, sent in the first `authenticate` frame.
 * @property {() => (string | Promise<string>)} [getToken] Called before every connection
 *   and on `token-expiring`, for a fresh token (takes precedence over `token`).
 * @property {BackoffOptions} [backoff] Reconnection delays (exponential, full jitter).
 * @property {number} [pingInterval] Milliseconds between `ping` frames (default 20000; 0 = off).
 * @property {number} [pongTimeout] Milliseconds to wait for any frame after a ping before
 *   the connection is considered dead and re-established (default 10000).
 * @property {string | string[]} [protocols] WebSocket subprotocols.
 * @property {WebSocketConstructor} [WebSocket] The WebSocket class (default `globalThis.WebSocket`).
 * @property {() => number} [random] Random source in [0, 1) for the jitter (default `Math.random`).
 */

/**
 * @typedef {new (url: string, protocols?: string | string[]) => WebSocketLike} WebSocketConstructor
 */

/**
 * @typedef {object} WebSocketLike
 * @property {number} readyState
 * @property {(data: string) => void} send
 * @property {(code?: number, reason?: string) => void} close
 * @property {((ev: any) => void) | null} onopen
 * @property {((ev: any) => void) | null} onmessage
 * @property {((ev: any) => void) | null} onclose
 * @property {((ev: any) => void) | null} onerror
 */

/**
 * @typedef {object} SubscribeSpec
 * @property {Record<string, unknown>} [pattern] An EventBridge event pattern.
 * @property {Record<string, unknown>} [filter] An AppSync subscription filter group.
 * @property {string} [since] Start after this position (default: live from now).
 * @property {string} [id] The subscription id (default `s1`, `s2`, ...).
 * @property {string} [presence] A presence channel to be listed in while subscribed.
 * @property {boolean} [watch] With `presence`: keep `subscription.members` and call
 *   `onPresence` with the channel's `sync`, `join` and `leave` frames.
 */

/**
 * @typedef {object} PresenceChange
 * @property {"sync" | "join" | "leave"} event
 * @property {string} channel
 * @property {string[]} [members] With `sync`: every member now.
 * @property {string} [member] With `join` / `leave`: who.
 * @property {Record<string, unknown>} [info] With `join` / `leave`: that connection's info.
 * @property {boolean} [expired] With `leave`: it stopped heartbeating.
 */

/**
 * @typedef {object} EventMeta
 * @property {string} position The event's position in the log.
 * @property {Subscription} subscription The subscription that delivered it.
 */

/**
 * @typedef {object} SubscriptionError
 * @property {string} code The gateway's `ErrorCode` (e.g. `invalid_pattern`, `forbidden`).
 * @property {string} message What was wrong.
 */

/**
 * @typedef {object} ResyncInfo
 * @property {"position_expired" | "stale_position" | "invalid_position" | "overflow" | string} reason
 * @property {string | null} position The last position the gateway delivered.
 * @property {boolean} resumed True when the client subscribed again with `since` (overflow:
 *   nothing is lost); false when it subscribed again live from now (refetch your state).
 */

/**
 * @typedef {object} SubscribeHandlers
 * @property {(error: SubscriptionError) => void} [onError] The gateway refused the
 *   subscription (it is closed).
 * @property {(info: ResyncInfo) => (boolean | void)} [onResync] The gateway ended the
 *   subscription with `resync-required`. The client subscribes again (see
 *   `ResyncInfo.resumed`) unless this returns `false`.
 * @property {(change: PresenceChange, members: ReadonlySet<string>) => void} [onPresence]
 *   With `watch`: a presence frame, after `subscription.members` was updated with it.
 */

/** @typedef {{code: number, reason: string, willReconnect: boolean}} CloseInfo */

/**
 * @typedef {object} ClientEvents
 * @property {{connection: string, principal: string, expiresAt: number | null}} open
 * @property {CloseInfo} close
 * @property {{code: string, message: string} | Error} error
 * @property {ClientState} state
 */

export const CLOSE_NORMAL = 1000;
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_AUTHENTICATION_FAILED = 4401;
export const CLOSE_REVOKED = 4403;
export const CLOSE_AUTHENTICATION_TIMEOUT = 4408;
export const CLOSE_SLOW_CONSUMER = 4409;
export const CLOSE_TOO_MANY = 4429;
// The client's own close when a connection stopped answering pings (4000-4999: private use).
export const CLOSE_DEAD = 4000;

// Error codes after which the gateway did not keep the subscription.
const FATAL_SUBSCRIBE_ERRORS = new Set([
  "invalid_pattern",
  "forbidden",
  "duplicate_id",
  "too_many_subscriptions",
  "invalid_frame",
  "invalid_position",
]);

const ID_RE = /^[A-Za-z0-9_.:-]{1,128}$/;

/**
 * Return the delay before reconnection attempt `attempt` (0-based): "full jitter",
 * a uniform draw in [0, min(max, initial * factor ** attempt)).
 *
 * @param {number} attempt
 * @param {BackoffOptions} [options]
 * @param {() => number} [random]
 * @returns {number} Milliseconds.
 */
export function backoffDelay(attempt, options = {}, random = Math.random) {
  const initial = options.initial ?? 500;
  const max = options.max ?? 30000;
  const factor = options.factor ?? 2;
  // Cap the exponent so that the bound never overflows to Infinity.
  const bound = Math.min(max, initial * Math.pow(factor, Math.min(attempt, 64)));
  return Math.floor(random() * bound);
}

/** @param {string} a @param {string} b */
function compareDigits(a, b) {
  // Offsets are unbounded decimal integers: compare without Number's 2**53 limit.
  const x = a.replace(/^0+(?=\d)/, "");
  const y = b.replace(/^0+(?=\d)/, "");
  if (x.length !== y.length) return x.length < y.length ? -1 : 1;
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * Parse a position `"<epoch>:<offset>"` (offset `"123"` or `"<ms>-<seq>"`).
 *
 * @param {string} position
 * @returns {{epoch: string, parts: string[]} | null} `null` if it is not of that form.
 */
export function parsePosition(position) {
  if (typeof position !== "string") return null;
  const colon = position.lastIndexOf(":");
  const epoch = colon < 0 ? "" : position.slice(0, colon);
  const offset = position.slice(colon + 1);
  const parts = offset.split("-");
  if (!parts.every((p) => /^\d+$/.test(p))) return null;
  return { epoch, parts };
}

/**
 * Compare two positions of the same log.
 *
 * @param {string} a
 * @param {string} b
 * @returns {number | null} negative, 0 or positive as `a` is before, equal to or after
 *   `b`; `null` when they cannot be compared (other epochs, or not positions).
 */
export function comparePositions(a, b) {
  if (a === b) return 0;
  const pa = parsePosition(a);
  const pb = parsePosition(b);
  if (pa === null || pb === null || pa.epoch !== pb.epoch) return null;
  const n = Math.max(pa.parts.length, pb.parts.length);
  for (let i = 0; i < n; i++) {
    const c = compareDigits(pa.parts[i] ?? "0", pb.parts[i] ?? "0");
    if (c !== 0) return c;
  }
  return 0;
}

/**
 * Whether an event at `position` should be delivered after `last`: `last` is null, or
 * `position` is strictly newer. Positions of another epoch count as newer (the
 * gateway signals a new incarnation of the log with `resync-required` first).
 *
 * @param {string} position
 * @param {string | null} last
 * @returns {boolean}
 */
export function isNewer(position, last) {
  if (last === null || last === undefined) return true;
  const c = comparePositions(position, last);
  return c === null ? position !== last : c > 0;
}

/** A subscription of a {@link Client}: its id, last position, and `unsubscribe()`. */
export class Subscription {
  /**
   * @param {Client} client
   * @param {string} id
   * @param {SubscribeSpec} spec
   * @param {(event: any, meta: EventMeta) => void} onEvent
   * @param {SubscribeHandlers} handlers
   */
  constructor(client, id, spec, onEvent, handlers) {
    /** @readonly */
    this.id = id;
    /** @type {Record<string, unknown> | undefined} */
    this.pattern = spec.pattern;
    /** @type {Record<string, unknown> | undefined} */
    this.filter = spec.filter;
    /**
     * The position of the last event delivered, or the gateway's head position at
     * subscription time; `null` before either. Resumption starts after it.
     * @type {string | null}
     */
    this.position = spec.since ?? null;
    /** True once the gateway confirmed the subscription at least once. */
    this.confirmed = false;
    /** False after `unsubscribe()`, a refusal, or a resync that was not followed up. */
    this.active = true;
    /** Events delivered (after de-duplication). */
    this.delivered = 0;
    /** Events dropped as already delivered (replay overlap). */
    this.duplicates = 0;
    this._client = client;
    this._onEvent = onEvent;
    this._handlers = handlers;
    // The log was empty when it was confirmed: resume from the very start.
    this._fromEarliest = false;
    /** @type {string | undefined} */
    this.presence = spec.presence;
    /** @type {boolean} */
    this.watch = spec.watch === true;
    /**
     * With `watch`: the members of the `presence` channel (replaced by each `sync`).
     * @type {Set<string>}
     */
    this.members = new Set();
  }

  /** @param {any} frame */
  _onPresence(frame) {
    if (frame.event === "sync" && Array.isArray(frame.members)) {
      this.members = new Set(frame.members.filter((/** @type {unknown} */ m) => typeof m === "string"));
    } else if (frame.event === "join" && typeof frame.member === "string") {
      this.members.add(frame.member);
    } else if (frame.event === "leave" && typeof frame.member === "string") {
      this.members.delete(frame.member);
    } else {
      return; // an event of a newer server
    }
    this._handlers.onPresence?.(frame, this.members);
  }

  /** The `since` to send when (re)subscribing, or undefined for live-from-now. */
  get resumeFrom() {
    if (this.position !== null) return this.position;
    return this._fromEarliest ? "earliest" : undefined;
  }

  /** Stop the subscription (sends `unsubscribe` if connected). Idempotent. */
  unsubscribe() {
    if (!this.active) return;
    this.active = false;
    this._client._unsubscribe(this);
  }
}

/**
 * A connection to the gateway that reconnects by itself. Create it with {@link connect}.
 *
 * Listen with `client.on(type, listener)` (returns a function that removes it) for
 * `open`, `close`, `error` and `state`.
 */
export class Client {
  /**
   * @param {string} url
   * @param {ConnectOptions} [options]
   */
  constructor(url, options = {}) {
    if (typeof url !== "string" || !url) throw new TypeError("connect(url): url must be a string");
    const WS = options.WebSocket ?? /** @type {any} */ (globalThis).WebSocket;
    if (typeof WS !== "function") {
      throw new TypeError("no WebSocket: pass options.WebSocket in this runtime");
    }
    this.url = url;
    /** @type {ClientState} */
    this.state = "connecting";
    /** The gateway's connection id once connected. @type {string | null} */
    this.connectionId = null;
    /** The principal id the gateway authenticated. @type {string | null} */
    this.principal = null;
    /** Reconnection attempts since the last successful connection. */
    this.attempt = 0;
    /** @type {Map<string, Subscription>} */
    this.subscriptions = new Map();
    this._WS = WS;
    this._options = options;
    this._token = options.token;
    this._backoff = options.backoff ?? {};
    this._random = options.random ?? Math.random;
    this._pingInterval = options.pingInterval ?? 20000;
    this._pongTimeout = options.pongTimeout ?? 10000;
    /** @type {WebSocketLike | null} */
    this._ws = null;
    this._connected = false;
    this._everConnected = false;
    this._userClosed = false;
    /** The token of the current connection (to tell a refused one from a new one). @type {string | undefined} */
    this._tokenUsed = undefined;
    /** A token fetched after a 4401/4403, for the next connection. @type {string | undefined} */
    this._prefetched = undefined;
    this._nextId = 1;
    /** @type {Map<string, Set<Function>>} */
    this._listeners = new Map();
    /** @type {any} */
    this._retryTimer = null;
    /** @type {any} */
    this._pingTimer = null;
    /** @type {any} */
    this._deadTimer = null;
    /** @type {((value: Client) => void) | null} */
    this._resolveReady = null;
    /** @type {((reason: Error) => void) | null} */
    this._rejectReady = null;
    /** Resolves on the first `connected`; rejects if the client closes before it. */
    this.ready = new Promise((resolve, reject) => {
      this._resolveReady = resolve;
      this._rejectReady = reject;
    });
    this.ready.catch(() => {}); // not awaiting `ready` is fine
    this._open();
  }

  /**
   * Add a listener; returns a function that removes it.
   *
   * @template {keyof ClientEvents} K
   * @param {K} type
   * @param {(detail: ClientEvents[K]) => void} listener
   * @returns {() => void}
   */
  on(type, listener) {
    let set = this._listeners.get(type);
    if (!set) this._listeners.set(type, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /** @param {string} type @param {any} detail */
  _emit(type, detail) {
    for (const listener of [...(this._listeners.get(type) ?? [])]) {
      try {
        listener(detail);
      } catch (err) {
        reportError(err);
      }
    }
  }

  /** @param {ClientState} state */
  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    this._emit("state", state);
  }

  /**
   * Subscribe to the events matching `spec` (an EventBridge `pattern` or an AppSync
   * `filter`; neither = every event the principal may see).
   *
   * @param {SubscribeSpec} spec
   * @param {(event: any, meta: EventMeta) => void} onEvent Called with each CloudEvents
   *   JSON object, once, in log order.
   * @param {SubscribeHandlers} [handlers]
   * @returns {Subscription}
   */
  subscribe(spec, onEvent, handlers = {}) {
    if (this.state === "closed") throw new Error("the client is closed");
    if (spec === null || typeof spec !== "object") throw new TypeError("subscribe(spec): spec must be an object");
    if (spec.pattern !== undefined && spec.filter !== undefined) {
      throw new TypeError("subscribe(spec): give pattern or filter, not both");
    }
    if (typeof onEvent !== "function") throw new TypeError("subscribe(spec, onEvent): onEvent must be a function");
    if (spec.watch === true && typeof spec.presence !== "string") {
      throw new TypeError("subscribe(spec): watch needs presence (the channel)");
    }
    let id = spec.id;
    if (id === undefined) {
      do id = `s${this._nextId++}`;
      while (this.subscriptions.has(id));
    } else if (typeof id !== "string" || !ID_RE.test(id)) {
      throw new TypeError("subscription id: 1-128 characters of [A-Za-z0-9_.:-]");
    } else if (this.subscriptions.has(id)) {
      throw new Error(`subscription id ${JSON.stringify(id)} is in use`);
    }
    const sub = new Subscription(this, id, spec, onEvent, handlers);
    this.subscriptions.set(id, sub);
    if (this._connected) this._sendSubscribe(sub);
    return sub;
  }

  /**
   * Replace the token (e.g. after a 4401 close with a static token) and, if the client
   * gave up, connect again. On an open connection the new token is sent as a refresh.
   *
   * @param {string} token
   */
  setToken(token) {
    this._token = token;
    if (this._connected) {
      this._send({ type: "authenticate", token });
    } else if (this.state === "closed" && !this._userClosed) {
      this.attempt = 0;
      this._open();
    }
  }

  /** Close for good: no reconnection; subscriptions end. */
  close() {
    this._userClosed = true;
    this._clearTimers();
    const ws = this._ws;
    this._ws = null;
    this._connected = false;
    for (const sub of this.subscriptions.values()) sub.active = false;
    this.subscriptions.clear();
    if (ws) {
      detach(ws);
      try {
        ws.close(CLOSE_NORMAL, "client closed");
      } catch {
        // already closed
      }
    }
    if (this.state !== "closed") {
      this._setState("closed");
      this._emit("close", { code: CLOSE_NORMAL, reason: "client closed", willReconnect: false });
    }
    this._rejectReady?.(new Error("the client was closed"));
  }

  // -- connection lifecycle -----------------------------------------------------------

  async _open() {
    this._setState(this.attempt === 0 && !this._everConnected ? "connecting" : "reconnecting");
    let token = this._token;
    if (this._prefetched !== undefined) {
      token = this._token = this._prefetched;
      this._prefetched = undefined;
    } else if (this._options.getToken) {
      try {
        token = await this._options.getToken();
        this._token = token;
      } catch (err) {
        this._emit("error", err instanceof Error ? err : new Error(String(err)));
        this._scheduleReconnect();
        return;
      }
    }
    if (this._userClosed) return;
    this._tokenUsed = token;
    let ws;
    try {
      ws = this._options.protocols === undefined
        ? new this._WS(this.url)
        : new this._WS(this.url, this._options.protocols);
    } catch (err) {
      this._emit("error", err instanceof Error ? err : new Error(String(err)));
      this._scheduleReconnect();
      return;
    }
    this._ws = ws;
    ws.onopen = () => {
      if (token !== undefined && token !== null) this._send({ type: "authenticate", token });
    };
    ws.onmessage = (/** @type {{data: unknown}} */ ev) => this._onMessage(ev.data);
    ws.onerror = () => {
      // The close event follows and carries the code; nothing to do here.
    };
    ws.onclose = (/** @type {{code?: number, reason?: string}} */ ev) =>
      this._onClose(ev.code ?? 1006, ev.reason ?? "");
  }

  /** @param {number} code @param {string} reason */
  _onClose(code, reason) {
    if (this._ws) detach(this._ws);
    this._ws = null;
    this._connected = false;
    this._clearTimers();
    if (this._userClosed) return;
    if (code === CLOSE_AUTHENTICATION_FAILED || code === CLOSE_REVOKED) {
      // The credentials were refused or revoked: the same token would be refused
      // again. Reconnect only with a new one (from getToken, or a later setToken()).
      const canRetry = Boolean(this._options.getToken) && !this._backoffExhausted();
      this._emit("close", { code, reason, willReconnect: canRetry });
      if (canRetry) this._retryWithNewToken(code, reason);
      else this._giveUp(code, reason);
      return;
    }
    const willReconnect = !this._backoffExhausted();
    this._emit("close", { code, reason, willReconnect });
    if (willReconnect) this._scheduleReconnect();
    else this._giveUp(code, reason);
  }

  _backoffExhausted() {
    const maxAttempts = this._backoff.maxAttempts ?? Infinity;
    return this.attempt >= maxAttempts;
  }

  /** @param {number} code @param {string} reason */
  async _retryWithNewToken(code, reason) {
    const refused = this._tokenUsed;
    let token;
    try {
      token = await /** @type {() => any} */ (this._options.getToken)();
    } catch (err) {
      this._emit("error", err instanceof Error ? err : new Error(String(err)));
      this._giveUp(code, reason);
      return;
    }
    if (this._userClosed) return;
    if (token === refused || this._backoffExhausted()) {
      this._giveUp(code, reason);
      return;
    }
    this._prefetched = token; // _open uses it instead of calling getToken again
    this._scheduleReconnect();
  }

  /** @param {number} code @param {string} reason */
  _giveUp(code, reason) {
    this._setState("closed");
    this._rejectReady?.(new Error(`connection closed (${code}${reason ? ": " + reason : ""})`));
  }

  _scheduleReconnect() {
    if (this._userClosed) return;
    if (this._backoffExhausted()) {
      this._giveUp(1006, "gave up reconnecting");
      return;
    }
    this._setState("reconnecting");
    const delay = backoffDelay(this.attempt, this._backoff, this._random);
    this.attempt += 1;
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      this._open();
    }, delay);
  }

  _clearTimers() {
    clearTimeout(this._retryTimer);
    clearInterval(this._pingTimer);
    clearTimeout(this._deadTimer);
    this._retryTimer = this._pingTimer = this._deadTimer = null;
  }

  _armPing() {
    clearInterval(this._pingTimer);
    if (!this._pingInterval) return;
    this._pingTimer = setInterval(() => {
      if (!this._send({ type: "ping" })) return;
      if (this._deadTimer === null && this._pongTimeout) {
        this._deadTimer = setTimeout(() => {
          // Nothing came back: the connection is dead (a half-open TCP connection,
          // a sleeping radio). Close it and reconnect.
          this._deadTimer = null;
          const ws = this._ws;
          if (ws) {
            detach(ws);
            try {
              ws.close(CLOSE_DEAD, "no answer to ping");
            } catch {
              // ignore
            }
            this._onClose(CLOSE_DEAD, "no answer to ping");
          }
        }, this._pongTimeout);
      }
    }, this._pingInterval);
  }

  /** @param {object} frame @returns {boolean} whether it was sent */
  _send(frame) {
    const ws = this._ws;
    if (!ws || ws.readyState !== 1) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  /** @param {Subscription} sub */
  _sendSubscribe(sub) {
    /** @type {Record<string, unknown>} */
    const frame = { type: "subscribe", id: sub.id };
    if (sub.pattern !== undefined) frame.pattern = sub.pattern;
    if (sub.filter !== undefined) frame.filter = sub.filter;
    if (sub.presence !== undefined) frame.presence = sub.presence;
    if (sub.watch) frame.watch = true;
    const since = sub.resumeFrom;
    if (since !== undefined) frame.since = since;
    this._send(frame);
  }

  /** @param {Subscription} sub */
  _unsubscribe(sub) {
    if (this.subscriptions.get(sub.id) !== sub) return;
    this.subscriptions.delete(sub.id);
    if (this._connected) this._send({ type: "unsubscribe", id: sub.id });
  }

  // -- frames -------------------------------------------------------------------------

  /** @param {unknown} data */
  _onMessage(data) {
    // Any frame proves the connection alive.
    clearTimeout(this._deadTimer);
    this._deadTimer = null;
    if (typeof data !== "string") return;
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (frame === null || typeof frame !== "object") return;
    switch (frame.type) {
      case "event":
        this._onEvent(frame);
        break;
      case "connected":
        this._onConnected(frame);
        break;
      case "subscribed": {
        const sub = this.subscriptions.get(frame.id);
        if (!sub) break;
        sub.confirmed = true;
        if (sub.position === null) {
          if (typeof frame.position === "string") sub.position = frame.position;
          else sub._fromEarliest = true; // the log was empty: everything after is new
        }
        break;
      }
      case "error":
        this._onError(frame);
        break;
      case "resync-required":
        this._onResync(frame);
        break;
      case "token-expiring":
        this._refreshToken();
        break;
      case "presence":
        this.subscriptions.get(frame.id)?._onPresence(frame);
        break;
      default:
        break; // pong, unsubscribed, and frames of newer servers
    }
  }

  /** @param {any} frame */
  _onConnected(frame) {
    if (this._connected) return; // not sent on a refresh, but be lenient
    this._connected = true;
    this._everConnected = true;
    this.attempt = 0;
    this.connectionId = frame.connection ?? null;
    this.principal = frame.principal ?? null;
    this._setState("open");
    this._armPing();
    for (const sub of this.subscriptions.values()) this._sendSubscribe(sub);
    this._emit("open", {
      connection: this.connectionId,
      principal: this.principal,
      expiresAt: frame.expires_at ?? null,
    });
    this._resolveReady?.(this);
  }

  /** @param {any} frame */
  _onEvent(frame) {
    const sub = this.subscriptions.get(frame.id);
    if (!sub || !sub.active) return;
    const position = frame.position;
    if (typeof position === "string") {
      if (!isNewer(position, sub.position)) {
        sub.duplicates += 1;
        return;
      }
      sub.position = position;
    }
    sub.delivered += 1;
    try {
      sub._onEvent(frame.event, { position, subscription: sub });
    } catch (err) {
      reportError(err);
    }
  }

  /** @param {any} frame */
  _onError(frame) {
    const error = { code: String(frame.code), message: String(frame.message ?? "") };
    const sub = typeof frame.id === "string" ? this.subscriptions.get(frame.id) : undefined;
    if (sub) {
      if (FATAL_SUBSCRIBE_ERRORS.has(error.code)) {
        sub.active = false;
        this.subscriptions.delete(sub.id);
      } else if (error.code === "rate_limited") {
        // The frame was ignored: subscribe again a little later.
        setTimeout(() => {
          if (sub.active && this._connected && this.subscriptions.get(sub.id) === sub) {
            this._sendSubscribe(sub);
          }
        }, 1000);
      }
      if (sub._handlers.onError) {
        try {
          sub._handlers.onError(error);
        } catch (err) {
          reportError(err);
        }
        return;
      }
    }
    this._emit("error", error);
  }

  /** @param {any} frame */
  _onResync(frame) {
    const sub = this.subscriptions.get(frame.id);
    if (!sub) return;
    const reason = String(frame.reason);
    const position = typeof frame.position === "string" ? frame.position : null;
    // overflow: the gateway dropped events for a slow client; resume after the last one
    // delivered (history still has them). Other reasons: the position cannot be resumed
    // from, so subscribe again live and let the application refetch its state.
    const resumed = reason === "overflow";
    /** @type {ResyncInfo} */
    const info = { reason, position, resumed };
    let again = true;
    if (sub._handlers.onResync) {
      try {
        again = sub._handlers.onResync(info) !== false;
      } catch (err) {
        reportError(err);
      }
    }
    if (!again) {
      sub.active = false;
      this.subscriptions.delete(sub.id);
      return;
    }
    if (!resumed) {
      sub.position = null;
      sub._fromEarliest = false;
    } else if (sub.position === null) {
      sub.position = position;
    }
    if (this._connected) this._sendSubscribe(sub);
  }

  async _refreshToken() {
    if (!this._options.getToken) return; // the gateway closes with 4401 at expiry
    let token;
    try {
      token = await this._options.getToken();
    } catch (err) {
      this._emit("error", err instanceof Error ? err : new Error(String(err)));
      return;
    }
    this._token = token;
    this._tokenUsed = token;
    this._send({ type: "authenticate", token });
  }
}

/** @param {WebSocketLike} ws */
function detach(ws) {
  ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
}

/** @param {unknown} err */
function reportError(err) {
  // A listener's exception must not break the client; surface it like the platform does.
  const report = /** @type {any} */ (globalThis).reportError;
  if (typeof report === "function") report(err);
  else setTimeout(() => { throw err; });
}

/**
 * Connect to the gateway at `url` (`ws://` or `wss://`) and keep connected.
 *
 * @param {string} url
 * @param {ConnectOptions} [options]
 * @returns {Client}
 *
 * @example
 * const client = connect("wss://example.com/ws", { getToken: () => fetchToken() });
 * const sub = client.subscribe(
 *   { filter: { filterGroup: [{ filters: [{ fieldName: "data.userId", operator: "eq", value: "alice" }] }] } },
 *   (event, { position }) => console.log(position, event.type),
 * );
 * // later: sub.unsubscribe(); client.close();
 */
export function connect(url, options = {}) {
  return new Client(url, options);
}
