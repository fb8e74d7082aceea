// Crash durability: publishers keep publishing with ids while the broker is SIGKILLed
// (twice) and restarted on the same data directory; unacked ids are retried. At the end
// every acked id is in the log exactly once, at the offset its ack named, and a
// subscriber that was subscribed all along (session recovery + named consumer) got every
// event, in offset order, without gaps or duplicates.
import assert from "node:assert/strict";
import { describe } from "node:test";
import { assertStrictlyIncreasing, brokerTest, call, duplicates, Recorder, sleep, withTimeout } from "./lib/broker.mjs";

// Both commit paths: a writer thread ("on") and commits on the io thread ("off", what
// "auto" picks on a single CPU).
const toml = (writer) => `
[server]
ping_interval = "1s"
ping_timeout = "1s"
[storage]
writer_thread = "${writer}"
`;

const TOPICS = ["load-a", "load-b"];

for (const writer of ["on", "off"]) {
describe(`crash durability (writer_thread=${writer})`, () => {
  brokerTest(
    "every acked publish survives SIGKILL exactly once and a subscribed client gets all of them in order",
    { timeout: 170000 },
    async (sc) => {
      const b = await sc.broker({ toml: toml(writer) });
      const notes = [];

      // If a restart cannot take the same port, the clients are pointed at the new one
      // (the same socket.io-client objects, so pid/offset recovery still applies).
      const sockets = [];
      const retarget = () => {
        for (const s of sockets) s.io.uri = b.url;
      };

      // The subscriber: a named consumer with a recoverable session, subscribed from earliest.
      const sub = await sc.connect(b.url, { auth: { consumer: "crash-sub" } });
      sockets.push(sub);
      const rec = new Recorder(sub);
      for (const topic of TOPICS) {
        const r = await call(sub, "subscribe", { topic, from: "earliest" });
        assert.equal(r.ok, true, JSON.stringify(r));
      }
      const subConnects = [];
      sub.on("connect", () => subConnects.push({ recovered: sub.recovered, id: sub.id }));
      const subId = sub.id;

      // Publishers: each waits for the ack of one publish before it counts the id as
      // acked; a failed/timed-out id is retried (same id) until acked.
      const N = 4;
      const acked = new Map(); // id -> {offset, topic, duplicate}
      const attempted = new Set();
      const ackLog = []; // every ok reply, for the "duplicate offset" check
      let stop = false;
      let failures = 0;
      const pubSockets = [];
      for (let i = 0; i < N; i++) {
        // one publisher stays on HTTP long-polling, the others upgrade to WebSocket
        const s = await sc.connect(b.url, i === N - 1 ? { transports: ["polling"] } : {});
        pubSockets.push(s);
        sockets.push(s);
      }
      const runPublisher = async (i) => {
        const s = pubSockets[i];
        const pending = [];
        let n = 0;
        for (;;) {
          if (stop && pending.length === 0) return;
          if (!s.connected) {
            await sleep(20);
            continue;
          }
          const id = pending.length ? pending.shift() : `p${i}-${n++}`;
          const k = Number(id.split("-")[1]);
          const topic = TOPICS[k % 2];
          attempted.add(id);
          try {
            const r = await call(s, "publish", { topic, event: "tick", data: { id, k }, id }, 2000);
            if (r.ok) {
              acked.set(id, { offset: r.offset, topic, duplicate: r.duplicate });
              ackLog.push({ id, offset: r.offset, duplicate: r.duplicate });
            } else {
              failures++;
              pending.push(id);
            }
          } catch {
            failures++;
            pending.push(id);
          }
        }
      };
      const runs = pubSockets.map((_, i) => runPublisher(i));

      const crash = async (label) => {
        const before = acked.size;
        await b.kill();
        notes.push(`${label}: SIGKILL after ${before} acked ids`);
        await sleep(300);
        const { samePort } = await b.restart();
        if (!samePort) {
          notes.push(`${label}: restarted on a new port ${b.port}`);
          retarget();
        }
      };

      await sleep(1200);
      await crash("crash 1");
      await sleep(1200);
      await crash("crash 2");
      await sleep(1000);
      stop = true;
      await withTimeout(Promise.all(runs), 30000, "publishers to drain their unacked ids").catch((e) => {
        throw new Error(`${e.message} (acked ${acked.size} of ${attempted.size})`);
      });
      const dupAcks = ackLog.filter((a) => a.duplicate).length;
      console.error(
        `# crash test: ${notes.join("; ")}; ${acked.size} ids acked, ${failures} failed attempts retried, ` +
          `${dupAcks} retries acked as duplicates`,
      );

      // Every attempted id ended acked.
      assert.equal(acked.size, attempted.size);
      assert.ok(acked.size > 200, `enough load: ${acked.size}`);
      assert.ok(failures > 0, "the crashes interrupted publishes (otherwise the test proved nothing)");

      // The log: each acked id exactly once, at the offset its ack named; nothing else.
      const logged = new Map(); // id -> event
      for (const topic of TOPICS) {
        const evs = await b.allEvents(topic, { limit: 5000 });
        assertStrictlyIncreasing(assert, evs.map((e) => e.offset), `log offsets of ${topic}`);
        const dups = duplicates(evs.map((e) => e.id));
        assert.deepEqual(dups, [], `ids stored more than once in ${topic}`);
        for (const e of evs) {
          assert.equal(e.topic, topic);
          assert.deepEqual(e.data.id, e.id);
          logged.set(e.id, e);
        }
      }
      const missing = [...acked.keys()].filter((id) => !logged.has(id));
      assert.deepEqual(missing.slice(0, 20), [], `${missing.length} acked ids are missing from the log`);
      const unknown = [...logged.keys()].filter((id) => !attempted.has(id));
      assert.deepEqual(unknown, [], "the log holds only ids that were published");
      for (const a of ackLog) {
        assert.equal(logged.get(a.id).offset, a.offset, `ack offset of ${a.id} (duplicate=${a.duplicate}) = stored offset`);
      }

      // The subscriber recovered its session after each crash and got everything, in order.
      await rec.until(
        (r) => r.events.length >= logged.size,
        20000,
        `subscriber to receive all ${logged.size} events (has ${rec.events.length})`,
      );
      await sleep(300);
      assert.equal(subConnects.length, 2, `subscriber reconnected once per crash: ${JSON.stringify(subConnects)}`);
      for (const c of subConnects) {
        assert.equal(c.recovered, true, "socket.recovered after the restart");
        assert.equal(c.id, subId, "same sid after recovery");
      }
      for (const topic of TOPICS) {
        const got = rec.offsets(topic);
        assertStrictlyIncreasing(assert, got, `subscriber offsets of ${topic} (in order, no duplicates)`);
        const stored = [...logged.values()].filter((e) => e.topic === topic).map((e) => e.offset).sort();
        assert.deepEqual(got, stored, `subscriber got every stored ${topic} event without gaps`);
      }
      // The offset argument and the data agree.
      for (const e of rec.events) assert.equal(logged.get(e.meta.id).offset, e.offset);
    },
  );
});

describe(`drain and dedupe across restarts (writer_thread=${writer})`, () => {
  brokerTest("SIGTERM under publish load: exit 0, every acked publish stored exactly once after the restart", async (sc) => {
    const b = await sc.broker({ toml: toml(writer) });
    const pubs = [];
    for (let i = 0; i < 3; i++) pubs.push(await sc.connect(b.url));
    const acked = new Map();
    const refused = [];
    let stop = false;
    const runs = pubs.map(async (s, i) => {
      for (let n = 0; !stop; n++) {
        const id = `d${i}-${n}`;
        try {
          const r = await call(s, "publish", { topic: "drain", event: "e", data: { id }, id }, 2000);
          if (r.ok) acked.set(id, r.offset);
          else refused.push([id, r.error.code]);
        } catch {
          // the connection went away with the drain: not acked
        }
        if (!s.connected) return;
      }
    });
    await sleep(700);
    const exit = await b.stop();
    stop = true;
    await withTimeout(Promise.all(runs), 10000, "publishers to stop");
    assert.deepEqual(exit, { code: 0, signal: null });
    for (const [, code] of refused) assert.equal(code, "shutting_down", "the only refusal during a drain");
    assert.ok(acked.size > 50, `load before the drain: ${acked.size}`);
    await b.restart();
    const evs = await b.allEvents("drain", { limit: 5000 });
    assert.deepEqual(duplicates(evs.map((e) => e.id)), []);
    const stored = new Map(evs.map((e) => [e.id, e.offset]));
    for (const [id, off] of acked) assert.equal(stored.get(id), off, `acked ${id} is stored at its offset`);
  });

  brokerTest("the dedupe window survives a crash: a re-sent id is acked as a duplicate with its original offset", async (sc) => {
    const b = await sc.broker({ toml: toml(writer) });
    const first = await b.publishHttp({ topic: "dd", event: "e", data: 1, id: "once" });
    assert.equal(first.json.duplicate, false);
    const batch = await b.publishHttp([
      { topic: "dd", event: "e", data: 2, id: "b1" },
      { topic: "dd2", event: "e", data: 3, id: "b2" },
    ]);
    await b.kill();
    await b.restart();
    const again = await b.publishHttp({ topic: "dd", event: "e", data: 1, id: "once" });
    assert.deepEqual(again.json, { ok: true, offset: first.json.offset, duplicate: true });
    const s = await sc.connect(b.url);
    const both = await call(s, "publish", [
      { topic: "dd", event: "e", data: 2, id: "b1" },
      { topic: "dd2", event: "e", data: 3, id: "b2" },
      { topic: "dd", event: "e", data: 4, id: "fresh" },
    ]);
    assert.deepEqual(both.offsets.slice(0, 2), batch.json.offsets);
    assert.deepEqual(both.duplicates, [true, true, false]);
    assert.deepEqual((await b.allEvents("dd")).map((e) => e.id), ["once", "b1", "fresh"]);
    assert.deepEqual((await b.allEvents("dd2")).map((e) => e.id), ["b2"]);
  });
});
}
