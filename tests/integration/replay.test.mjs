// Replay and recovery edge cases: subscriptions that start in the past (earliest, an
// offset, a time) while live events keep coming, a recovery in the middle of such a
// history replay, binary attachments through the log, several namespaces on one
// Manager recovering together, ack-mode deliveries outstanding at a disconnect, and a
// gap left by retention (the client must be told, never silently).
import assert from "node:assert/strict";
import { describe } from "node:test";
import {
  assertStrictlyIncreasing,
  brokerTest,
  call,
  connected,
  duplicates,
  loadClient,
  nextEvent,
  Recorder,
  sleep,
  waitFor,
} from "./lib/broker.mjs";

const TOML = `
[server]
ping_interval = "1s"
ping_timeout = "1s"

[namespaces."/a"]
[namespaces."/b"]

[namespaces."/short"]
retention_age = "1s"
`;

async function publishBatch(b, topic, prefix, n, nsp = "/") {
  const batch = Array.from({ length: n }, (_, k) => ({ topic, event: "e", data: { prefix, k }, id: `${prefix}-${k}` }));
  const offsets = [];
  for (let i = 0; i < batch.length; i += 500) {
    const r = await b.publishHttp(batch.slice(i, i + 500), nsp);
    assert.equal(r.status, 200, r.text);
    offsets.push(...r.json.offsets);
  }
  return offsets;
}

async function reconnect(s) {
  s.io.reconnection(true);
  s.connect();
  await connected(s, 10000);
}

describe("replay and recovery edge cases", () => {
  brokerTest("subscribing from earliest while live events keep coming: history then live, no duplicates, no gaps", async (sc) => {
    const b = await sc.broker({ toml: TOML });
    const hist = await publishBatch(b, "h", "old", 1500);
    const s = await sc.connect(b.url);
    const rec = new Recorder(s);
    assert.equal((await call(s, "subscribe", { topic: "live" })).ok, true);
    // live traffic on both topics while the history of "h" is replayed
    let stop = false;
    const liveOffsets = { h: [], live: [] };
    const pumping = (async () => {
      for (let k = 0; !stop; k++) {
        const topic = k % 2 ? "h" : "live";
        const r = await b.publishHttp({ topic, event: "e", data: { k }, id: `new-${k}` });
        liveOffsets[topic].push(r.json.offset);
        if (k % 10 === 0) await sleep(1);
      }
    })();
    await sleep(20);
    const r = await call(s, "subscribe", { topic: "h", from: "earliest" });
    assert.equal(r.ok, true);
    await sleep(400);
    stop = true;
    await pumping;
    const wantH = [...hist, ...liveOffsets.h.filter((o) => o > r.position)];
    await rec.until((x) => x.forTopic("h").length >= wantH.length, 10000, `all ${wantH.length} events of h`);
    await sleep(300);
    const gotH = rec.offsets("h");
    assertStrictlyIncreasing(assert, gotH, "h offsets");
    assert.deepEqual(gotH, wantH, "history then live, every event once");
    assertStrictlyIncreasing(assert, rec.offsets("live"), "live offsets");
    assert.deepEqual(rec.offsets("live"), liveOffsets.live, "the live topic lost nothing during the replay");
  });

  brokerTest("subscribe from an offset (inclusive) and from {time}", async (sc) => {
    const b = await sc.broker({ toml: TOML });
    const first = await publishBatch(b, "t", "a", 5);
    await sleep(50);
    const t0 = Date.now();
    await sleep(50);
    const second = await publishBatch(b, "t", "b", 3);
    const s1 = await sc.connect(b.url);
    const r1 = new Recorder(s1);
    assert.equal((await call(s1, "subscribe", { topic: "t", from: first[3] })).ok, true);
    await r1.count(5);
    const s2 = await sc.connect(b.url);
    const r2 = new Recorder(s2);
    assert.equal((await call(s2, "subscribe", { topic: "t", from: { time: t0 } })).ok, true);
    await r2.count(3);
    await sleep(200);
    assert.deepEqual(r1.offsets(), [first[3], first[4], ...second], "from an offset includes that offset");
    assert.deepEqual(r2.offsets(), second, "from {time} starts at the first event at or after it");
  });

  brokerTest("recovery in the middle of a history replay: the rest of the history, then live, exactly once", async (sc) => {
    const b = await sc.broker({ toml: TOML });
    const hist = await publishBatch(b, "big", "old", 3000);
    const s = await sc.connect(b.url);
    const rec = new Recorder(s);
    const sid = s.id;
    s.io.reconnection(false);
    const gone = nextEvent(s, "disconnect", 10000);
    let cut = false;
    s.onAny(() => {
      // Drop the transport while the replay is under way — from setImmediate, not from
      // inside the handler: socket.io-client dispatches decoded packets on nextTick, and
      // packets still queued when the socket disconnects go to its receiveBuffer and are
      // emitted after the reconnect, while the offset it reports is the last one it
      // emitted; cutting synchronously would make the client itself see duplicates.
      if (!cut && rec.events.length >= 700) {
        cut = true;
        setImmediate(() => s.io.engine.close());
      }
    });
    // the history replay starts at once, so the cut may come before the subscribe ack
    const subscribed = call(s, "subscribe", { topic: "big", from: "earliest" }).catch((e) => ({ lost: e.message }));
    await gone;
    const ackReply = await subscribed;
    assert.ok(ackReply.ok === true || ackReply.lost, JSON.stringify(ackReply));
    const receivedBeforeCut = rec.events.length;
    const more = await publishBatch(b, "big", "new", 20);
    const offsetAtReconnect = s._lastOffset; // what the client sends in its CONNECT auth
    assert.equal(s.receiveBuffer.length, 0, "nothing received but not emitted before the reconnect");
    await reconnect(s);
    assert.equal(s.recovered, true);
    assert.equal(s.id, sid);
    await rec.until((x) => x.events.length >= hist.length + more.length, 15000, "the whole history and the new events");
    await sleep(300);
    const got = rec.offsets();
    const dups = duplicates(got);
    console.error(
      `# mid-history recovery: cut after ${receivedBeforeCut} of ${hist.length} history events; the client reconnected ` +
        `with offset ${offsetAtReconnect} (= delivery #${hist.indexOf(offsetAtReconnect) + 1}); received ${got.length} ` +
        `deliveries, ${dups.length} duplicated` +
        (dups.length ? ` (${dups[0][0]} .. ${dups[dups.length - 1][0]})` : ""),
    );
    assert.ok(receivedBeforeCut < hist.length, "the cut happened during the replay");
    assert.equal(dups.length, 0, "no event delivered twice");
    assertStrictlyIncreasing(assert, got);
    assert.deepEqual(got, [...hist, ...more]);
  });

  brokerTest("recovery in the middle of a history replay while another subscription gets live events", async (sc) => {
    const b = await sc.broker({ toml: TOML });
    const hist = await publishBatch(b, "big", "old", 2500);
    const s = await sc.connect(b.url);
    const rec = new Recorder(s);
    const sid = s.id;
    assert.equal((await call(s, "subscribe", { topic: "live" })).ok, true);
    const liveOffsets = [];
    const bigLive = [];
    let stop = false;
    const pumping = (async () => {
      for (let k = 0; !stop; k++) {
        const topic = k % 3 ? "live" : "big";
        const r = await b.publishHttp({ topic, event: "e", data: { k }, id: `new-${k}` });
        (topic === "live" ? liveOffsets : bigLive).push(r.json.offset);
        await sleep(2);
      }
    })();
    s.io.reconnection(false);
    const gone = nextEvent(s, "disconnect", 10000);
    let cut = false;
    s.onAny(() => {
      if (!cut && rec.forTopic("big").length >= 600) {
        cut = true;
        setImmediate(() => s.io.engine.close());
      }
    });
    const subscribed = call(s, "subscribe", { topic: "big", from: "earliest" }).catch((e) => ({ lost: e.message }));
    await gone;
    const ackReply = await subscribed;
    await sleep(200); // events go on while the client is away
    await reconnect(s);
    assert.equal(s.recovered, true);
    assert.equal(s.id, sid);
    await sleep(300);
    stop = true;
    await pumping;
    const position = ackReply.ok ? ackReply.position : null;
    const wantBig = [...hist, ...bigLive.filter((o) => position === null || o > position)];
    await rec.until((x) => x.forTopic("live").length >= liveOffsets.length && x.forTopic("big").length >= wantBig.length, 15000, "everything");
    await sleep(300);
    const big = rec.offsets("big");
    const live = rec.offsets("live");
    console.error(`# history+live recovery: big ${big.length} (want ${wantBig.length}), live ${live.length} (want ${liveOffsets.length})`);
    assert.deepEqual(duplicates(big), [], "big: no duplicates");
    assert.deepEqual(duplicates(live), [], "live: no duplicates");
    assertStrictlyIncreasing(assert, big, "big");
    assertStrictlyIncreasing(assert, live, "live");
    assert.deepEqual(live, liveOffsets, "live: everything, in order");
    if (position !== null) assert.deepEqual(big, wantBig, "big: the whole history then the live events after the subscribe");
    else assert.deepEqual(big.slice(0, hist.length), hist);
  });

  brokerTest("binary attachments are stored, delivered live, replayed on recovery and shown base64 over HTTP", async (sc) => {
    const b = await sc.broker({ toml: TOML });
    const s = await sc.connect(b.url);
    const rec = new Recorder(s);
    assert.equal((await call(s, "subscribe", { topic: "bin" })).ok, true);
    const p = await sc.connect(b.url);
    const blob = Buffer.from([0, 1, 2, 250, 255, 10, 13]);
    const r = await call(p, "publish", { topic: "bin", event: "file", data: { name: "x.bin", blob, list: [Buffer.from("hi")] }, id: "bin-1" });
    assert.equal(r.ok, true, JSON.stringify(r));
    await rec.count(1);
    const d = rec.events[0];
    assert.equal(d.data.name, "x.bin");
    assert.ok(Buffer.isBuffer(d.data.blob), "attachment arrives as binary");
    assert.deepEqual([...d.data.blob], [...blob]);
    assert.equal(Buffer.from(d.data.list[0]).toString(), "hi");
    assert.equal(d.offset, r.offset);
    assert.equal(d.meta.id, "bin-1");

    // replay on recovery
    s.io.reconnection(false);
    const gone = nextEvent(s, "disconnect");
    s.io.engine.close();
    await gone;
    const r2 = await call(p, "publish", { topic: "bin", event: "file", data: { blob: Buffer.from("second") }, id: "bin-2" });
    await reconnect(s);
    assert.equal(s.recovered, true);
    await rec.count(2);
    assert.equal(rec.events[1].offset, r2.offset);
    assert.equal(Buffer.from(rec.events[1].data.blob).toString(), "second");

    const [e1] = (await b.eventsPage("bin")).events;
    assert.deepEqual(e1.attachments, [blob.toString("base64"), Buffer.from("hi").toString("base64")]);
  });

  brokerTest("two namespaces multiplexed on one Manager both recover after a broker crash", async (sc) => {
    const b = await sc.broker({ toml: TOML });
    const { Manager } = loadClient();
    const m = new Manager(b.url, { reconnectionDelay: 100, reconnectionDelayMax: 300, randomizationFactor: 0 });
    const sa = m.socket("/a");
    const sb = m.socket("/b");
    sc.sockets.push(sa, sb);
    sa.connect();
    sb.connect();
    await connected(sa);
    await connected(sb);
    const ra = new Recorder(sa);
    const rb = new Recorder(sb);
    assert.equal((await call(sa, "subscribe", { topic: "x" })).ok, true);
    assert.equal((await call(sb, "subscribe", { topic: "x" })).ok, true);
    const ids = { a: sa.id, b: sb.id };
    const a1 = await publishBatch(b, "x", "a1", 2, "/a");
    const b1 = await publishBatch(b, "x", "b1", 2, "/b");
    await ra.count(2);
    await rb.count(2);
    m.reconnection(false);
    const gone = nextEvent(sa, "disconnect", 10000);
    await b.kill();
    await gone;
    const { samePort } = await b.restart();
    if (!samePort) m.uri = b.url;
    const a2 = await publishBatch(b, "x", "a2", 3, "/a");
    const b2 = await publishBatch(b, "x", "b2", 1, "/b");
    m.reconnection(true);
    sa.connect();
    sb.connect();
    await connected(sa, 10000);
    await connected(sb, 10000);
    assert.equal(sa.recovered, true);
    assert.equal(sb.recovered, true);
    assert.deepEqual({ a: sa.id, b: sb.id }, ids);
    await ra.count(5);
    await rb.count(3);
    await sleep(200);
    assert.deepEqual(ra.offsets(), [...a1, ...a2]);
    assert.deepEqual(rb.offsets(), [...b1, ...b2]);
  });

  brokerTest("ack mode: deliveries still unacked at a disconnect come again after the session recovers", async (sc) => {
    const b = await sc.broker({ toml: TOML });
    const s = await sc.connect(b.url);
    const rec = new Recorder(s);
    assert.equal((await call(s, "subscribe", { topic: "q", mode: "ack" })).ok, true);
    const offs = await publishBatch(b, "q", "q", 3);
    await rec.count(3);
    rec.events[0].ack(); // only the first is acknowledged
    await sleep(100);
    s.io.reconnection(false);
    const gone = nextEvent(s, "disconnect");
    s.io.engine.close();
    await gone;
    await reconnect(s);
    assert.equal(s.recovered, true);
    await rec.count(5, 5000);
    await sleep(300);
    assert.deepEqual(rec.offsets(), [offs[0], offs[1], offs[2], offs[1], offs[2]], "the two unacked ones are delivered again");
    for (const e of rec.events.slice(3)) e.ack();
    await sleep(300);
    assert.equal(rec.events.length, 5);
  });

  brokerTest("retention passed a disconnected session's position: on reconnect the client is told with $gap, never silently", { timeout: 60000 }, async (sc) => {
    const b = await sc.broker({ toml: TOML });
    const url = `${b.url}/short`;
    const s = await sc.connect(url);
    const rec = new Recorder(s);
    assert.equal((await call(s, "subscribe", { topic: "g" })).ok, true);
    const first = await publishBatch(b, "g", "a", 1, "/short");
    await rec.count(1);
    s.io.reconnection(false);
    const gone = nextEvent(s, "disconnect");
    s.io.engine.close();
    await gone;
    const lost = await publishBatch(b, "g", "lost", 3, "/short");
    // Retention runs every 10 s and removes events older than 1 s, at the granularity of
    // the log's 1 s time checkpoints, and it always keeps the newest checkpoint's events:
    // a write 1 s later closes the checkpoint that covers the lost events (it goes with
    // them), one more write keeps the log non-empty.
    await sleep(1100);
    lost.push(...(await publishBatch(b, "g", "filler", 1, "/short")));
    const kept = await publishBatch(b, "g", "kept", 1, "/short");
    await waitFor(async () => (await b.eventsPage("g", { nsp: "/short" })).events.length === 1, {
      timeout: 25000,
      interval: 250,
      what: "retention to remove the events",
    });
    assert.deepEqual((await b.eventsPage("g", { nsp: "/short" })).events.map((e) => e.offset), kept);
    await reconnect(s);
    await rec.until((x) => x.events.length >= 2, 5000, "the event after the gap");
    await sleep(300);
    const gaps = rec.notices.filter(([name]) => name === "$gap");
    assert.equal(gaps.length, 1, `one $gap notice: ${JSON.stringify(rec.notices)}`);
    const gap = gaps[0][1];
    assert.equal(gap.reason, "retention");
    assert.ok(gap.first > lost[lost.length - 1], `first available offset ${gap.first} is after the removed events`);
    assert.deepEqual(rec.offsets(), [first[0], kept[0]], "nothing that was removed, nothing twice");
    // DESIGN.md section 2: "recovered:false plus an explicit $gap event"
    assert.equal(s.recovered, false, "a recovery with a gap is not reported as recovered");
  });
});
