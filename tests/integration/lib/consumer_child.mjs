// A consumer in its own process (a "new client instance": new Manager, no pid, nothing
// remembered): connects with auth {consumer}, subscribes, prints one JSON line per
// thing it sees on stdout, and exits after `expect` deliveries plus `linger` ms, or
// after `timeout` ms. Used by consumer.test.mjs.
//   node consumer_child.mjs '<json options>'
// options: {url, consumer, topic, from, mode, expect, ackFirst (ack mode: ack only the
// first N deliveries; default all), linger, timeout, abrupt (exit without disconnect)}
import { loadClient } from "./broker.mjs";

const o = JSON.parse(process.argv[2]);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const { io } = loadClient();
const s = io(o.url, { forceNew: true, reconnection: false, auth: { consumer: o.consumer } });
let got = 0;
let acked = 0;
let finishing = false;
const finish = (code) => {
  if (finishing) return;
  finishing = true;
  setTimeout(() => {
    if (!o.abrupt) s.disconnect();
    out({ type: "exit", got, acked });
    setTimeout(() => process.exit(code), o.abrupt ? 0 : 100);
  }, o.linger ?? 300);
};
setTimeout(() => finish(0), o.timeout ?? 5000);
s.on("connect_error", (e) => {
  out({ type: "connect_error", message: e.message });
  finish(1);
});
s.on("connect", async () => {
  out({ type: "connect", recovered: s.recovered });
  const req = { topic: o.topic };
  if (o.from) req.from = o.from;
  if (o.mode) req.mode = o.mode;
  const r = await s.timeout(5000).emitWithAck("subscribe", req);
  out({ type: "subscribed", reply: r });
  if (o.expect === 0) finish(0);
});
s.onAny((event, ...args) => {
  if (event.startsWith("$")) {
    out({ type: "notice", event, args });
    return;
  }
  let ack = null;
  if (typeof args[args.length - 1] === "function") ack = args.pop();
  got++;
  out({ type: "event", event, data: args[0], meta: args[1], offset: args[2] });
  if (ack && (o.ackFirst === undefined || acked < o.ackFirst)) {
    ack();
    acked++;
  }
  if (got >= o.expect) finish(0);
});
