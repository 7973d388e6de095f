// Type declarations of eventpatterns.js, the client of the eventpatterns real-time gateway.

/** `"connecting"` (first attempt), `"open"`, `"reconnecting"` (waiting or retrying), `"closed"` (for good). */
export type ClientState = "connecting" | "open" | "reconnecting" | "closed";

export interface BackoffOptions {
  /** First delay bound in milliseconds (default 500). */
  initial?: number;
  /** Largest delay bound in milliseconds (default 30000). */
  max?: number;
  /** Growth of the bound per failed attempt (default 2). */
  factor?: number;
  /** Failed attempts in a row before giving up (default Infinity). */
  maxAttempts?: number;
}

/** The subset of the WebSocket API the client uses (browsers, React Native, Node >= 22, `ws`). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code?: number; reason?: string }) => void) | null;
  onerror: ((ev: any) => void) | null;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface ConnectOptions {
  /** A static token, sent in the first `authenticate` frame. */
  token?: string;
  /** Called before every connection and on `token-expiring` (takes precedence over `token`). */
  getToken?: () => string | Promise<string>;
  /** Reconnection delays: exponential with full jitter. */
  backoff?: BackoffOptions;
  /** Milliseconds between `ping` frames (default 20000; 0 disables). */
  pingInterval?: number;
  /** Milliseconds without any frame after a ping before the connection is replaced (default 10000). */
  pongTimeout?: number;
  /** WebSocket subprotocols. */
  protocols?: string | string[];
  /** The WebSocket class (default `globalThis.WebSocket`). */
  WebSocket?: WebSocketConstructor;
  /** Random source in [0, 1) for the jitter (default `Math.random`). */
  random?: () => number;
}

/** An EventBridge event pattern. */
export type EventPattern = Record<string, unknown>;

/** An AppSync enhanced subscription filter: `{ filterGroup: [{ filters: [{ fieldName, operator, value }] }] }`. */
export interface AppSyncFilter {
  filterGroup: Array<{ filters: Array<{ fieldName: string; operator: string; value?: unknown }> }>;
}

export interface SubscribeSpec {
  /** An EventBridge event pattern (not with `filter`). */
  pattern?: EventPattern;
  /** An AppSync filter group (not with `pattern`). */
  filter?: AppSyncFilter | Record<string, unknown>;
  /** Start after this position (default: live from now). */
  since?: string;
  /** The subscription id: 1-128 characters of `[A-Za-z0-9_.:-]` (default `s1`, `s2`, ...). */
  id?: string;
  /** A presence channel to be listed in while subscribed. */
  presence?: string;
  /** With `presence`: keep `members` and call `onPresence` with the channel's changes. */
  watch?: boolean;
}

/** A `presence` frame of a watching subscription. */
export interface PresenceChange {
  event: "sync" | "join" | "leave";
  channel: string;
  /** With `sync`: every member now. */
  members?: string[];
  /** With `join` / `leave`: who. */
  member?: string;
  /** With `join` / `leave`: that connection's info. */
  info?: Record<string, unknown>;
  /** With `leave`: it stopped heartbeating. */
  expired?: boolean;
}

/** A CloudEvents 1.0 event in structured JSON form. */
export interface CloudEvent<T = unknown> {
  specversion: "1.0";
  id: string;
  source: string;
  type: string;
  time?: string;
  subject?: string;
  datacontenttype?: string;
  data?: T;
  data_base64?: string;
  [extension: string]: unknown;
}

export interface EventMeta {
  /** The event's position in the log. */
  position: string;
  /** The subscription that delivered it. */
  subscription: Subscription;
}

export interface SubscriptionError {
  /** The gateway's error code, e.g. `invalid_pattern`, `forbidden`, `too_many_subscriptions`. */
  code: string;
  message: string;
}

export interface ResyncInfo {
  reason: "position_expired" | "stale_position" | "invalid_position" | "overflow" | string;
  /** The last position the gateway delivered. */
  position: string | null;
  /** True: subscribed again with `since` (overflow, nothing lost). False: subscribed again live from now. */
  resumed: boolean;
}

export interface SubscribeHandlers {
  /** The gateway refused the subscription; it is closed. */
  onError?: (error: SubscriptionError) => void;
  /** The gateway ended the subscription; return `false` to not subscribe again. */
  onResync?: (info: ResyncInfo) => boolean | void;
  /** With `watch`: a presence frame, after `members` was updated with it. */
  onPresence?: (change: PresenceChange, members: ReadonlySet<string>) => void;
}

export interface CloseInfo {
  code: number;
  reason: string;
  willReconnect: boolean;
}

export interface ClientEvents {
  open: { connection: string | null; principal: string | null; expiresAt: number | null };
  close: CloseInfo;
  error: SubscriptionError | Error;
  state: ClientState;
}

export class Subscription {
  readonly id: string;
  readonly pattern: EventPattern | undefined;
  readonly filter: Record<string, unknown> | undefined;
  /** The last event's position (or the head position at subscription); resumption starts after it. */
  position: string | null;
  /** True once the gateway confirmed it at least once. */
  confirmed: boolean;
  /** False after `unsubscribe()`, a refusal, or a declined resync. */
  active: boolean;
  /** Events delivered. */
  delivered: number;
  /** Events dropped because their position was not newer than the last one delivered. */
  duplicates: number;
  /** The `since` the next (re)subscription sends, if any. */
  readonly resumeFrom: string | undefined;
  /** The presence channel it is listed in, if any. */
  readonly presence: string | undefined;
  /** Whether it watches `presence`. */
  readonly watch: boolean;
  /** With `watch`: the channel's members (replaced by each `sync`). */
  members: Set<string>;
  /** Stop it (sends `unsubscribe` when connected). Idempotent. */
  unsubscribe(): void;
}

export class Client {
  constructor(url: string, options?: ConnectOptions);
  readonly url: string;
  readonly state: ClientState;
  /** The gateway's connection id while connected. */
  readonly connectionId: string | null;
  /** The authenticated principal id. */
  readonly principal: string | null;
  /** Reconnection attempts since the last successful connection. */
  readonly attempt: number;
  readonly subscriptions: ReadonlyMap<string, Subscription>;
  /** Resolves on the first `connected`; rejects if the client closes for good before. */
  readonly ready: Promise<Client>;
  /** Add a listener; returns a function that removes it. */
  on<K extends keyof ClientEvents>(type: K, listener: (detail: ClientEvents[K]) => void): () => void;
  subscribe<T = unknown>(
    spec: SubscribeSpec,
    onEvent: (event: CloudEvent<T>, meta: EventMeta) => void,
    handlers?: SubscribeHandlers,
  ): Subscription;
  /** A new token: refreshes the open connection, or reconnects a client closed by 4401/4403. */
  setToken(token: string): void;
  /** Close for good. */
  close(): void;
}

/** Connect to the gateway at `url` (`ws://` / `wss://`) and keep connected. */
export function connect(url: string, options?: ConnectOptions): Client;

/** Full-jitter delay before attempt `attempt` (0-based): uniform in [0, min(max, initial * factor ** attempt)). */
export function backoffDelay(attempt: number, options?: BackoffOptions, random?: () => number): number;
export function parsePosition(position: string): { epoch: string; parts: string[] } | null;
/** Negative, 0 or positive; `null` if not comparable (other epochs). */
export function comparePositions(a: string, b: string): number | null;
/** Whether an event at `position` is to be delivered after `last`. */
export function isNewer(position: string, last: string | null): boolean;

export const CLOSE_NORMAL: 1000;
export const CLOSE_GOING_AWAY: 1001;
export const CLOSE_AUTHENTICATION_FAILED: 4401;
export const CLOSE_REVOKED: 4403;
export const CLOSE_AUTHENTICATION_TIMEOUT: 4408;
export const CLOSE_SLOW_CONSUMER: 4409;
export const CLOSE_TOO_MANY: 4429;
export const CLOSE_DEAD: 4000;
