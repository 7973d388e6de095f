// Must NOT type-check: each line marked `// error` is a mistake the .d.ts must catch
// (tests/realtime/test_js_types.py checks that tsc reports exactly those lines).
import { connect } from "../eventpatterns.js";

const client = connect("wss://example.test/ws", { token: 42 }); // error
client.subscribe({ pattern: { type: ["a"] } }); // error
client.subscribe({ since: 7 }, () => undefined); // error
client.subscribe({ watch: "yes" }, () => undefined); // error
client.subscribe({}, () => undefined, { onPresence: (change: string) => change }); // error
client.on("opened", () => undefined); // error
client.on("close", (info) => info.missing); // error
const state: "open" = client.state; // error
client.subscriptions.set("x", client.subscribe({}, () => undefined)); // error
console.log(state);
