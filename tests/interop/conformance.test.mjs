// Wire conformance of sio-echo (Ferry's handler API in the test-suite configuration):
// our own tests for every behaviour the official Engine.IO v4 and Socket.IO v5 test
// suites check, plus byte-exact checks of what the Node reference server (socket.io
// 4.8.4 / engine.io 6.6.12) was captured sending (error bodies, CORS, content types, ...).
//
// Tests marked `todo` assert the reference server's documented behaviour where Ferry
// currently differs; they run and are reported, but do not fail the suite. Where Ferry
// differs on purpose (DESIGN.md section 5), the test asserts Ferry's behaviour and says
// what the reference does.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import { checkNodeModules, sleep, startServer } from "./lib/harness.mjs";
import { packets, Polling, RS, sioConnect, WsPeer } from "./lib/wire.mjs";

checkNodeModules();

const PING_INTERVAL = 300;
const PING_TIMEOUT = 200;
const MAX_PAYLOAD = 1000000;
const CONNECT_TIMEOUT = 1000;

const ERR = {
  transportUnknown: '{"code":0,"message":"Transport unknown"}',
  sidUnknown: '{"code":1,"message":"Session ID unknown"}',
  badHandshakeMethod: '{"code":2,"message":"Bad handshake method"}',
  badRequest: '{"code":3,"message":"Bad request"}',
  unsupportedProtocol: '{"code":5,"message":"Unsupported protocol version"}',
};

let server;
let eio; // raw Engine.IO echo endpoint
let sio; // Socket.IO endpoint
const peers = new Set();

async function ws(path, query = "EIO=4&transport=websocket", opts = {}) {
  const p = await WsPeer.connect(`${server.wsUrl}${path}?${query}`, opts);
  peers.add(p);
  return p;
}

async function connectSio(opts) {
  const p = await sioConnect(server.wsUrl, opts);
  peers.add(p);
  return p;
}

// Opens a polling session and a probe WebSocket and completes the probe exchange up to
// (not including) the "5" upgrade packet.
async function startUpgrade(path = "/engine.io/") {
  const poll = path === "/engine.io/" ? eio : sio;
  const { sid } = await poll.handshake();
  const probe = await ws(path, `EIO=4&transport=websocket&sid=${sid}`);
  await probe.opened;
  probe.send("2probe");
  assert.equal(await probe.nextText(), "3probe");
  return { sid, probe, poll };
}

before(async () => {
  server = await startServer("SIO_ECHO");
  eio = new Polling(server.url, "/engine.io/");
  sio = new Polling(server.url, "/socket.io/");
});

after(async () => {
  for (const p of peers) p.terminate();
  if (!server) return;
  const result = await server.stop();
  assert.equal(result.diedEarly, false, `sio-echo died during the tests: ${server.stderr()}`);
  assert.equal(result.crashed, false, `sio-echo did not exit cleanly on SIGTERM: ${JSON.stringify(result)}`);
});

// ---------------------------------------------------------------------------------
describe("Engine.IO handshake", () => {
  for (const path of ["/engine.io/", "/socket.io/"]) {
    describe(`at ${path}`, () => {
      it("a polling handshake answers 200 with the open packet, keys in the reference order", async () => {
        const poll = new Polling(server.url, path);
        const raw = await poll.request(poll.url());
        assert.equal(raw.status, 200);
        assert.match(raw.body, /^0\{/);
        const open = JSON.parse(raw.body.slice(1));
        assert.deepEqual(Object.keys(open), ["sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"]);
        assert.equal(typeof open.sid, "string");
        assert.deepEqual(open.upgrades, ["websocket"]);
        assert.equal(open.pingInterval, PING_INTERVAL);
        assert.equal(open.pingTimeout, PING_TIMEOUT);
        assert.equal(open.maxPayload, MAX_PAYLOAD);
        // compact JSON, exactly as the reference encodes it
        assert.equal(
          raw.body,
          `0{"sid":"${open.sid}","upgrades":["websocket"],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}`,
        );
        assert.equal(raw.headers.get("content-type"), "text/plain; charset=UTF-8");
      });

      it("session ids are 20 URL-safe base64 characters, like the reference's base64id, and unique", async () => {
        const poll = new Polling(server.url, path);
        const sids = new Set();
        for (let i = 0; i < 20; i++) sids.add((await poll.handshake()).sid);
        assert.equal(sids.size, 20);
        for (const sid of sids) assert.match(sid, /^[A-Za-z0-9_-]{20}$/);
      });

      it("a WebSocket handshake sends the open packet first, with no upgrades", async () => {
        const p = await ws(path);
        const data = await p.nextText();
        assert.match(data, /^0\{/);
        const open = JSON.parse(data.slice(1));
        assert.deepEqual(Object.keys(open), ["sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"]);
        assert.deepEqual(open.upgrades, []);
        assert.equal(open.pingInterval, PING_INTERVAL);
        assert.equal(open.pingTimeout, PING_TIMEOUT);
        assert.equal(open.maxPayload, MAX_PAYLOAD);
        p.close();
      });
    });
  }
});

// ---------------------------------------------------------------------------------
describe("Engine.IO request validation (exact reference error bodies)", () => {
  const cases = [
    ["a missing EIO", "transport=polling", ERR.unsupportedProtocol],
    ["EIO=abc", "EIO=abc&transport=polling", ERR.unsupportedProtocol],
    ["EIO=3", "EIO=3&transport=polling", ERR.unsupportedProtocol],
    ["EIO=5", "EIO=5&transport=polling", ERR.unsupportedProtocol],
    ["a missing transport", "EIO=4", ERR.transportUnknown],
    ["transport=abc", "EIO=4&transport=abc", ERR.transportUnknown],
    ["transport=webtransport", "EIO=4&transport=webtransport", ERR.transportUnknown],
    ["an unknown sid", "EIO=4&transport=polling&sid=nope", ERR.sidUnknown],
  ];
  for (const [what, query, body] of cases) {
    it(`GET with ${what} is 400 ${body}`, async () => {
      for (const path of ["/engine.io/", "/socket.io/"]) {
        const r = await eio.request(`${server.url}${path}?${query}`);
        assert.equal(r.status, 400, path);
        assert.equal(r.body, body, path);
        assert.equal(r.headers.get("content-type"), "application/json", path);
      }
    });
  }

  it("POST and PUT without a sid are 400 Bad handshake method", async () => {
    for (const method of ["POST", "PUT"]) {
      const r = await sio.request(sio.url(), { method, body: "40" });
      assert.equal(r.status, 400, method);
      assert.equal(r.body, ERR.badHandshakeMethod, method);
    }
  });

  it("POST with an unknown sid is 400 Session ID unknown", async () => {
    const r = await sio.post("doesnotexist", "4hello");
    assert.equal(r.status, 400);
    assert.equal(r.body, ERR.sidUnknown);
  });

  it("transport=websocket as a plain GET is 400 Bad request", async () => {
    const r = await sio.request(sio.url("EIO=4&transport=websocket"));
    assert.equal(r.status, 400);
    assert.equal(r.body, ERR.badRequest);
  });

  it("the transport is validated before EIO", async () => {
    const r = await sio.request(sio.url("transport=abc"));
    assert.equal(r.status, 400);
    assert.equal(r.body, ERR.transportUnknown);
  });

  it("the handshake method is validated before EIO", async () => {
    const r = await sio.request(sio.url("transport=polling"), { method: "POST", body: "" });
    assert.equal(r.status, 400);
    assert.equal(r.body, ERR.badHandshakeMethod);
  });

  for (const [what, query] of [
    ["a missing EIO", "transport=websocket"],
    ["EIO=abc", "EIO=abc&transport=websocket"],
    ["a missing transport", "EIO=4"],
    ["transport=abc", "EIO=4&transport=abc"],
    ["an unknown sid", "EIO=4&transport=websocket&sid=nope"],
  ]) {
    // The reference completes the upgrade for a bad EIO and then writes a raw HTTP 400 on
    // the upgraded socket (captured: 101, then a raw HTTP 400); Ferry refuses the upgrade with HTTP 400. Either
    // way the client never gets a session.
    it(`a WebSocket with ${what} never gets a session`, async () => {
      for (const path of ["/engine.io/", "/socket.io/"]) {
        const p = await ws(path, query);
        const info = await p.waitClose(3000);
        assert.equal(p.queue.length, 0, `no packet may arrive (${path}): ${JSON.stringify(p.queue)}`);
        if (info.code === "http") assert.equal(p.rejected.status, 400, path);
      }
    });
  }
});

// ---------------------------------------------------------------------------------
describe("Engine.IO messages over HTTP long-polling", () => {
  it("a payload with one text packet is acknowledged with ok and echoed", async () => {
    const { sid } = await eio.handshake();
    const post = await eio.post(sid, "4hello");
    assert.equal(post.status, 200);
    assert.equal(post.body, "ok");
    assert.equal(post.headers.get("content-type"), "text/html");
    const poll = await eio.poll(sid);
    assert.equal(poll.status, 200);
    assert.equal(poll.body, "4hello");
    assert.equal(poll.headers.get("content-type"), "text/plain; charset=UTF-8");
  });

  it("a payload with several text packets is echoed as one payload in order", async () => {
    const { sid } = await eio.handshake();
    assert.equal((await eio.post(sid, `4test1${RS}4test2${RS}4test3`)).body, "ok");
    assert.equal((await eio.poll(sid)).body, `4test1${RS}4test2${RS}4test3`);
  });

  it("a payload mixing text and base64 binary packets is echoed byte for byte", async () => {
    const { sid } = await eio.handshake();
    assert.equal((await eio.post(sid, `4hello${RS}bAQIDBA==`)).body, "ok");
    assert.equal((await eio.poll(sid)).body, `4hello${RS}bAQIDBA==`);
  });

  it("multi-byte UTF-8 text survives, and Content-Length counts bytes", async () => {
    const { sid } = await eio.handshake();
    await eio.post(sid, "4héllo 😀");
    const res = await fetch(eio.sidUrl(sid));
    assert.equal(res.headers.get("content-length"), String(Buffer.byteLength("4héllo 😀")));
    assert.equal(await res.text(), "4héllo 😀");
  });

  it("packets queued while no GET is pending leave together in the next response", async () => {
    const { sid } = await eio.handshake();
    await eio.post(sid, `4a${RS}4b`);
    await eio.post(sid, "4c");
    assert.deepEqual(packets((await eio.poll(sid)).body), ["4a", "4b", "4c"]);
  });

  it("an invalid packet closes the session", async () => {
    // The reference answers 200 "ok" and then closes; Ferry answers 400. The official
    // suite accepts both: what matters is the session is gone.
    const { sid } = await eio.handshake();
    const post = await eio.post(sid, "abc");
    assert.ok([200, 400].includes(post.status), `POST status ${post.status}`);
    const poll = await eio.poll(sid);
    assert.equal(poll.status, 400);
    assert.equal(poll.body, ERR.sidUnknown);
  });

  it("a duplicate GET closes the session: the first gets the close packet, the second an error", async () => {
    const { sid } = await eio.handshake();
    const first = eio.poll(sid);
    await sleep(20);
    const second = await eio.poll(sid, {}, "&t=burst");
    assert.ok([400, 500].includes(second.status), `second GET status ${second.status}`);
    const firstRes = await first;
    assert.equal(firstRes.status, 200);
    assert.equal(firstRes.body, "1");
    assert.equal((await eio.poll(sid)).status, 400);
  });

  it("a GET cancelled by the client closes the session", async () => {
    const { sid } = await eio.handshake();
    const controller = new AbortController();
    const pending = fetch(eio.sidUrl(sid), { signal: controller.signal }).catch(() => "aborted");
    await sleep(20);
    controller.abort();
    assert.equal(await pending, "aborted");
    const poll = await eio.poll(sid);
    assert.equal(poll.status, 400);
    assert.equal(poll.body, ERR.sidUnknown);
  });

  it("a server-side close with no GET pending reaches the next GET as noop + close (6\\x1e1)", {
  }, async () => {
    const { sid } = await sio.handshake();
    assert.equal((await sio.post(sid, "4abc")).status, 200); // an invalid Socket.IO packet
    const poll = await sio.poll(sid);
    assert.equal(poll.status, 200);
    assert.equal(poll.body, `6${RS}1`);
  });
});

// ---------------------------------------------------------------------------------
describe("Engine.IO messages over WebSocket", () => {
  it("a text packet is echoed as a text frame", async () => {
    const p = await ws("/engine.io/");
    await p.nextText(); // open
    p.send("4hello");
    assert.equal(await p.nextText(), "4hello");
    p.close();
  });

  it("a binary frame is echoed as a binary frame without type prefix", async () => {
    const p = await ws("/engine.io/");
    await p.nextText();
    p.send(Uint8Array.from([1, 2, 3, 4]));
    assert.deepEqual([...(await p.nextBinary())], [1, 2, 3, 4]);
    p.close();
  });

  it("an invalid packet closes the connection", async () => {
    const p = await ws("/engine.io/");
    await p.nextText();
    p.send("abc");
    await p.waitClose(2000);
  });

  it("a text frame b<base64> is taken as a binary message", {
  }, async () => {
    const p = await ws("/engine.io/");
    await p.nextText();
    p.send("bAQIDBA==");
    assert.deepEqual([...(await p.nextBinary())], [1, 2, 3, 4]);
    p.close();
  });
});

// ---------------------------------------------------------------------------------
describe("heartbeat", () => {
  it("polling: the server pings every pingInterval and a pong keeps the session", async () => {
    const { sid } = await eio.handshake();
    for (let i = 0; i < 3; i++) {
      const poll = await eio.poll(sid);
      assert.equal(poll.status, 200);
      assert.equal(poll.body, "2");
      assert.ok(poll.elapsed >= PING_INTERVAL - 60, `ping came after ${poll.elapsed} ms`);
      assert.ok(poll.elapsed < PING_INTERVAL + 500, `ping came after ${poll.elapsed} ms`);
      const pong = await eio.post(sid, "3");
      assert.equal(pong.status, 200);
      assert.equal(pong.body, "ok");
    }
  });

  it("polling: no pong within pingTimeout closes the session", async () => {
    const { sid } = await eio.handshake();
    await sleep(PING_INTERVAL + PING_TIMEOUT + 100);
    const poll = await eio.poll(sid);
    assert.equal(poll.status, 400);
    assert.equal(poll.body, ERR.sidUnknown);
  });

  it("WebSocket: the server pings every pingInterval and a pong keeps the session", async () => {
    const p = await ws("/engine.io/");
    await p.nextText();
    let last = p.openedAt;
    for (let i = 0; i < 3; i++) {
      assert.equal(await p.nextText(1000), "2");
      const gap = Date.now() - last;
      assert.ok(gap >= PING_INTERVAL - 60 && gap < PING_INTERVAL + 500, `ping gap ${gap} ms`);
      last = Date.now();
      p.send("3");
    }
    assert.equal(p.isOpen(), true);
    p.close();
  });

  it("WebSocket: no pong within pingTimeout closes the connection after about 500 ms", async () => {
    const p = await ws("/engine.io/");
    await p.opened;
    const info = await p.waitClose(3000);
    const lived = info.at - p.openedAt;
    assert.ok(lived >= PING_INTERVAL + PING_TIMEOUT - 80, `closed after ${lived} ms`);
    assert.ok(lived < PING_INTERVAL + PING_TIMEOUT + 1000, `closed after ${lived} ms`);
    assert.equal(p.queue.length, 2, "only the open packet and one ping arrive");
    assert.match(p.queue[0].data, /^0\{/);
    assert.equal(p.queue[1].data, "2");
  });

  it("a ping from the client closes the session (v4: invalid heartbeat direction)", {
  }, async () => {
    const p = await ws("/engine.io/");
    await p.nextText();
    p.send("2");
    await p.waitClose(PING_INTERVAL + PING_TIMEOUT - 100); // must be the ping, not the timeout
  });
});

// ---------------------------------------------------------------------------------
describe("close", () => {
  it("polling: a close packet ends the session and the pending GET gets a noop", async () => {
    const { sid } = await eio.handshake();
    const pending = eio.poll(sid);
    await sleep(20);
    const post = await eio.post(sid, "1");
    assert.equal(post.status, 200);
    const poll = await pending;
    assert.equal(poll.status, 200);
    assert.equal(poll.body, "6");
    assert.equal((await eio.poll(sid)).body, ERR.sidUnknown);
  });

  it("polling: a close packet with no GET pending ends the session", async () => {
    const { sid } = await eio.handshake();
    assert.equal((await eio.post(sid, "1")).status, 200);
    const poll = await eio.poll(sid);
    assert.equal(poll.status, 400);
    assert.equal(poll.body, ERR.sidUnknown);
  });

  it("WebSocket: a close packet closes the connection", async () => {
    // The reference ignores "1" over WebSocket (captured) and the official test only
    // passes there through the ping timeout. Ferry closes at once; asserted so that the
    // close comes well before the 500 ms ping timeout.
    const p = await ws("/engine.io/", undefined, { autoPong: true });
    await p.nextText();
    p.send("1");
    const info = await p.waitClose(3000);
    assert.ok(info.at - p.openedAt < PING_INTERVAL + PING_TIMEOUT, `closed after ${info.at - p.openedAt} ms`);
  });
});

// ---------------------------------------------------------------------------------
describe("upgrade from polling to WebSocket", () => {
  it("probe, noop to the pending GET, upgrade, then messages flow over the WebSocket", async () => {
    const { sid } = await eio.handshake();
    const probe = await ws("/engine.io/", `EIO=4&transport=websocket&sid=${sid}`);
    await probe.opened;
    assert.equal(await probe.quietFor(50), true, "nothing (no open packet) is sent on the probe before 2probe");
    probe.send("2probe");
    assert.equal(await probe.nextText(), "3probe");
    const poll = await eio.poll(sid);
    assert.equal(poll.status, 200);
    assert.equal(poll.body, "6");
    probe.send("5");
    probe.send("4hello");
    assert.equal(await probe.nextText(), "4hello");
    probe.close();
  });

  it("packets queued for polling during the upgrade go out over the WebSocket after 5", async () => {
    const { sid, probe } = await startUpgrade();
    assert.equal((await eio.poll(sid)).body, "6");
    assert.equal((await eio.post(sid, "4queued")).body, "ok"); // echo queued for polling
    probe.send("5");
    assert.equal(await probe.nextText(), "4queued");
    probe.close();
  });

  it("a GET pending when the upgrade completes gets the close packet", {
  }, async () => {
    const { sid, probe } = await startUpgrade();
    assert.equal((await eio.poll(sid)).body, "6");
    const pending = eio.poll(sid);
    await sleep(30);
    probe.send("5");
    const r = await pending;
    probe.close();
    assert.equal(r.status, 200);
    assert.equal(r.body, "1");
  });

  it("polling requests with the sid after the upgrade are 400 Bad request", async () => {
    const { sid, probe } = await startUpgrade();
    probe.send("5");
    await sleep(30);
    const get = await eio.poll(sid);
    assert.equal(get.status, 400);
    assert.equal(get.body, ERR.badRequest);
    const post = await eio.post(sid, "4x");
    assert.equal(post.status, 400);
    assert.equal(post.body, ERR.badRequest);
    probe.send("4hello");
    assert.equal(await probe.nextText(), "4hello");
    probe.close();
  });

  it("a second WebSocket with the sid after the upgrade is closed without a packet", async () => {
    const { sid, probe } = await startUpgrade();
    probe.send("5");
    await sleep(30);
    const second = await ws("/engine.io/", `EIO=4&transport=websocket&sid=${sid}`);
    await second.waitClose(3000);
    assert.equal(second.queue.length, 0);
    probe.send("4hello");
    assert.equal(await probe.nextText(), "4hello");
    probe.close();
  });

  it("a probe that sends anything but 2probe is closed and polling continues", async () => {
    const { sid } = await eio.handshake();
    const probe = await ws("/engine.io/", `EIO=4&transport=websocket&sid=${sid}`);
    await probe.opened;
    probe.send("4notprobe");
    await probe.waitClose(2000);
    assert.equal((await eio.post(sid, "4still-polling")).body, "ok");
    assert.equal((await eio.poll(sid)).body, "4still-polling");
  });

  it("the heartbeat continues over the WebSocket after the upgrade", async () => {
    const { probe } = await startUpgrade();
    probe.send("5");
    assert.equal(await probe.nextText(PING_INTERVAL + 500), "2");
    probe.send("3");
    assert.equal(await probe.nextText(PING_INTERVAL + 500), "2");
    probe.close();
  });

  it("a Socket.IO connection made over polling keeps working over the WebSocket", async () => {
    const { sid, probe } = await startUpgrade("/socket.io/");
    assert.equal((await sio.poll(sid)).body, "6");
    await sio.post(sid, "40");
    probe.send("5");
    const ack = await probe.nextText();
    assert.match(ack, /^40\{"sid":"[A-Za-z0-9_-]+"\}$/);
    assert.equal(await probe.nextText(), '42["auth",{}]');
    probe.send('42["message","over ws"]');
    let m = await probe.nextText();
    if (m === "2") {
      probe.send("3");
      m = await probe.nextText();
    }
    assert.equal(m, '42["message-back","over ws"]');
    probe.close();
  });
});

// ---------------------------------------------------------------------------------
describe("CORS and response headers (reference: cors origin '*')", () => {
  const origin = { Origin: "http://example.com" };

  it("every polling response carries Access-Control-Allow-Origin: * and no Vary", async () => {
    const hs = await sio.handshake({ headers: origin });
    const responses = [
      hs.raw,
      await sio.post(hs.sid, "3", { headers: origin }),
      await sio.poll(hs.sid, { headers: origin }),
      await sio.request(sio.url("EIO=9&transport=polling"), { headers: origin }),
      await sio.request(sio.url(), {}), // no Origin: still "*"
    ];
    for (const r of responses) {
      assert.equal(r.headers.get("access-control-allow-origin"), "*");
      assert.equal(r.headers.get("vary"), null);
    }
  });

  it("an OPTIONS preflight is 204 with the allowed methods and the requested headers echoed", async () => {
    const r = await sio.request(sio.url(), {
      method: "OPTIONS",
      headers: { ...origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type" },
    });
    assert.equal(r.status, 204);
    assert.equal(r.body, "");
    assert.equal(r.headers.get("access-control-allow-origin"), "*");
    assert.equal(r.headers.get("access-control-allow-methods"), "GET,HEAD,PUT,PATCH,POST,DELETE");
    assert.equal(r.headers.get("access-control-allow-headers"), "content-type");
    assert.equal(r.headers.get("vary"), "Access-Control-Request-Headers");
  });

  it("an OPTIONS request without preflight headers is 204 without Allow-Headers, with Vary", {
  }, async () => {
    const r = await sio.request(sio.url(), { method: "OPTIONS" });
    assert.equal(r.status, 204);
    assert.equal(r.headers.get("access-control-allow-origin"), "*");
    assert.equal(r.headers.get("access-control-allow-headers"), null);
    assert.equal(r.headers.get("vary"), "Access-Control-Request-Headers");
  });

  it("handshake, poll and POST responses carry cache-control: no-store", {
  }, async () => {
    const hs = await sio.handshake();
    const post = await sio.post(hs.sid, "3");
    const poll = await sio.poll(hs.sid);
    for (const r of [hs.raw, post, poll]) assert.equal(r.headers.get("cache-control"), "no-store");
  });
});

// ---------------------------------------------------------------------------------
describe("Socket.IO connect", () => {
  it("CONNECT to the main namespace is answered with {sid} only, then the auth event", async () => {
    const p = await ws("/socket.io/", undefined, { autoPong: true });
    await p.nextText();
    p.send("40");
    const data = await p.nextText();
    assert.match(data, /^40\{/);
    const hs = JSON.parse(data.slice(2));
    assert.deepEqual(Object.keys(hs), ["sid"]);
    assert.match(hs.sid, /^[A-Za-z0-9_-]{20}$/);
    assert.equal(data, `40{"sid":"${hs.sid}"}`);
    assert.equal(await p.nextText(), '42["auth",{}]');
    p.close();
  });

  it("CONNECT with an auth payload passes it to the handshake", async () => {
    const p = await connectSio({ auth: { token: "123" } });
    assert.equal(p.authPacket, '42["auth",{"token":"123"}]');
    p.close();
  });

  it("CONNECT to a custom namespace (with or without the trailing comma)", async () => {
    for (const packet of ["40/custom,", "40/custom"]) {
      const p = await ws("/socket.io/", undefined, { autoPong: true });
      await p.nextText();
      p.send(packet);
      const data = await p.nextText();
      assert.match(data, /^40\/custom,\{"sid":"[A-Za-z0-9_-]{20}"\}$/, packet);
      assert.deepEqual(Object.keys(JSON.parse(data.slice(10))), ["sid"]);
      assert.equal(await p.nextText(), '42/custom,["auth",{}]');
      p.close();
    }
  });

  it("CONNECT to a custom namespace with an auth payload", async () => {
    const p = await connectSio({ nsp: "/custom", auth: { token: "abc" } });
    assert.equal(p.authPacket, '42/custom,["auth",{"token":"abc"}]');
    p.close();
  });

  it("the Socket.IO socket id is not the Engine.IO session id", async () => {
    const p = await ws("/socket.io/", undefined, { autoPong: true });
    const eioSid = JSON.parse((await p.nextText()).slice(1)).sid;
    p.send("40");
    const sid = JSON.parse((await p.nextText()).slice(2)).sid;
    assert.notEqual(sid, eioSid);
    p.close();
  });

  it("an unknown namespace gets the exact CONNECT_ERROR and the connection stays usable", async () => {
    const p = await ws("/socket.io/", undefined, { autoPong: true });
    await p.nextText();
    p.send("40/random");
    assert.equal(await p.nextText(), '44/random,{"message":"Invalid namespace"}');
    p.send("40/random,");
    assert.equal(await p.nextText(), '44/random,{"message":"Invalid namespace"}');
    p.send("40");
    assert.match(await p.nextText(), /^40\{"sid":/);
    assert.equal(await p.nextText(), '42["auth",{}]');
    p.close();
  });

  it("CONNECT over polling: ack and auth event arrive in one poll response", async () => {
    const { sid } = await sio.handshake();
    assert.equal((await sio.post(sid, '40{"token":"p"}')).body, "ok");
    const body = (await sio.poll(sid)).body;
    const [ack, auth, ...rest] = packets(body);
    assert.match(ack, /^40\{"sid":"[A-Za-z0-9_-]{20}"\}$/);
    assert.equal(auth, '42["auth",{"token":"p"}]');
    assert.deepEqual(rest, []);
  });

  it("an invalid handshake packet closes the connection", async () => {
    const p = await ws("/socket.io/", undefined, { autoPong: true });
    await p.nextText();
    p.send("4abc");
    await p.waitClose(2000);
  });

  // ("401" is not in this list: "1" parses as an ack id, and the CONNECT is valid.)
  for (const auth of ['"str"', "[]", "null"]) {
    it(`a CONNECT whose payload is not an object (${auth}) closes the connection`, async () => {
      const p = await ws("/socket.io/", undefined, { autoPong: true });
      await p.nextText();
      p.send(`40${auth}`);
      await p.waitClose(2000);
      assert.equal(p.queue.length, 0, "no CONNECT ack or error arrives");
    });
  }

  it("a connection that never sends CONNECT is closed after connectTimeout (WebSocket)", async () => {
    const p = await ws("/socket.io/", undefined, { autoPong: true });
    await p.nextText();
    const info = await p.waitClose(CONNECT_TIMEOUT + 2000);
    const lived = info.at - p.openedAt;
    assert.ok(lived >= CONNECT_TIMEOUT - 100 && lived < CONNECT_TIMEOUT + 1000, `closed after ${lived} ms`);
    assert.ok(p.pings >= 2, "pings were answered, so this is the connect timeout");
  });

  it("a connection that never sends CONNECT is closed after connectTimeout (polling: pending GET gets 1)", async () => {
    const { sid } = await sio.handshake();
    const started = Date.now();
    for (;;) {
      const poll = await sio.poll(sid);
      assert.equal(poll.status, 200, `poll failed after ${Date.now() - started} ms: ${poll.body}`);
      const pk = packets(poll.body);
      if (pk.includes("1")) break;
      assert.deepEqual(pk, ["2"]);
      await sio.post(sid, "3");
    }
    const lived = Date.now() - started;
    assert.ok(lived >= CONNECT_TIMEOUT - 100 && lived < CONNECT_TIMEOUT + 1000, `closed after ${lived} ms`);
    assert.equal((await sio.poll(sid)).status, 400);
  });

  it("a second CONNECT to an already connected namespace closes the connection", {
  }, async () => {
    const p = await connectSio();
    p.send("40");
    await p.waitClose(2000);
  });
});

// ---------------------------------------------------------------------------------
describe("Socket.IO disconnect", () => {
  it("DISCONNECT from the main namespace is not answered and the connection stays open", async () => {
    const p = await connectSio({ autoPong: false });
    p.send("41");
    assert.equal(await p.nextText(PING_INTERVAL + 500), "2", "the next packet is the server's ping");
    p.send("3");
    // events for the namespace left are now a protocol error; a new CONNECT works
    p.send("40");
    assert.match(await p.nextText(), /^40\{"sid":/);
    assert.equal(await p.nextText(), '42["auth",{}]');
    p.close();
  });

  it("connect to a custom namespace, disconnect from it, the main namespace still works", async () => {
    const p = await connectSio();
    p.send("40/custom");
    assert.match(await p.nextText(), /^40\/custom,\{"sid":/);
    assert.equal(await p.nextText(), '42/custom,["auth",{}]');
    p.send("41/custom");
    p.send('42["message","message to main namespace"]');
    assert.equal(await p.nextText(), '42["message-back","message to main namespace"]');
    p.close();
  });

  it("a packet for a namespace the client is not connected to closes the connection", async () => {
    for (const packet of ["41/custom,", '42/custom,["message","x"]', "43/custom,1[]"]) {
      const p = await connectSio();
      p.send(packet);
      await p.waitClose(2000);
    }
  });

  it("an event before any CONNECT closes the connection", async () => {
    const p = await ws("/socket.io/", undefined, { autoPong: true });
    await p.nextText();
    p.send('42["message","x"]');
    await p.waitClose(2000);
  });
});

// ---------------------------------------------------------------------------------
describe("Socket.IO messages", () => {
  it("a plain-text event is echoed exactly", async () => {
    const p = await connectSio();
    p.send('42["message",1,"2",{"3":[true]}]');
    assert.equal(await p.nextText(), '42["message-back",1,"2",{"3":[true]}]');
    p.close();
  });

  it("an event with two binary attachments is echoed with the same header and frames", async () => {
    const p = await connectSio();
    p.send('452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
    p.send(Uint8Array.from([1, 2, 3]));
    p.send(Uint8Array.from([4, 5, 6]));
    assert.equal(await p.nextText(), '452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
    assert.deepEqual([...(await p.nextBinary())], [1, 2, 3]);
    assert.deepEqual([...(await p.nextBinary())], [4, 5, 6]);
    p.close();
  });

  it("an event with an ack id is acked exactly", async () => {
    const p = await connectSio();
    p.send('42456["message-with-ack",1,"2",{"3":[false]}]');
    assert.equal(await p.nextText(), '43456[1,"2",{"3":[false]}]');
    p.send('420["message-with-ack","zero"]');
    assert.equal(await p.nextText(), '430["zero"]');
    p.send('42007["message-with-ack"]');
    assert.equal(await p.nextText(), "437[]");
    p.close();
  });

  it("a binary event with an ack id is acked with a BINARY_ACK and the frames", async () => {
    const p = await connectSio();
    p.send('452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
    p.send(Uint8Array.from([1, 2, 3]));
    p.send(Uint8Array.from([4, 5, 6]));
    assert.equal(await p.nextText(), '462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
    assert.deepEqual([...(await p.nextBinary())], [1, 2, 3]);
    assert.deepEqual([...(await p.nextBinary())], [4, 5, 6]);
    p.close();
  });

  it("events and acks on a custom namespace carry the namespace", async () => {
    const p = await connectSio({ nsp: "/custom" });
    p.send('42/custom,["message","a"]');
    assert.equal(await p.nextText(), '42/custom,["message-back","a"]');
    p.send('42/custom,7["message-with-ack","a"]');
    assert.equal(await p.nextText(), '43/custom,7["a"]');
    p.close();
  });

  it("binary over polling travels as base64 packets of the same payload", async () => {
    const { sid } = await sio.handshake();
    await sio.post(sid, "40");
    assert.equal(packets((await sio.poll(sid)).body).length, 2); // ack + auth
    const header = '452-["message",{"_placeholder":true,"num":0},{"nested":{"_placeholder":true,"num":1}}]';
    assert.equal((await sio.post(sid, `${header}${RS}bAQID${RS}bBA==`)).body, "ok");
    assert.equal(
      (await sio.poll(sid)).body,
      `452-["message-back",{"_placeholder":true,"num":0},{"nested":{"_placeholder":true,"num":1}}]${RS}bAQID${RS}bBA==`,
    );
  });

  for (const [what, packet] of [
    ["an unknown packet type", "4abc"],
    ["an invalid payload format", "42{}"],
    ["an invalid ack id", '42abc["message-with-ack",1,"2",{"3":[false]}]'],
  ]) {
    it(`${what} closes the connection`, async () => {
      const p = await connectSio();
      p.send(packet);
      await p.waitClose(2000);
    });
  }

  // Packets the reference parser accepts (captured): the connection stays open.
  for (const [what, packet, todo] of [
    ["an EVENT without payload", "42"],
    ["a numeric event name", "42[1]"],
    ["an ACK without payload", "43"],
    ["an ACK with an unknown id", '4399["x"]'],
  ]) {
    it(`${what} (${packet}) is accepted and the connection stays open`, { todo }, async () => {
      const p = await connectSio();
      p.send(packet);
      p.send('42["message","still here"]');
      assert.equal(await p.nextText(), '42["message-back","still here"]');
      p.close();
    });
  }

  it("an unused attachment is dropped: the echo is a plain EVENT", {
    todo: "Ferry relays the unused attachment (451- header + frame): different bytes, still decodable",
  }, async () => {
    const p = await connectSio();
    p.send('451-["message","noph"]');
    p.send(Uint8Array.from([9]));
    assert.equal(await p.nextText(), '42["message-back","noph"]');
    p.close();
  });

  it("a placeholder object in a plain EVENT is ordinary JSON and echoed unchanged", async () => {
    const p = await connectSio();
    p.send('42["message",{"_placeholder":true,"num":0}]');
    assert.equal(await p.nextText(), '42["message-back",{"_placeholder":true,"num":0}]');
    p.close();
  });
});
