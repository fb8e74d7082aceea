// Ack-mode subscriptions ({mode:"ack"}): the delivery carries an ack callback;
// un-acked deliveries come again after ack_timeout, at most max_deliver times, then the
// event moves to the dead-letter topic $dlq.<consumer> (or $dlq.session-<pid>) with its
// original topic/offset and a reason; acked deliveries never come again; at most
// max_in_flight deliveries are outstanding per subscription.
import assert from "node:assert/strict";
import { describe } from "node:test";
import { brokerTest, call, duplicates, Recorder, sleep, waitFor } from "./lib/broker.mjs";

const TOML = `
[server]
ping_interval = "1s"
ping_timeout = "2s"

[namespaces."/acks"]
ack_timeout = "300ms"
max_deliver = 3

[namespaces."/flight"]
ack_timeout = "10s"
max_in_flight = 4
`;

async function publish(b, nsp, topic, id, data) {
  const r = await b.publishHttp({ topic, event: "job", data, id }, nsp);
  assert.equal(r.status, 200, r.text);
  return r.json.offset;
}

async function dlqEvents(b, nsp, topic) {
  return (await b.eventsPage(topic, { nsp })).events;
}

describe("ack mode", () => {
  brokerTest("never acked: delivered max_deliver (3) times, ack_timeout apart, then dead-lettered to $dlq.<consumer> with the original offset and a reason", async (sc) => {
    const b = await sc.broker({ toml: TOML });
    const s = await sc.connect(`${b.url}/acks`, { auth: { consumer: "lazy" } });
    const rec = new Recorder(s); // never calls the ack
    const r = await call(s, "subscribe", { topic: "jobs", mode: "ack" });
    assert.equal(r.ok, true, JSON.stringify(r));
    // Someone watching the dead-letter topic gets the copy live.
    const watcher = await sc.connect(`${b.url}/acks`);
    const wrec = new Recorder(watcher);
    assert.equal((await call(watcher, "subscribe", { topic: "$dlq.lazy" })).ok, true);

    const publishStart = Date.now();
    const off = await publish(b, "/acks", "jobs", "job-1", { task: "resize", n: 1 });
    await rec.count(3, 5000);
    await waitFor(async () => (await dlqEvents(b, "/acks", "$dlq.lazy")).length > 0, { timeout: 3000, what: "the DLQ copy" });
    await sleep(900); // three more ack_timeouts: nothing else may come
    assert.equal(rec.events.length, 3, "exactly max_deliver deliveries");
    for (const e of rec.events) {
      assert.equal(e.offset, off);
      assert.deepEqual(e.data, { task: "resize", n: 1 });
      assert.equal(e.meta.topic, "jobs");
      assert.equal(e.meta.id, "job-1");
      assert.equal(typeof e.ack, "function", "an ack-mode delivery carries an ack callback");
    }
    // Delivery k leaves the broker ack_timeout after delivery k-1, so it cannot arrive
    // earlier than (k-1) x 300 ms after the publish started.
    for (let i = 1; i < 3; i++) {
      const after = rec.events[i].at - publishStart;
      assert.ok(after >= i * 300 - 5, `delivery ${i + 1} arrived ${after} ms after the publish (ack_timeout 300 ms)`);
    }
    assert.ok(rec.events[2].at - publishStart < 3000, "redeliveries are not late");

    const dlq = await dlqEvents(b, "/acks", "$dlq.lazy");
    assert.equal(dlq.length, 1);
    const d = dlq[0];
    assert.equal(d.topic, "$dlq.lazy");
    assert.equal(d.event, "job");
    assert.deepEqual(d.data, { task: "resize", n: 1 });
    assert.equal(d.dlq.topic, "jobs", "original topic");
    assert.equal(d.dlq.offset, off, "original offset");
    assert.equal(d.dlq.deliveries, 3);
    assert.match(d.dlq.reason, /3 deliveries/);
    assert.ok(d.offset > off, "the DLQ copy is a new event in the log");

    await wrec.count(1);
    assert.equal(wrec.events[0].meta.topic, "$dlq.lazy");
    assert.deepEqual(wrec.events[0].data, { task: "resize", n: 1 });
    assert.equal(wrec.events[0].offset, d.offset);

    // The original stays in its topic; metrics count it.
    assert.deepEqual((await b.allEvents("jobs", { nsp: "/acks" })).map((e) => e.offset), [off]);
    const m = await b.metrics();
    assert.equal(m.ferry_redelivered_total, 2);
    assert.equal(m.ferry_dead_lettered_total, 1);
    assert.equal(m['ferry_dlq_depth{namespace="/acks",topic="$dlq.lazy"}'], 1);
    assert.equal(s.connected, true);
  });

  brokerTest("never acked without a consumer name: dead-lettered to $dlq.session-<pid>", async (sc) => {
    const b = await sc.broker({ toml: TOML });
    const s = await sc.connect(`${b.url}/acks`);
    const rec = new Recorder(s);
    assert.equal((await call(s, "subscribe", { topic: "jobs2", mode: "ack" })).ok, true);
    const off = await publish(b, "/acks", "jobs2", "x-1", "payload");
    await rec.count(3, 5000);
    const topic = await waitFor(
      async () => (await b.topics("/acks")).topics.map((t) => t.name).find((n) => n.startsWith("$dlq.session-")),
      { timeout: 3000, what: "a $dlq.session-<pid> topic" },
    );
    assert.equal(topic, `$dlq.session-${s._pid}`, "named after the session's pid");
    const [d] = await dlqEvents(b, "/acks", topic);
    assert.equal(d.dlq.offset, off);
    assert.equal(d.dlq.topic, "jobs2");
    assert.equal(d.data, "payload");
  });

  brokerTest("acked deliveries are never redelivered (acks immediately and after 150 ms, within ack_timeout)", async (sc) => {
    const b = await sc.broker({ toml: TOML });
    const s = await sc.connect(`${b.url}/acks`, { auth: { consumer: "diligent" } });
    const rec = new Recorder(s);
    s.onAny((...args) => {
      const ack = args[args.length - 1];
      if (typeof ack !== "function") return;
      const k = args[1]?.k ?? 0;
      if (k % 2) setTimeout(() => ack("done"), 150);
      else ack();
    });
    assert.equal((await call(s, "subscribe", { topic: "jobs", mode: "ack" })).ok, true);
    const offs = [];
    for (let k = 0; k < 6; k++) offs.push(await publish(b, "/acks", "jobs", `d-${k}`, { k }));
    await rec.count(6);
    await sleep(1300); // > 4 x ack_timeout
    assert.deepEqual(rec.offsets(), offs, "each event delivered once, in order");
    const m = await b.metrics();
    assert.equal(m.ferry_redelivered_total, 0);
    assert.equal(m.ferry_acks_total, 6);
    assert.deepEqual((await dlqEvents(b, "/acks", "$dlq.diligent")), []);
    assert.ok(!(await b.topics("/acks")).topics.some((t) => t.name.startsWith("$dlq.")));
  });

  brokerTest("max_in_flight (4): never more than 4 outstanding deliveries; each ack frees one slot", async (sc) => {
    const b = await sc.broker({ toml: TOML });
    const s = await sc.connect(`${b.url}/flight`, { auth: { consumer: "fl" } });
    const rec = new Recorder(s);
    let outstanding = 0;
    let maxOutstanding = 0;
    let autoAck = false;
    s.onAny((...args) => {
      if (typeof args[args.length - 1] !== "function") return;
      outstanding++;
      maxOutstanding = Math.max(maxOutstanding, outstanding);
      if (autoAck) setTimeout(() => ackOf(rec.events.length - 1), 5);
    });
    const acked = new Set();
    const ackOf = (i) => {
      if (acked.has(i)) return;
      acked.add(i);
      outstanding--;
      rec.events[i].ack();
    };
    assert.equal((await call(s, "subscribe", { topic: "work", mode: "ack" })).ok, true);

    const batch = Array.from({ length: 20 }, (_, k) => ({ topic: "work", event: "job", data: { k }, id: `w-${k}` }));
    const br = await b.publishHttp(batch, "/flight");
    assert.equal(br.status, 200, br.text);
    const offs = br.json.offsets;

    await rec.count(4);
    await sleep(500);
    assert.equal(rec.events.length, 4, "only max_in_flight deliveries without acks");
    assert.deepEqual(rec.offsets(), offs.slice(0, 4));

    ackOf(2); // an ack that is not the oldest still frees a slot
    await rec.count(5);
    await sleep(300);
    assert.equal(rec.events.length, 5);
    assert.equal(rec.events[4].offset, offs[4]);

    ackOf(0);
    ackOf(1);
    await rec.count(7);
    await sleep(300);
    assert.equal(rec.events.length, 7);

    autoAck = true;
    for (const i of [3, 4, 5, 6]) setTimeout(() => ackOf(i), 5);
    await rec.count(20, 5000);
    await sleep(300);
    assert.deepEqual(rec.offsets(), offs, "every event once, in order");
    assert.deepEqual(duplicates(rec.offsets()), []);
    assert.ok(maxOutstanding <= 4, `outstanding deliveries peaked at ${maxOutstanding}`);
    assert.equal(maxOutstanding, 4);
    const m = await b.metrics();
    assert.equal(m.ferry_redelivered_total, 0);
  });
});
