// Unit tests of the client: `node --test clients/js/` (Node >= 20, no dependencies).
// The gateway is played by FakeSocket: each test scripts the server's frames and
// reads what the client sent.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  backoffDelay,
  comparePositions,
  connect,
  isNewer,
  parsePosition,
} from "./eventpatterns.js";

class FakeSocket {
  /** @type {FakeSocket[]} */
  static all = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    this.closedWith = null;
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
    FakeSocket.all.push(this);
  }
  send(data) {
    if (this.readyState !== 1) throw new Error("not open");
    this.sent.push(JSON.parse(data));
  }
  close(code, reason) {
    this.closedWith = [code, reason];
    this.readyState = 3;
  }
  // -- the test's side --
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  frame(obj) {
    this.onmessage?.({ data: JSON.stringify(obj) });
  }
  drop(code = 1006, reason = "") {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  sentOf(type) {
    return this.sent.filter((f) => f.type === type);
  }
}

const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

async function nextSocket(count) {
  for (let i = 0; i < 200 && FakeSocket.all.length < count; i++) await tick(1);
  assert.equal(FakeSocket.all.length, count, "the client did not open a new socket");
  return FakeSocket.all[count - 1];
}

function client(options = {}) {
  FakeSocket.all = [];
  return connect("ws://gateway.test/ws", {
    WebSocket: FakeSocket,
    backoff: { initial: 2, max: 5 },
    pingInterval: 0,
    ...options,
  });
}

const ev = (n) => ({ specversion: "1.0", id: `e${n}`, type: "t", source: "/s", data: { n } });

test("backoff is full jitter, bounded by initial * factor ** attempt and max", () => {
  assert.equal(backoffDelay(0, { initial: 100 }, () => 0), 0);
  assert.equal(backoffDelay(0, { initial: 100 }, () => 0.999999), 99);
  assert.equal(backoffDelay(3, { initial: 100, factor: 2 }, () => 0.5), 400);
  assert.equal(backoffDelay(10, { initial: 100, max: 1000 }, () => 0.5), 500);
  // Huge attempt counts neither overflow nor exceed max.
  assert.equal(backoffDelay(1e9, { initial: 100, max: 30000 }, () => 0.999999), 29999);
  for (let attempt = 0; attempt < 20; attempt++) {
    const bound = Math.min(30000, 500 * 2 ** attempt);
    for (let i = 0; i < 50; i++) {
      const d = backoffDelay(attempt);
      assert.ok(d >= 0 && d < bound, `attempt ${attempt}: ${d} not in [0, ${bound})`);
    }
  }
});

test("positions compare by epoch and numeric offset (memory and Redis forms)", () => {
  assert.deepEqual(parsePosition("ab12:42"), { epoch: "ab12", parts: ["42"] });
  assert.deepEqual(parsePosition("ab12:1700000000000-3"), { epoch: "ab12", parts: ["1700000000000", "3"] });
  assert.equal(parsePosition("nonsense"), null);
  assert.ok(comparePositions("e:9", "e:10") < 0);
  assert.ok(comparePositions("e:10", "e:9") > 0);
  assert.equal(comparePositions("e:10", "e:10"), 0);
  assert.ok(comparePositions("e:1700000000000-9", "e:1700000000000-10") < 0);
  assert.ok(comparePositions("e:1700000000001-0", "e:1700000000000-10") > 0);
  // Beyond 2**53: compared as digit strings.
  assert.ok(comparePositions("e:90071992547409930", "e:90071992547409929") > 0);
  assert.equal(comparePositions("a:1", "b:2"), null);
  assert.equal(isNewer("e:5", null), true);
  assert.equal(isNewer("e:5", "e:5"), false);
  assert.equal(isNewer("e:4", "e:5"), false);
  assert.equal(isNewer("e:6", "e:5"), true);
  assert.equal(isNewer("f:1", "e:5"), true); // another incarnation: not comparable
});

test("authenticates first, subscribes once connected, delivers events", async () => {
  const c = client({ token: "tok" });
  const ws = await nextSocket(1);
  const got = [];
  const sub = c.subscribe({ filter: { filterGroup: [] } }, (event, meta) => got.push([event.id, meta.position]));
  ws.open();
  assert.deepEqual(ws.sent, [{ type: "authenticate", token: "tok" }]);
  ws.frame({ type: "connected", connection: "c1", principal: "alice", expires_at: null });
  assert.equal(c.state, "open");
  assert.equal(await c.ready, c);
  assert.deepEqual(ws.sent[1], { type: "subscribe", id: sub.id, filter: { filterGroup: [] } });
  ws.frame({ type: "subscribed", id: sub.id, position: "e:3" });
  assert.equal(sub.position, "e:3");
  ws.frame({ type: "event", id: sub.id, position: "e:4", event: ev(4) });
  ws.frame({ type: "event", id: "other", position: "e:5", event: ev(5) });
  assert.deepEqual(got, [["e4", "e:4"]]);
  sub.unsubscribe();
  assert.deepEqual(ws.sent.at(-1), { type: "unsubscribe", id: sub.id });
  ws.frame({ type: "event", id: sub.id, position: "e:6", event: ev(6) });
  assert.equal(got.length, 1);
  c.close();
  assert.deepEqual(ws.closedWith, [1000, "client closed"]);
  assert.equal(c.state, "closed");
});

test("reconnects and resumes each subscription after its last position, dropping duplicates", async () => {
  const c = client({ token: "tok" });
  let ws = await nextSocket(1);
  const got = [];
  const a = c.subscribe({ pattern: { type: ["a"] } }, (e) => got.push(e.id));
  const b = c.subscribe({ pattern: { type: ["b"] } }, () => {});
  ws.open();
  ws.frame({ type: "connected", connection: "c1", principal: "p", expires_at: null });
  ws.frame({ type: "subscribed", id: a.id, position: "e:1" });
  ws.frame({ type: "subscribed", id: b.id, position: null }); // empty log
  ws.frame({ type: "event", id: a.id, position: "e:2", event: ev(2) });
  ws.drop(1006);
  assert.equal(c.state, "reconnecting");
  ws = await nextSocket(2);
  ws.open();
  assert.deepEqual(ws.sent, [{ type: "authenticate", token: "tok" }], "subscribes only once connected");
  ws.frame({ type: "connected", connection: "c2", principal: "p", expires_at: null });
  const subs = ws.sentOf("subscribe");
  assert.deepEqual(subs, [
    { type: "subscribe", id: a.id, pattern: { type: ["a"] }, since: "e:2" },
    { type: "subscribe", id: b.id, pattern: { type: ["b"] }, since: "earliest" },
  ]);
  // A replay that overlaps what was delivered: the overlap is dropped.
  ws.frame({ type: "subscribed", id: a.id, position: "e:2" });
  for (const n of [1, 2, 3, 3, 4]) ws.frame({ type: "event", id: a.id, position: `e:${n}`, event: ev(n) });
  assert.deepEqual(got, ["e2", "e3", "e4"]);
  assert.equal(a.duplicates, 3);
  assert.equal(a.position, "e:4");
  assert.equal(c.attempt, 0, "a successful connection resets the backoff");
  c.close();
});

test("4401 with a static token: no reconnection until setToken()", async () => {
  const c = client({ token: "old" });
  let ws = await nextSocket(1);
  const closes = [];
  c.on("close", (info) => closes.push(info));
  ws.open();
  ws.frame({ type: "error", code: "authentication_failed", message: "expired" });
  ws.drop(4401, "expired");
  await tick(20);
  assert.equal(FakeSocket.all.length, 1, "reconnected with a refused token");
  assert.equal(c.state, "closed");
  assert.deepEqual(closes, [{ code: 4401, reason: "expired", willReconnect: false }]);
  await assert.rejects(c.ready, /4401/);
  c.setToken("new");
  ws = await nextSocket(2);
  ws.open();
  assert.deepEqual(ws.sent, [{ type: "authenticate", token: "new" }]);
  c.close();
});

test("4403 with getToken: reconnects only if getToken gives another token", async () => {
  const tokens = ["t1", "t1"];
  const c = client({ getToken: async () => tokens.shift() ?? "t2" });
  const ws = await nextSocket(1);
  ws.open();
  assert.deepEqual(ws.sent, [{ type: "authenticate", token: "t1" }]);
  ws.drop(4403, "revoked");
  await tick(20);
  assert.equal(FakeSocket.all.length, 1, "the same refused token was retried");
  assert.equal(c.state, "closed");

  const c2 = client({ getToken: (() => { let n = 0; return async () => `k${n++}`; })() });
  const ws1 = await nextSocket(1);
  ws1.open();
  ws1.drop(4401, "bad");
  const ws2 = await nextSocket(2);
  ws2.open();
  assert.deepEqual(ws2.sent, [{ type: "authenticate", token: "k1" }]);
  c2.close();
});

test("token-expiring sends a fresh token on the open connection", async () => {
  let n = 0;
  const c = client({ getToken: async () => `tok${n++}` });
  const ws = await nextSocket(1);
  ws.open();
  ws.frame({ type: "connected", connection: "c1", principal: "p", expires_at: 100 });
  ws.frame({ type: "token-expiring", expires_at: 100 });
  await tick(5);
  assert.deepEqual(ws.sentOf("authenticate"), [
    { type: "authenticate", token: "tok0" },
    { type: "authenticate", token: "tok1" },
  ]);
  c.close();
});

test("backoff gives up after maxAttempts", async () => {
  const c = client({ backoff: { initial: 1, max: 2, maxAttempts: 2 } });
  for (let i = 1; i <= 3; i++) {
    const ws = await nextSocket(i);
    ws.drop(1006);
  }
  await tick(20);
  assert.equal(FakeSocket.all.length, 3);
  assert.equal(c.state, "closed");
});

test("resync-required: overflow resumes with since, other reasons subscribe live", async () => {
  const c = client();
  const ws = await nextSocket(1);
  const infos = [];
  const s = c.subscribe({}, () => {}, { onResync: (info) => void infos.push(info) });
  ws.open();
  ws.frame({ type: "connected", connection: "c1", principal: "anonymous", expires_at: null });
  ws.frame({ type: "subscribed", id: s.id, position: "e:1" });
  ws.frame({ type: "event", id: s.id, position: "e:2", event: ev(2) });
  ws.frame({ type: "resync-required", id: s.id, reason: "overflow", position: "e:2" });
  assert.deepEqual(ws.sent.at(-1), { type: "subscribe", id: s.id, since: "e:2" });
  ws.frame({ type: "resync-required", id: s.id, reason: "position_expired", position: "e:2" });
  assert.deepEqual(ws.sent.at(-1), { type: "subscribe", id: s.id });
  assert.deepEqual(infos.map((i) => [i.reason, i.resumed]), [["overflow", true], ["position_expired", false]]);
  assert.equal(s.position, null);
  c.close();
});

test("a refused subscription reports onError and is closed; other errors go to the client", async () => {
  const c = client();
  const ws = await nextSocket(1);
  const errors = [];
  const clientErrors = [];
  c.on("error", (e) => clientErrors.push(e));
  const s = c.subscribe({ pattern: { x: 1 } }, () => {}, { onError: (e) => errors.push(e) });
  ws.open();
  ws.frame({ type: "connected", connection: "c1", principal: "anonymous", expires_at: null });
  ws.frame({ type: "error", code: "invalid_pattern", message: "bad", id: s.id });
  ws.frame({ type: "error", code: "invalid_json", message: "what" });
  assert.deepEqual(errors, [{ code: "invalid_pattern", message: "bad" }]);
  assert.deepEqual(clientErrors, [{ code: "invalid_json", message: "what" }]);
  assert.equal(s.active, false);
  assert.equal(c.subscriptions.size, 0);
  c.close();
});

test("a connection that does not answer pings is replaced", async () => {
  const c = client({ pingInterval: 5, pongTimeout: 5 });
  const ws = await nextSocket(1);
  ws.open();
  ws.frame({ type: "connected", connection: "c1", principal: "anonymous", expires_at: null });
  await nextSocket(2);
  assert.ok(ws.sentOf("ping").length >= 1);
  assert.deepEqual(ws.closedWith, [4000, "no answer to ping"]);
  c.close();
});

test("subscribe validates its arguments", () => {
  const c = client();
  assert.throws(() => c.subscribe({ pattern: {}, filter: {} }, () => {}), /not both/);
  assert.throws(() => c.subscribe({}, null), /onEvent/);
  assert.throws(() => c.subscribe({ id: "bad id" }, () => {}), /id/);
  c.subscribe({ id: "x" }, () => {});
  assert.throws(() => c.subscribe({ id: "x" }, () => {}), /in use/);
  c.close();
  assert.throws(() => c.subscribe({}, () => {}), /closed/);
});

test("a watching subscription sends presence + watch and keeps the members", async () => {
  const c = client({ token: "tok" });
  const ws = await nextSocket(1);
  const changes = [];
  const sub = c.subscribe({ presence: "room:1", watch: true }, () => {}, {
    onPresence: (change, members) => changes.push([change.event, [...members].sort()]),
  });
  ws.open();
  ws.frame({ type: "connected", connection: "c1", principal: "alice", expires_at: null });
  assert.deepEqual(ws.sent[1], { type: "subscribe", id: sub.id, presence: "room:1", watch: true });
  ws.frame({ type: "subscribed", id: sub.id, position: "e:1" });
  ws.frame({ type: "presence", id: sub.id, event: "sync", channel: "room:1", members: ["alice", "bob"] });
  ws.frame({ type: "presence", id: sub.id, event: "join", channel: "room:1", member: "carol", info: {} });
  ws.frame({ type: "presence", id: sub.id, event: "leave", channel: "room:1", member: "bob", expired: true });
  ws.frame({ type: "presence", id: sub.id, event: "wave", channel: "room:1" }); // a newer server's
  ws.frame({ type: "presence", id: "other", event: "join", channel: "room:1", member: "zed" });
  assert.deepEqual(changes, [
    ["sync", ["alice", "bob"]],
    ["join", ["alice", "bob", "carol"]],
    ["leave", ["alice", "carol"]],
  ]);
  assert.deepEqual([...sub.members].sort(), ["alice", "carol"]);
  assert.throws(() => c.subscribe({ watch: true }, () => {}), /watch needs presence/);
  c.close();
});
