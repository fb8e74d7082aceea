// Publish/subscribe through the real broker with the official socket.io-client:
// several namespaces and topics, batches and deduplication, and every publish /
// subscribe / commit error — refused with {ok:false}, nothing stored, session still up.
import assert from "node:assert/strict";
import { describe } from "node:test";
import {
  assertStrictlyIncreasing,
  brokerTest,
  call,
  formatOffset,
  parseOffset,
  Recorder,
  sleep,
  waitFor,
} from "./lib/broker.mjs";

const TOML = `
[server]
ping_interval = "1s"
ping_timeout = "2s"

[limits]
max_event_bytes = 1024

[namespaces."/a"]

[namespaces."/b"]
`;

const NAMESPACES = ["/", "/a", "/b"];
const nsUrl = (b, nsp) => (nsp === "/" ? b.url : `${b.url}${nsp}`);

describe("publish/subscribe", () => {
  brokerTest("subscribers in several namespaces get exactly their topics' events, in offset order, with data, meta and offset", async (sc) => {
    const b = await sc.broker({ toml: TOML });

    // Subscribers: per namespace one on "orders" only, one on "orders"+"users", one on "users" only.
    const subs = [];
    for (const nsp of NAMESPACES) {
      for (const topics of [["orders"], ["orders", "users"], ["users"]]) {
        const s = await sc.connect(nsUrl(b, nsp));
        const rec = new Recorder(s);
        for (const topic of topics) {
          const r = await call(s, "subscribe", { topic });
          assert.equal(r.ok, true, JSON.stringify(r));
          assert.equal(r.topic, topic);
          parseOffset(r.head);
          parseOffset(r.position);
        }
        subs.push({ nsp, topics, s, rec });
      }
    }
    const pubs = {};
    for (const nsp of NAMESPACES) pubs[nsp] = await sc.connect(nsUrl(b, nsp));

    // Interleaved publishes over the three namespaces and two topics; every 5th over HTTP.
    const published = []; // {nsp, topic, event, data, id, offset}
    for (let i = 0; i < 36; i++) {
      const nsp = NAMESPACES[i % 3];
      const topic = ["orders", "users"][Math.floor(i / 3) % 2];
      const ev = { topic, event: i % 2 ? "created" : "updated", data: { i, nsp, topic, list: [i, "x", null], s: "ü\"\\" }, id: `m-${i}` };
      let r;
      if (i % 5 === 4) {
        const h = await b.publishHttp(ev, nsp);
        assert.equal(h.status, 200, h.text);
        r = h.json;
      } else {
        r = await call(pubs[nsp], "publish", ev);
      }
      assert.equal(r.ok, true, JSON.stringify(r));
      assert.equal(r.duplicate, false);
      published.push({ nsp, ...ev, offset: r.offset });
    }
    // One epoch per data directory; offsets increase per namespace.
    const epochs = new Set(published.map((p) => parseOffset(p.offset).epoch));
    assert.equal(epochs.size, 1, "one epoch");
    for (const nsp of NAMESPACES) assertStrictlyIncreasing(assert, published.filter((p) => p.nsp === nsp).map((p) => p.offset), nsp);

    // Batch publish in /a: offsets + duplicates arrays.
    const batch = [
      { topic: "orders", event: "created", data: { batch: 1 }, id: "b-1" },
      { topic: "users", event: "created", data: { batch: 2 }, id: "b-2" },
      { topic: "orders", event: "updated", data: { batch: 3 }, id: "b-3" },
    ];
    const br = await call(pubs["/a"], "publish", batch);
    assert.equal(br.ok, true, JSON.stringify(br));
    assert.equal(br.offsets.length, 3);
    assert.deepEqual(br.duplicates, [false, false, false]);
    assertStrictlyIncreasing(assert, br.offsets, "batch offsets");
    batch.forEach((ev, k) => published.push({ nsp: "/a", ...ev, offset: br.offsets[k] }));
    // The same batch again: all duplicates, the original offsets, nothing stored again.
    const again = await call(pubs["/a"], "publish", batch);
    assert.deepEqual(again, { ok: true, offsets: br.offsets, duplicates: [true, true, true] });
    // A mixed batch: only the new id is stored.
    const mixed = await call(pubs["/a"], "publish", [batch[0], { topic: "orders", event: "created", data: { batch: 4 }, id: "b-4" }]);
    assert.equal(mixed.ok, true);
    assert.deepEqual(mixed.duplicates, [true, false]);
    assert.equal(mixed.offsets[0], br.offsets[0]);
    published.push({ nsp: "/a", topic: "orders", event: "created", data: { batch: 4 }, id: "b-4", offset: mixed.offsets[1] });
    // A single duplicate over HTTP gets the original offset.
    const hd = await b.publishHttp({ topic: "orders", event: "created", data: { i: 0 }, id: "m-0" }, "/");
    assert.equal(hd.status, 200);
    assert.deepEqual(hd.json, { ok: true, offset: published[0].offset, duplicate: true });

    // Every subscriber gets exactly its (namespace, topics) events, in offset order.
    for (const sub of subs) {
      const expected = published
        .filter((p) => p.nsp === sub.nsp && sub.topics.includes(p.topic))
        .sort((x, y) => (x.offset < y.offset ? -1 : 1));
      await sub.rec.count(expected.length, 5000);
    }
    await sleep(300); // would-be extras (duplicates, other namespaces) have had time to arrive
    for (const sub of subs) {
      const expected = published
        .filter((p) => p.nsp === sub.nsp && sub.topics.includes(p.topic))
        .sort((x, y) => (x.offset < y.offset ? -1 : 1));
      const got = sub.rec.events.map((e) => ({ event: e.event, data: e.data, topic: e.meta.topic, id: e.meta.id, offset: e.offset }));
      assert.deepEqual(
        got,
        expected.map((p) => ({ event: p.event, data: p.data, topic: p.topic, id: p.id, offset: p.offset })),
        `subscriber ${sub.nsp} ${sub.topics}`,
      );
      for (const e of sub.rec.events) {
        assert.equal(e.args.length, 3, "args are (data, meta, offset)");
        assert.deepEqual(Object.keys(e.meta), ["topic", "id", "ts"]);
        assert.equal(typeof e.meta.ts, "number");
        assert.ok(Math.abs(e.meta.ts - Date.now()) < 60000, "ts is a wall-clock ms timestamp");
      }
    }

    // The log holds exactly what was published (GET /v1/topics/<t>/events), same ts as delivered.
    for (const nsp of NAMESPACES) {
      for (const topic of ["orders", "users"]) {
        const stored = await b.allEvents(topic, { nsp });
        const expected = published.filter((p) => p.nsp === nsp && p.topic === topic).sort((x, y) => (x.offset < y.offset ? -1 : 1));
        assert.deepEqual(
          stored.map((e) => ({ offset: e.offset, topic: e.topic, event: e.event, id: e.id, data: e.data })),
          expected.map((p) => ({ offset: p.offset, topic: p.topic, event: p.event, id: p.id, data: p.data })),
          `log of ${nsp} ${topic}`,
        );
        const sub = subs.find((s) => s.nsp === nsp && s.topics.includes(topic));
        for (const e of stored) {
          const d = sub.rec.events.find((x) => x.offset === e.offset);
          assert.equal(d.meta.ts, e.ts, "delivered ts = stored ts");
        }
      }
    }
    const t = await b.topics("/a");
    assert.deepEqual(t.topics.map((x) => x.name).sort(), ["orders", "users"]);
  });

  brokerTest("publish, subscribe and commit errors are refused with {ok:false}, store nothing, and keep the session up", async (sc) => {
    const b = await sc.broker({ toml: TOML });
    const sub = await sc.connect(b.url);
    const rec = new Recorder(sub);
    assert.equal((await call(sub, "subscribe", { topic: "t" })).ok, true);
    assert.equal((await call(sub, "subscribe", { topic: "$x" })).ok, true, "reading a $ topic is allowed");
    const p = await sc.connect(b.url);
    const sid = p.id;
    let disconnects = 0;
    p.on("disconnect", () => disconnects++);

    const good0 = await call(p, "publish", { topic: "t", event: "e", data: { n: 0 }, id: "good-0" });
    assert.equal(good0.ok, true);
    const { epoch, seq: seq0 } = parseOffset(good0.offset);
    const headBefore = (await b.topics()).head;
    assert.equal(headBefore, good0.offset);

    const expectError = async (what, r, codes) => {
      assert.equal(r?.ok, false, `${what}: ${JSON.stringify(r)}`);
      assert.ok([].concat(codes).includes(r.error?.code), `${what}: expected ${codes}, got ${JSON.stringify(r)}`);
      assert.equal(typeof r.error.message, "string");
      assert.ok(r.error.message.length > 0);
      assert.equal(p.connected, true, `${what}: session still connected`);
      assert.equal(p.id, sid, `${what}: same session`);
    };
    const pub = (payload) => call(p, "publish", payload);

    await expectError("reserved topic", await pub({ topic: "$x", event: "e", data: 1, id: "bad-1" }), "reserved_topic");
    await expectError("reserved topic $dlq", await pub({ topic: "$dlq.c", event: "e", data: 1, id: "bad-1b" }), "reserved_topic");
    await expectError("reserved event subscribe", await pub({ topic: "t", event: "subscribe", data: 1, id: "bad-2" }), "reserved_event");
    await expectError("reserved event publish", await pub({ topic: "t", event: "publish", data: 1, id: "bad-2b" }), "reserved_event");
    await expectError("reserved event connect", await pub({ topic: "t", event: "connect", data: 1, id: "bad-2c" }), "reserved_event");
    await expectError("reserved event $offset", await pub({ topic: "t", event: "$offset", data: 1, id: "bad-2d" }), "reserved_event");
    await expectError("string body", await pub("just a string"), "invalid_payload");
    await expectError("number body", await pub(42), "invalid_payload");
    await expectError("empty batch", await pub([]), "invalid_payload");
    await expectError("batch of non-objects", await pub([1, 2]), "invalid_payload");
    await expectError("topic not a string", await pub({ topic: 5, event: "e", id: "bad-3" }), "invalid_topic");
    await expectError("missing topic", await pub({ event: "e", id: "bad-3b" }), "invalid_topic");
    await expectError("empty topic", await pub({ topic: "", event: "e", id: "bad-3c" }), "invalid_topic");
    await expectError("event not a string", await pub({ topic: "t", event: 7, id: "bad-4" }), "invalid_event");
    await expectError("id an object", await pub({ topic: "t", event: "e", id: { a: 1 } }), "invalid_id");
    await expectError("oversize event", await pub({ topic: "t", event: "e", data: "x".repeat(2000), id: "bad-big" }), "too_large");
    // One bad event refuses the whole batch: the good one is not stored either.
    await expectError(
      "batch with a reserved topic",
      await pub([
        { topic: "t", event: "e", data: 1, id: "bad-batch-ok" },
        { topic: "$y", event: "e", data: 2, id: "bad-batch-bad" },
      ]),
      "reserved_topic",
    );

    // HTTP publish errors carry an HTTP status too.
    const h1 = await b.publishHttp("{not json");
    assert.equal(h1.status, 400, h1.text);
    assert.equal(h1.json.error.code, "invalid_payload");
    const h2 = await b.publishHttp({ topic: "$x", event: "e", id: "bad-h2" });
    assert.equal(h2.status, 400);
    assert.equal(h2.json.error.code, "reserved_topic");
    const h3 = await b.publishHttp({ topic: "t", event: "e", data: "y".repeat(1500), id: "bad-h3" });
    assert.equal(h3.status, 413);
    assert.equal(h3.json.error.code, "too_large");
    const h4 = await b.publishHttp({ topic: "t", event: "unsubscribe", id: "bad-h4" });
    assert.equal(h4.status, 400);
    assert.equal(h4.json.error.code, "reserved_event");

    // subscribe errors
    const sub2 = (payload) => call(p, "subscribe", payload);
    await expectError("unparseable offset", await sub2({ topic: "t2", from: "garbage" }), "invalid_offset");
    const foreignEpoch = ((parseInt(epoch, 16) ^ 0x5a5a5a5a) >>> 0).toString(16).padStart(8, "0");
    assert.notEqual(foreignEpoch, epoch);
    await expectError("offset of another epoch", await sub2({ topic: "t2", from: formatOffset(foreignEpoch, 1n) }), "epoch_mismatch");
    await expectError("from of a wrong type", await sub2({ topic: "t2", from: 12 }), ["invalid_from", "invalid_offset"]);
    await expectError("bad mode", await sub2({ topic: "t2", mode: "sometimes" }), "invalid_mode");
    await expectError("subscribe without topic", await sub2({ from: "latest" }), "invalid_topic");

    // commit errors
    await expectError("commit without a subscription", await call(p, "commit", { topic: "t", offset: good0.offset }), "not_subscribed");
    assert.equal((await sub2({ topic: "t" })).ok, true);
    await expectError("commit beyond the head", await call(p, "commit", { topic: "t", offset: formatOffset(epoch, seq0 + 100n) }), "beyond_head");
    await expectError("commit unparseable offset", await call(p, "commit", { topic: "t", offset: "zzz" }), "invalid_offset");
    await expectError("commit foreign epoch", await call(p, "commit", { topic: "t", offset: formatOffset(foreignEpoch, seq0) }), "epoch_mismatch");
    await expectError("commit bad payload", await call(p, "commit", "nope"), "invalid_payload");
    await expectError("unsubscribe not subscribed", await call(p, "unsubscribe", { topic: "never" }), "not_subscribed");
    assert.deepEqual(await call(p, "commit", { topic: "t", offset: good0.offset }), { ok: true });

    // Nothing was stored: the head did not move, and a valid publish takes the next seq.
    assert.equal((await b.topics()).head, headBefore);
    const good1 = await pub({ topic: "t", event: "e", data: { n: 1 }, id: "good-1" });
    assert.equal(good1.ok, true);
    assert.equal(parseOffset(good1.offset).seq, seq0 + 1n, "no sequence number was consumed by refused publishes");
    // The failed subscribes did not subscribe: t2 events do not reach p.
    const precT2 = new Recorder(p);
    assert.equal((await pub({ topic: "t2", event: "e", data: 2, id: "good-2" })).ok, true);

    const stored = await b.allEvents("t");
    assert.deepEqual(stored.map((e) => e.id), ["good-0", "good-1"]);
    assert.deepEqual((await b.eventsPage("$x")).events, []);
    assert.deepEqual((await b.eventsPage("$y")).events, []);
    const names = (await b.topics()).topics.map((x) => x.name).sort();
    assert.deepEqual(names, ["t", "t2"]);

    await rec.count(2);
    await sleep(200);
    assert.deepEqual(rec.ids(), ["good-0", "good-1"], "the subscriber got only the stored events");
    assert.equal(precT2.events.length, 0, "refused subscribes deliver nothing");
    assert.equal(disconnects, 0);
    assert.equal(p.connected, true);
    const m = await b.metrics();
    assert.ok(m.ferry_publish_errors_total >= 20, `publish errors counted: ${m.ferry_publish_errors_total}`);
  });

  brokerTest("--dynamic-namespaces serves namespaces that are not configured, each with its own log", async (sc) => {
    const b = await sc.broker({ dynamic: true });
    const d1 = await sc.connect(`${b.url}/dyn-1`);
    const d2 = await sc.connect(`${b.url}/dyn-2`);
    const r1 = new Recorder(d1);
    const r2 = new Recorder(d2);
    assert.equal((await call(d1, "subscribe", { topic: "x" })).ok, true);
    assert.equal((await call(d2, "subscribe", { topic: "x" })).ok, true);
    const a = await call(d1, "publish", { topic: "x", event: "e", data: "one", id: "same-id" });
    const c = await call(d2, "publish", { topic: "x", event: "e", data: "two", id: "same-id" });
    assert.equal(a.duplicate, false);
    assert.equal(c.duplicate, false, "dedupe is per namespace");
    await r1.count(1);
    await r2.count(1);
    await sleep(150);
    assert.deepEqual(r1.events.map((e) => e.data), ["one"]);
    assert.deepEqual(r2.events.map((e) => e.data), ["two"]);
    assert.deepEqual((await b.allEvents("x", { nsp: "/dyn-2" })).map((e) => e.data), ["two"]);

    // Without the flag an unknown namespace is refused with CONNECT_ERROR.
    const strict = await sc.broker();
    const s = sc.client(`${strict.url}/nope`);
    const err = await waitFor(
      () =>
        new Promise((resolve) => {
          s.once("connect_error", (e) => resolve(e));
        }),
      { timeout: 5000, what: "connect_error" },
    );
    assert.match(err.message, /namespace/i);
  });
});
