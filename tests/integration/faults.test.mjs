// Storage fault injection (--debug-storage-faults, POST /v1/debug/storage-fault): while
// RocksDB writes fail, publishes are refused with storage_full / storage_unavailable
// (socket and HTTP 503), /healthz says 503, reads and connected subscribers keep
// working; after the fault is cleared publishing recovers within seconds and the data
// acknowledged before is intact, and nothing refused was stored.
import assert from "node:assert/strict";
import { describe } from "node:test";
import { brokerTest, call, duplicates, Recorder, sleep, waitFor } from "./lib/broker.mjs";

const TOML = `
[server]
ping_interval = "1s"
ping_timeout = "2s"
`;

for (const [fault, codes] of [
  ["no_space", ["storage_full", "storage_unavailable"]],
  ["io_error", ["storage_unavailable"]],
]) {
  describe(`storage fault ${fault}`, () => {
    brokerTest(`${fault}: publishes refused (${codes.join("/")}), /healthz 503, reads and subscribers survive; "none" recovers`, async (sc) => {
      const b = await sc.broker({ toml: TOML, faults: true });
      const sub = await sc.connect(b.url);
      const subId = sub.id;
      let subDisconnects = 0;
      sub.on("disconnect", () => subDisconnects++);
      const rec = new Recorder(sub);
      assert.equal((await call(sub, "subscribe", { topic: "f" })).ok, true);
      const p = await sc.connect(b.url);
      let pubDisconnects = 0;
      p.on("disconnect", () => pubDisconnects++);

      const before = [];
      for (let k = 0; k < 5; k++) {
        const r = await call(p, "publish", { topic: "f", event: "e", data: { k }, id: `ok-${k}` });
        assert.equal(r.ok, true);
        before.push({ id: `ok-${k}`, offset: r.offset });
      }
      await rec.count(5);
      assert.equal((await b.healthz()).status, 200);

      assert.deepEqual((await b.storageFault(fault)).json, { ok: true });
      const refused = [];
      for (let k = 0; k < 5; k++) {
        const id = `bad-${k}`;
        const r = await call(p, "publish", { topic: "f", event: "e", data: { k }, id }, 10000);
        assert.equal(r.ok, false, `publish during ${fault}: ${JSON.stringify(r)}`);
        assert.ok(codes.includes(r.error.code), `error code ${r.error.code}`);
        refused.push(id);
      }
      const batch = await call(p, "publish", [
        { topic: "f", event: "e", data: 1, id: "bad-batch-0" },
        { topic: "f", event: "e", data: 2, id: "bad-batch-1" },
      ]);
      assert.equal(batch.ok, false);
      assert.ok(codes.includes(batch.error.code));
      refused.push("bad-batch-0", "bad-batch-1");
      const h = await b.publishHttp({ topic: "f", event: "e", data: 0, id: "bad-http" });
      assert.equal(h.status, 503, h.text);
      assert.ok(codes.includes(h.json.error.code));
      refused.push("bad-http");

      const health = await b.healthz();
      assert.equal(health.status, 503, health.text);
      assert.equal(health.json.ok, false);
      assert.equal((await b.metrics()).ferry_storage_healthy, 0);

      // Reads still work; both clients are still connected, same session.
      const during = await b.allEvents("f");
      assert.deepEqual(during.map((e) => e.offset), before.map((x) => x.offset));
      await sleep(1500); // a ping round trip or two with the fault on
      assert.equal(sub.connected, true);
      assert.equal(sub.id, subId);
      assert.equal(subDisconnects, 0, "the subscriber stayed connected");
      assert.equal(pubDisconnects, 0, "the publisher stayed connected");

      // Clear the fault: within a few seconds publishes succeed again.
      assert.deepEqual((await b.storageFault("none")).json, { ok: true });
      const started = Date.now();
      let k = 0;
      const after = [];
      await waitFor(
        async () => {
          const id = `retry-${k++}`;
          const r = await call(p, "publish", { topic: "f", event: "e", data: { id }, id }, 5000);
          if (r.ok) {
            after.push({ id, offset: r.offset });
            return true;
          }
          assert.ok(codes.includes(r.error.code), JSON.stringify(r));
          refused.push(id);
          return false;
        },
        { timeout: 10000, interval: 100, what: "publishing to work again after the fault was cleared" },
      );
      const recoveredIn = Date.now() - started;
      for (let j = 0; j < 3; j++) {
        const r = await call(p, "publish", { topic: "f", event: "e", data: { j }, id: `after-${j}` });
        assert.equal(r.ok, true, JSON.stringify(r));
        after.push({ id: `after-${j}`, offset: r.offset });
      }
      console.error(`# ${fault}: publishing recovered ${recoveredIn} ms after the fault was cleared`);
      await waitFor(async () => (await b.healthz()).status === 200, { timeout: 5000, what: "/healthz 200" });

      // The log: the acked-before events intact, the new ones after them, nothing refused.
      const stored = await b.allEvents("f");
      assert.deepEqual(
        stored.map((e) => ({ id: e.id, offset: e.offset })),
        [...before, ...after],
        "acked data intact; refused publishes not stored",
      );
      assert.deepEqual(duplicates(stored.map((e) => e.id)), []);
      for (const id of refused) assert.ok(!stored.some((e) => e.id === id), `refused ${id} is not stored`);
      // The subscriber (still the same session) got the new events live.
      await rec.count(before.length + after.length);
      await sleep(200);
      assert.deepEqual(rec.offsets(), [...before, ...after].map((x) => x.offset));
      assert.equal(sub.id, subId);
      assert.equal(subDisconnects, 0);

      // The broker still shuts down cleanly.
      assert.deepEqual(await b.stop(), { code: 0, signal: null });
    });
  });
}

describe("storage fault and restart", () => {
  brokerTest("after a storage fault, a broker restart on the same data dir serves the acked data and accepts publishes", async (sc) => {
    const b = await sc.broker({ toml: TOML, faults: true });
    const p = await sc.connect(b.url);
    const before = [];
    for (let k = 0; k < 3; k++) {
      const r = await call(p, "publish", { topic: "f", event: "e", data: { k }, id: `ok-${k}` });
      assert.equal(r.ok, true);
      before.push(r.offset);
    }
    await b.storageFault("io_error");
    const bad = await call(p, "publish", { topic: "f", event: "e", data: 0, id: "bad" });
    assert.equal(bad.ok, false);
    await b.storageFault("none");
    const exit = await b.stop();
    assert.equal(exit.signal, null, "no crash on the way out");
    await b.restart();
    const p2 = await sc.connect(b.url);
    const r = await call(p2, "publish", { topic: "f", event: "e", data: 9, id: "after" });
    assert.equal(r.ok, true, JSON.stringify(r));
    const stored = await b.allEvents("f");
    assert.deepEqual(stored.map((e) => e.id), ["ok-0", "ok-1", "ok-2", "after"]);
    assert.deepEqual(stored.slice(0, 3).map((e) => e.offset), before);
    assert.equal((await b.healthz()).status, 200);
  });
});
