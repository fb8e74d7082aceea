// Connection-state recovery with the official client across broker restarts (SIGTERM
// and SIGKILL): the client reconnects with {pid, offset} by itself, socket.recovered is
// true, and it gets exactly the events it missed, in order, before "connect"; a session
// that has received nothing yet recovers too (the broker seeds its offset); a reconnect
// that races its own stale transport evicts it; SIGTERM drains (exit 0, sessions saved,
// stop line logged).
import assert from "node:assert/strict";
import { describe } from "node:test";
import { assertStrictlyIncreasing, brokerTest, call, connected, duplicates, nextEvent, Recorder, sleep, waitFor } from "./lib/broker.mjs";

const TOML = `
[server]
ping_interval = "1s"
ping_timeout = "1s"
`;

// Restarts `b` and points the sockets at it (normally the same port).
async function restart(b, sockets) {
  const { samePort } = await b.restart();
  if (!samePort) for (const s of sockets) s.io.uri = b.url;
}

async function publishMany(b, prefix, n, topic = "r") {
  const out = [];
  for (let k = 0; k < n; k++) {
    const r = await b.publishHttp({ topic, event: "e", data: { prefix, k }, id: `${prefix}-${k}` });
    assert.equal(r.status, 200, r.text);
    out.push({ id: `${prefix}-${k}`, offset: r.json.offset, data: { prefix, k } });
  }
  return out;
}

// Subscribed client: connect, subscribe "r", wait for the broker's $offset seed.
async function subscribedClient(sc, b) {
  const s = await sc.connect(b.url);
  const rec = new Recorder(s);
  const seeded = nextEvent(s, "$offset");
  const r = await call(s, "subscribe", { topic: "r" });
  assert.equal(r.ok, true, JSON.stringify(r));
  const [seed] = await seeded;
  assert.equal(seed, r.position, "$offset seeds the subscribe position");
  return { s, rec };
}

// Reconnects `s` (reconnection was turned off) and resolves once connected, with what
// the client saw: how many deliveries had been emitted when "connect" fired.
async function reconnect(s, rec) {
  let atConnect = -1;
  s.once("connect", () => {
    atConnect = rec.events.length;
  });
  s.io.reconnection(true);
  s.connect();
  await connected(s, 10000);
  return atConnect;
}

describe("recovery across broker restarts", () => {
  for (const signal of ["SIGTERM", "SIGKILL"]) {
    for (const when of ["connected at the restart", "offline before the restart"]) {
      brokerTest(`${signal}, client ${when}: recovered === true, same sid, exactly the missed events in order`, async (sc) => {
        const b = await sc.broker({ toml: TOML });
        const { s, rec } = await subscribedClient(sc, b);
        const sid = s.id;
        const live = await publishMany(b, "live", 3);
        await rec.count(3);

        s.io.reconnection(false); // the test decides when the client comes back
        const missed = [];
        const gone = nextEvent(s, "disconnect", 10000);
        if (when === "offline before the restart") {
          s.io.engine.close();
          await gone;
          missed.push(...(await publishMany(b, "before", 3)));
        }
        const exit = signal === "SIGTERM" ? await b.stop() : await b.kill();
        if (signal === "SIGTERM") assert.deepEqual(exit, { code: 0, signal: null }, "SIGTERM drains and exits 0");
        else assert.equal(exit.signal, "SIGKILL");
        const [reason] = await gone;
        if (when === "connected at the restart") assert.notEqual(reason, "io server disconnect", "the client may reconnect");
        await restart(b, [s]);
        missed.push(...(await publishMany(b, "after", 4)));

        const atConnect = await reconnect(s, rec);
        assert.equal(s.recovered, true, "socket.recovered");
        assert.equal(s.id, sid, "same sid");
        assert.equal(atConnect, live.length + missed.length, "the missed events were delivered before the CONNECT ack");
        const got = rec.events.slice(live.length);
        assert.deepEqual(
          got.map((e) => ({ id: e.meta.id, offset: e.offset, data: e.data })),
          missed,
          "exactly the missed events, in order",
        );
        // live delivery continues on the recovered session
        const more = await publishMany(b, "more", 2);
        await rec.count(live.length + missed.length + more.length);
        await sleep(200);
        const all = rec.offsets();
        assert.equal(all.length, live.length + missed.length + more.length, "no duplicates");
        assertStrictlyIncreasing(assert, all);
        assert.deepEqual(duplicates(rec.ids()), []);
        assert.deepEqual(all, [...live, ...missed, ...more].map((x) => x.offset));
      });
    }
  }

  brokerTest("a session that has received nothing yet recovers (transport dropped before any event)", async (sc) => {
    const b = await sc.broker({ toml: TOML });
    const { s, rec } = await subscribedClient(sc, b);
    const sid = s.id;
    s.io.reconnection(false);
    const gone = nextEvent(s, "disconnect");
    s.io.engine.close();
    await gone;
    const missed = await publishMany(b, "m", 2);
    const atConnect = await reconnect(s, rec);
    assert.equal(s.recovered, true, "socket.recovered although nothing had been delivered");
    assert.equal(s.id, sid);
    assert.equal(atConnect, 2);
    assert.deepEqual(rec.events.map((e) => e.offset), missed.map((x) => x.offset));
    await sleep(200);
    assert.equal(rec.events.length, 2);
  });

  brokerTest("a reconnect that arrives before the old transport timed out evicts the stale socket and recovers (socket.io#4880)", async (sc) => {
    const b = await sc.broker({ toml: TOML });
    const { s: old, rec: oldRec } = await subscribedClient(sc, b);
    const sid = old.id;
    await publishMany(b, "seen", 2);
    await oldRec.count(2);
    old.io.reconnection(false);
    // What a client whose network silently died would send: its pid and last offset.
    const pid = old._pid;
    const offset = old._lastOffset;
    assert.ok(pid && offset, "the client holds a pid and an offset");
    const missed = await publishMany(b, "missed", 2);
    await oldRec.count(4); // the old socket is still live on the broker
    const evicted = nextEvent(old, "disconnect");

    const fresh = sc.client(b.url, { auth: { pid, offset }, reconnection: false });
    const rec = new Recorder(fresh);
    let atConnect = -1;
    fresh.once("connect", () => {
      atConnect = rec.events.length;
    });
    await connected(fresh);
    assert.equal(fresh.id, sid, "the same session (sid) continues on the new connection");
    assert.equal(atConnect, 2, "the missed events arrive before the CONNECT ack");
    assert.deepEqual(rec.events.map((e) => e.offset), missed.map((x) => x.offset));
    await evicted; // the stale socket was closed by the broker, not left to time out
    assert.equal(old.connected, false);

    const after = await publishMany(b, "after", 1);
    await rec.count(3);
    assert.equal(rec.events[2].offset, after[0].offset);
    await sleep(200);
    assert.equal(oldRec.events.length, 4, "nothing reaches the evicted socket");
  });

  brokerTest("a session that has received nothing yet recovers across a broker crash (SIGKILL)", async (sc) => {
    const b = await sc.broker({ toml: TOML });
    const { s, rec } = await subscribedClient(sc, b);
    const sid = s.id;
    s.io.reconnection(false);
    const gone = nextEvent(s, "disconnect");
    await b.kill();
    await gone;
    await restart(b, [s]);
    const missed = await publishMany(b, "m", 3);
    const atConnect = await reconnect(s, rec);
    assert.equal(s.recovered, true);
    assert.equal(s.id, sid);
    assert.equal(atConnect, 3);
    assert.deepEqual(rec.events.map((e) => e.offset), missed.map((x) => x.offset));
  });

  brokerTest("SIGTERM drain: exit 0, sessions saved, stop line logged; the client reconnects by itself and recovers", async (sc) => {
    const b = await sc.broker({ toml: TOML });
    const { s, rec } = await subscribedClient(sc, b);
    const sid = s.id;
    const before = await publishMany(b, "before", 2);
    await rec.count(2);
    const connects = [];
    s.on("connect", () => connects.push({ recovered: s.recovered, id: s.id }));
    const gone = nextEvent(s, "disconnect", 10000);

    const exit = await b.stop();
    assert.deepEqual(exit, { code: 0, signal: null });
    const log = b.logText;
    assert.match(log, /received SIGTERM: draining/);
    assert.match(log, /saved [1-9]\d* sessions for recovery; log flush: ok/);
    assert.match(log, /ferry-broker \S+ stopped \(final flush: ok\)/);
    const [reason] = await gone;
    assert.ok(["transport close", "transport error", "ping timeout"].includes(reason), `disconnect reason ${reason}`);
    assert.equal(s.active, true, "the official client keeps reconnecting");

    await restart(b, [s]);
    await waitFor(() => connects.length > 0, { timeout: 10000, what: "the automatic reconnect" });
    assert.deepEqual(connects, [{ recovered: true, id: sid }]);
    const after = await publishMany(b, "after", 3);
    await rec.count(5);
    await sleep(200);
    assert.deepEqual(rec.offsets(), [...before, ...after].map((x) => x.offset));
    // the broker's /healthz is fine after the restart
    assert.equal((await b.healthz()).status, 200);
  });
});
