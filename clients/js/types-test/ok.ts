// Must type-check against ../eventpatterns.d.ts (tests/realtime/test_js_types.py).
import {
  CLOSE_AUTHENTICATION_FAILED,
  backoffDelay,
  comparePositions,
  connect,
  isNewer,
  type Client,
  type CloudEvent,
  type PresenceChange,
  type Subscription,
} from "../eventpatterns.js";

interface Order {
  orderId: string;
  total: number;
}

const client: Client = connect("wss://example.test/ws", {
  getToken: async () => "token",
  backoff: { initial: 250, max: 10_000, maxAttempts: 20 },
  pingInterval: 15_000,
});

const orders: Subscription = client.subscribe<Order>(
  { pattern: { type: ["order.created"] }, since: "earliest", id: "orders" },
  (event: CloudEvent<Order>, meta) => {
    const total: number | undefined = event.data?.total;
    const position: string = meta.position;
    console.log(total, position, meta.subscription.id);
  },
  {
    onError: ({ code, message }) => console.error(code, message),
    onResync: (info) => info.resumed,
  },
);

const room = client.subscribe(
  { filter: { filterGroup: [{ filters: [{ fieldName: "room", operator: "eq", value: "1" }] }] }, presence: "room:1", watch: true },
  () => undefined,
  {
    onPresence: (change: PresenceChange, members: ReadonlySet<string>) => {
      if (change.event === "sync") console.log(change.members?.length, members.size);
      else console.log(change.event, change.member, change.expired);
    },
  },
);

const off: () => void = client.on("close", ({ code, willReconnect }) => {
  if (code === CLOSE_AUTHENTICATION_FAILED && !willReconnect) client.setToken("fresh");
});
client.on("state", (state) => console.log(state === "reconnecting"));
void client.ready.then((c) => c.principal);

const members: Set<string> = room.members;
const watching: boolean = room.watch && orders.active;
const delay: number = backoffDelay(3, { initial: 100 });
const order: number | null = comparePositions("e:1", "e:2");
const newer: boolean = isNewer("e:2", orders.position);
console.log(members, watching, delay, order, newer, orders.resumeFrom);
off();
orders.unsubscribe();
client.close();
