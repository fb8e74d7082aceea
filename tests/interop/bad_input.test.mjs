// Bad input against sio-echo: malformed packets, wrong JSON types, oversize messages,
// unknown namespaces, garbage bytes, idle and half-open connections, and 3000
// connections dropped abruptly, with the server's memory and descriptors checked after.
// Every case must end only the offending session: two bystander clients (official
// socket.io-client, one per transport) stay connected throughout and are checked after
// each case.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { Worker } from "node:worker_threads";

import { checkNodeModules, fdCount, loadWs, memKiB, sleep, startServer, withTimeout } from "./lib/harness.mjs";
import { Polling, rawExchange, rawTcp, RS, sioConnect, WsPeer } from "./lib/wire.mjs";

checkNodeModules();
const { WebSocket } = await loadWs();

const MAX_PAYLOAD = 1000000;
const CONNECT_TIMEOUT = 1000;
// transport_options::handshake_timeout default (sio-echo does not change it): the
// deadline for a complete HTTP request / WebSocket handshake on a new TCP connection.
const HANDSHAKE_TIMEOUT = 10000;

let server;
let eio;
let sio;
const bystanders = [];
const peers = new Set();

async function connectSio(opts) {
  const p = await sioConnect(server.wsUrl, opts);
  peers.add(p);
  return p;
}

async function wsPeer(path, opts = { autoPong: true }) {
  const p = await WsPeer.connect(`${server.wsUrl}${path}?EIO=4&transport=websocket`, opts);
  peers.add(p);
  return p;
}

// A bystander: an official client in a worker thread (see lib/bystander_worker.mjs).
async function startBystander(transports) {
  const worker = new Worker(new URL("./lib/bystander_worker.mjs", import.meta.url), {
    workerData: { url: server.url, transports },
  });
  const ready = await withTimeout(
    new Promise((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
    }),
    5000,
    "the bystander to connect",
  );
  if (!ready.ready) throw new Error(`bystander failed to connect: ${ready.error}`);
  let seq = 0;
  const pending = new Map();
  let failure = null;
  worker.on("error", (e) => (failure = `worker error: ${e.stack ?? e}`));
  worker.on("exit", (code) => (failure ??= `worker exited with ${code}`));
  worker.on("message", (m) => {
    if (m.id !== undefined && pending.has(m.id)) {
      pending.get(m.id)(m);
      pending.delete(m.id);
    }
  });
  return {
    transports,
    request(cmd) {
      const id = seq++;
      const p = new Promise((resolve) => pending.set(id, resolve));
      worker.postMessage({ id, cmd });
      return withTimeout(p, 5000, `the bystander's answer to ${cmd}`).catch((e) => {
        throw new Error(`${e.message}${failure ? ` (${failure})` : ""}`);
      });
    },
    check() {
      return this.request("check");
    },
    async close() {
      worker.postMessage({ cmd: "close" });
      await sleep(50);
      await worker.terminate();
    },
  };
}

// Both bystanders are still connected on their original session and get an echo.
async function assertBystandersFine() {
  for (const b of bystanders) {
    const r = await b.check();
    const what = `bystander on ${b.transports[0]}`;
    assert.equal(r.connected, true, `${what} was disconnected: ${r.lostReason}`);
    assert.equal(r.sameSession, true, `${what} changed its session`);
    assert.deepEqual(r.echo, { text: "still-alive", bin: [1] }, `${what}: echo`);
  }
}

async function assertServerAnswers() {
  assert.equal(server.alive(), true, `sio-echo died: ${JSON.stringify(server.exitInfo())} ${server.stderr()}`);
  const { open } = await sio.handshake();
  assert.equal(open.maxPayload, MAX_PAYLOAD);
}

before(async () => {
  server = await startServer("SIO_ECHO");
  eio = new Polling(server.url, "/engine.io/");
  sio = new Polling(server.url, "/socket.io/");
  for (const transports of [["websocket"], ["polling"]]) bystanders.push(await startBystander(transports));
});

after(async () => {
  for (const p of peers) p.terminate();
  for (const b of bystanders) await b.close();
  if (!server) return;
  const result = await server.stop();
  assert.equal(result.diedEarly, false, `sio-echo died during the tests: ${server.stderr()}`);
  assert.equal(result.crashed, false, `sio-echo did not exit cleanly on SIGTERM: ${JSON.stringify(result)}`);
});

// ---------------------------------------------------------------------------------
describe("malformed packets close only the offending session", () => {
  const bin = (...b) => Uint8Array.from(b);
  // [description, frames sent after a successful CONNECT to "/"]
  const cases = [
    ["Engine.IO: unknown packet type", ["abc"]],
    ["Engine.IO: type 9", ["9x"]],
    ["Engine.IO: empty text frame", [""]],
    ["Socket.IO: empty message", ["4"]],
    ["Socket.IO: unknown packet type 7", ["47"]],
    ["Socket.IO: non-numeric type", ["4abc"]],
    ["EVENT: empty array", ["42[]"]],
    ["EVENT: truncated JSON", ['42["x"']],
    ["EVENT: a string instead of an array", ['42"x"']],
    ["EVENT: an object instead of an array", ["42{}"]],
    ["EVENT: trailing garbage", ['42["message"]x']],
    ["EVENT: object as event name", ['42[{"a":1}]']],
    ["EVENT: boolean as event name", ["42[true]"]],
    ["EVENT: null as event name", ["42[null]"]],
    ["EVENT: array as event name", ["42[[1]]"]],
    ["EVENT: reserved name disconnect", ['42["disconnect"]']],
    ["EVENT: reserved name connect", ['42["connect"]']],
    ["EVENT: non-numeric ack id", ['42abc["message-with-ack"]']],
    ["EVENT: negative ack id", ['42-1["message-with-ack"]']],
    ["EVENT: namespace without comma", ['42/custom["message","x"]']],
    ["EVENT: JSON nested 100000 deep", [`42["message",${"[".repeat(100000)}${"]".repeat(100000)}]`]],
    ["ACK: a string instead of an array", ['431"x"']],
    ["DISCONNECT with a payload", ["41{}"]],
    ["BINARY_EVENT: missing attachment count", ['45-["message"]']],
    ["BINARY_EVENT: no dash", ['451["message"]']],
    ["BINARY_EVENT: 11 attachments (limit 10)", ['4511-["message"]']],
    ["BINARY_EVENT: placeholder out of range", ['451-["message",{"_placeholder":true,"num":1}]', bin(1)]],
    ["BINARY_EVENT: text frame instead of the attachment", ['451-["message",{"_placeholder":true,"num":0}]', '42["message","x"]']],
    ["binary frame with no BINARY_* header", [bin(1, 2, 3)]],
  ];
  for (const [what, frames] of cases) {
    it(`${what} closes the connection`, async () => {
      const p = await connectSio();
      for (const f of frames) p.send(f);
      await p.waitClose(3000);
      await assertBystandersFine();
    });
  }

  // socket.io-parser 4.2.7 (what socket.io 4.8.4 runs) requires 1..10 attachments.
  for (const packet of ['450-["message"]', "460-1[]"]) {
    it(`a BINARY packet announcing zero attachments (${packet}) closes the connection`, {
    }, async () => {
      const p = await connectSio();
      p.send(packet);
      await p.waitClose(2000);
    });
  }

  it("a client CONNECT_ERROR packet on a connected namespace closes the connection", {
  }, async () => {
    const p = await connectSio();
    p.send('44{"message":"x"}');
    await p.waitClose(2000);
  });

  // Over HTTP long-polling the same rule holds: the session is gone, nothing else is.
  const pollingCases = [
    ["an invalid Engine.IO packet", "abc"],
    ["an empty body", ""],
    ["a valid packet followed by an invalid one", `4ok${RS}X${RS}4never`],
    ["invalid base64", "b!!!!"],
    ["an invalid Socket.IO packet", "4abc"],
    ["a Socket.IO EVENT before CONNECT", '42["message","x"]'],
  ];
  for (const [what, body] of pollingCases) {
    it(`polling: ${what} closes the session`, async () => {
      const poll = what.includes("Socket.IO") ? sio : eio;
      const { sid } = await poll.handshake();
      const post = await poll.post(sid, body);
      assert.ok([200, 400].includes(post.status), `POST answered ${post.status}`);
      await sleep(20);
      const next = await poll.poll(sid);
      if (next.status === 200) assert.match(next.body, /(^|\x1e)1$/, "the session ends with a close packet");
      else assert.equal(next.status, 400);
      const again = await poll.poll(sid);
      assert.equal(again.status, 400);
      await assertBystandersFine();
    });
  }
});

// ---------------------------------------------------------------------------------
describe("oversize input (maxPayload 1000000)", () => {
  it("a WebSocket message of exactly maxPayload bytes is accepted", async () => {
    const p = await wsPeer("/engine.io/");
    await p.nextText();
    const msg = "4" + "x".repeat(MAX_PAYLOAD - 1);
    p.send(msg);
    assert.equal((await p.nextText(5000)).length, MAX_PAYLOAD);
    p.close();
  });

  it("a WebSocket message over maxPayload closes the connection", async () => {
    // The client is still sending when the server closes, so its TCP stack may discard
    // the close frame (RST): 1006 is as good as 1009 here. The exact frame is checked below.
    for (const path of ["/engine.io/", "/socket.io/"]) {
      const p = await wsPeer(path);
      await p.nextText();
      p.send("4" + "x".repeat(MAX_PAYLOAD));
      const info = await p.waitClose(5000);
      assert.ok([1009, 1006].includes(info.code), `${path}: close code ${info.code}`);
    }
    await assertBystandersFine();
  });

  it("a frame header announcing more than maxPayload is answered with close 1009 at once", async () => {
    const c = rawTcp(server.port);
    await c.connected;
    c.sock.write(
      "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    await withTimeout((async () => { while (!c.received.includes("maxPayload")) await sleep(10); })(), 3000, "the open packet");
    const header = Buffer.alloc(14); // FIN + text, masked, 64-bit length, zero mask key
    header[0] = 0x81;
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(MAX_PAYLOAD + 1), 2);
    c.sock.write(header);
    await withTimeout(c.closed, 3000, "the server to close");
    const at = c.received.lastIndexOf(Buffer.from([0x88]));
    assert.ok(at > 0, "a close frame was sent");
    assert.equal(c.received.readUInt16BE(at + 2), 1009, "close code 1009 (message too big)");
  });

  it("a POST body of exactly maxPayload bytes is accepted", async () => {
    const { sid } = await eio.handshake();
    const post = await eio.post(sid, "4" + "y".repeat(MAX_PAYLOAD - 1));
    assert.equal(post.status, 200);
    assert.equal((await eio.poll(sid)).body.length, MAX_PAYLOAD);
  });

  it("a POST body over maxPayload is refused with 413 and closes the session", async () => {
    // The reference answers 413 and keeps the session (captured); Ferry closes it
    // (DESIGN.md section 5: oversize input ends the session).
    const { sid } = await eio.handshake();
    const post = await eio.post(sid, "4" + "y".repeat(MAX_PAYLOAD));
    assert.equal(post.status, 413);
    assert.equal(post.headers.get("access-control-allow-origin"), "*");
    const next = await eio.poll(sid);
    assert.equal(next.status, 400);
    await assertBystandersFine();
  });

  it("a POST body over the transport's HTTP body limit (2.5 MB) is refused and the server stays up", async () => {
    const { sid } = await eio.handshake();
    const outcome = await eio.post(sid, "4" + "z".repeat(2500000)).then(
      (r) => r.status,
      (e) => e.cause?.code ?? e.message, // the server may close before the body is sent
    );
    assert.ok([413, "EPIPE", "ECONNRESET", "UND_ERR_SOCKET"].includes(outcome), `outcome ${outcome}`);
    await assertServerAnswers();
    await assertBystandersFine();
  });

  it("a POST body over the transport's HTTP body limit also closes the session", {
    todo: "Ferry's transport refuses the body before Engine.IO sees it; the session stays open",
  }, async () => {
    const { sid } = await eio.handshake();
    await eio.post(sid, "4" + "z".repeat(2500000)).catch(() => {});
    assert.equal((await eio.poll(sid)).status, 400);
  });
});

// ---------------------------------------------------------------------------------
describe("unknown namespaces", () => {
  it("each gets CONNECT_ERROR Invalid namespace, the connection stays usable", async () => {
    const p = await wsPeer("/socket.io/");
    await p.nextText();
    const names = ["/a", "/custom/x", "/CUSTOM", "/custom?x=1", "/ünïcode", "/" + "n".repeat(10000), "/custom ", "//"];
    for (const nsp of names) {
      p.send(`40${nsp},`);
      assert.equal(await p.nextText(), `44${nsp},{"message":"Invalid namespace"}`);
    }
    for (let i = 0; i < 500; i++) p.send(`40/many-${i},`);
    for (let i = 0; i < 500; i++) assert.equal(await p.nextText(), `44/many-${i},{"message":"Invalid namespace"}`);
    p.send("40/custom,");
    assert.match(await p.nextText(), /^40\/custom,\{"sid":/);
    p.close();
    await assertBystandersFine();
  });
});

// ---------------------------------------------------------------------------------
describe("garbage over raw TCP", () => {
  const garbage = [
    ["random bytes", Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 256))],
    ["empty lines", "\r\n\r\n\r\n\r\n"],
    ["a request line without version", "GET /socket.io/?EIO=4&transport=polling\r\n\r\n"],
    ["a negative Content-Length", "POST /socket.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"],
    ["a huge Content-Length", "POST /socket.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n"],
    ["a bad chunked body", "POST /engine.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n"],
    ["a 100 KB header", `GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(100000)}\r\n\r\n`],
    ["5000 headers", `GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n${"X-H: v\r\n".repeat(5000)}\r\n`],
    ["a TLS ClientHello", Buffer.from("160301020001", "hex")],
    ["an upgrade without Sec-WebSocket-Key", "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n"],
    ["an upgrade with Sec-WebSocket-Version 99", "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 99\r\n\r\n"],
  ];

  it("every request is answered with a 4xx or closed, and the server keeps serving", async (t) => {
    const results = await Promise.all(
      garbage.map(async ([what, bytes]) => ({ what, ...(await rawExchange(server.port, bytes, HANDSHAKE_TIMEOUT + 3000)) })),
    );
    for (const r of results) {
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(r.text)?.[1];
      t.diagnostic(`${r.what}: ${status ? `HTTP ${status}` : "closed without an answer"}`);
      assert.ok(r.text === "" || (status && status.startsWith("4")), `${r.what}: answered ${JSON.stringify(r.text.slice(0, 80))}`);
      assert.equal(r.closed, true, `${r.what}: the connection was not closed`);
    }
    await assertServerAnswers();
    await assertBystandersFine();
  });
});

for (const [what, bytes] of [
  ["an unknown HTTP version", "GET /socket.io/?EIO=4&transport=polling HTTP/9.9\r\nHost: x\r\n\r\n"],
  ["NUL bytes in the path", "GET /socket.io/\0\0?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n"],
]) {
  it(`a request with ${what} is refused with 400, as Node's HTTP parser does`, {
  }, async () => {
    const r = await rawExchange(server.port, bytes);
    assert.match(r.text, /^HTTP\/1\.1 400 /);
  });
}

// ---------------------------------------------------------------------------------
describe("idle and half-open connections", () => {
  it("clients that never send CONNECT are closed after connectTimeout, others keep working", async () => {
    const idle = await Promise.all(Array.from({ length: 10 }, () => wsPeer("/socket.io/")));
    const started = Date.now();
    await Promise.all(idle.map((p) => p.waitClose(CONNECT_TIMEOUT + 2000)));
    const took = Date.now() - started;
    assert.ok(took >= CONNECT_TIMEOUT - 150, `closed after ${took} ms`);
    for (const p of idle) assert.ok(p.pings >= 2, "pings were answered: it is the connect timeout");
    await assertBystandersFine();
  });

  it("silent and half-sent requests are closed after the handshake timeout; others are served meanwhile", async () => {
    const half = [
      ["TCP connect, nothing sent", ""],
      ["half a request line", "GET /socket.io/?EIO=4&tra"],
      ["headers without the final CRLF", "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n"],
      ["half a WebSocket upgrade", "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"],
      ["a POST with half its body", "POST /engine.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n4half"],
    ];
    const conns = [];
    for (const [what, bytes] of half) {
      for (let i = 0; i < 20; i++) {
        const c = rawTcp(server.port);
        c.what = what;
        await c.connected;
        if (bytes) c.sock.write(bytes);
        conns.push(c);
      }
    }
    // A slowloris: one header byte every 500 ms never completes the request in time.
    const slow = rawTcp(server.port);
    slow.what = "a request dribbled one byte every 500 ms";
    await slow.connected;
    const dribble = "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nX-Slow: " + "s".repeat(100);
    let pos = 0;
    const timer = setInterval(() => {
      if (slow.closedAt || pos >= dribble.length) return clearInterval(timer);
      slow.sock.write(dribble[pos++]);
    }, 500);
    conns.push(slow);

    // While they hang, the server keeps serving: handshakes and echoes stay fast.
    const started = Date.now();
    let worst = 0;
    while (Date.now() - started < HANDSHAKE_TIMEOUT - 2000) {
      const t0 = Date.now();
      await sio.handshake();
      await assertBystandersFine();
      worst = Math.max(worst, Date.now() - t0);
      await sleep(250);
    }
    assert.ok(worst < 1000, `slowest handshake + echo while half-open connections hang: ${worst} ms`);
    for (const c of conns) assert.equal(c.closedAt, null, `${c.what}: closed before the handshake timeout`);

    await withTimeout(Promise.all(conns.map((c) => c.closed)), 6000, "the half-open connections to be closed");
    clearInterval(timer);
    for (const c of conns) {
      const lived = c.closedAt - c.connectedAt;
      assert.ok(lived >= HANDSHAKE_TIMEOUT - 1000 && lived < HANDSHAKE_TIMEOUT + 3000, `${c.what}: closed after ${lived} ms`);
    }
    await assertServerAnswers();
  });
});

// ---------------------------------------------------------------------------------
describe("3000 connections dropped abruptly", () => {
  const ROUND = 3000;
  // Two warm-up rounds, then the measured ones (FERRY_CHURN_ROUNDS=20 for a soak run).
  const WARMUP_ROUNDS = 2;
  const ROUNDS = Number(process.env.FERRY_CHURN_ROUNDS ?? 3);
  // Memory after warm-up must not keep growing. What glibc does makes RSS a coarse
  // signal: freed memory stays resident for reuse, so VmRSS after a round is the peak
  // heap reached so far (it equalled VmHWM in every run), and that peak depends on timing
  // (how many handshakes happened to be in flight at once). Measured on a loaded 2-core
  // machine, 12 runs: RSS after the 1st round 10-28 MiB, after the 2nd 19-33 MiB, then a
  // plateau of 28-33 MiB reached within 2-4 rounds; a 16-round run went 26.7, 29.6, 30.2,
  // then +20..100 KiB per round up to 30.9 MiB (it flattens: fragmentation, not a leak).
  // So, with `warm` the larger value after the two warm-up rounds:
  //  - every measured round: RSS and peak <= warm * 1.6 + 8 MiB (covers the worst
  //    observed warm-up, 19 MiB -> limit 38 MiB, vs a 33 MiB plateau);
  //  - from the first to the last measured round RSS grows <= 15% + 4 MiB (observed:
  //    at most +4.7 MiB, while still converging).
  // A leaked session (with its WebSocket read buffer, >= 10 KiB) would add ~90 MiB over
  // the 3 measured rounds and fail at once; the checks catch leaks down to ~2 KiB per
  // connection. Smaller ones need a soak run: FERRY_CHURN_ROUNDS=30.
  const WARM_FACTOR = 1.6;
  const WARM_SLACK_KIB = 8192;
  const SLOPE_FACTOR = 1.15;
  const SLOPE_SLACK_KIB = 4096;

  // Opens one WebSocket session; half of them also join "/" (Socket.IO CONNECT). `opened`
  // is true once the Engine.IO open packet arrived (the session exists on the server);
  // `early` says the server closed it before the test dropped it (under heavy machine
  // load a 200 ms pingTimeout can expire; that is the server doing its job).
  function openWs(i) {
    return new Promise((resolve) => {
      const ws = new WebSocket(`${server.wsUrl}/socket.io/?EIO=4&transport=websocket`, { perMessageDeflate: false });
      let stage = 0;
      let settled = false;
      const done = (why) => {
        if (settled) return;
        settled = true;
        resolve({ ws, opened: stage > 0, early: why ?? null });
      };
      ws.on("message", (data) => {
        const text = data.toString();
        if (text === "2") return ws.send("3");
        if (stage === 0 && text.startsWith("0")) {
          stage = 1;
          if (i % 2) return done();
          ws.send("40");
        } else if (stage === 1 && text.startsWith("40")) {
          stage = 2;
          done();
        }
      });
      ws.on("error", (e) => done(`${e.code ?? e.message} at stage ${stage}`));
      ws.on("close", (code) => done(`close ${code} at stage ${stage}`));
    });
  }

  // One polling session with a GET left pending on its own TCP connection, dropped by
  // destroying that connection (no response read, no close packet).
  async function pollingDrop(i) {
    const body = await new Promise((resolve, reject) => {
      const req = http.get(
        { host: "127.0.0.1", port: server.port, path: "/socket.io/?EIO=4&transport=polling", agent: false },
        (res) => {
          let b = "";
          res.on("data", (d) => (b += d));
          res.on("end", () => resolve(b));
        },
      );
      req.on("error", reject);
    });
    const sid = JSON.parse(body.slice(1)).sid;
    const c = rawTcp(server.port);
    await c.connected;
    c.sock.write(`GET /socket.io/?EIO=4&transport=polling&sid=${sid}&i=${i} HTTP/1.1\r\nHost: x\r\n\r\n`);
    await sleep(30);
    c.sock.destroy();
    return true;
  }

  async function pool(n, limit, fn) {
    const results = new Array(n);
    let next = 0;
    await Promise.all(
      Array.from({ length: limit }, async () => {
        while (next < n) {
          const i = next++;
          results[i] = await fn(i);
        }
      }),
    );
    return results;
  }

  // `burst` multiplies the number of handshakes in flight.
  async function round(burst = 1) {
    const wsCount = ROUND / 2;
    const [opened] = await Promise.all([pool(wsCount, 150 * burst, openWs), pool(ROUND - wsCount, 50 * burst, pollingDrop)]);
    const ok = opened.filter((r) => r.opened).length;
    const failures = {};
    for (const r of opened) if (r.early) failures[r.early] = (failures[r.early] ?? 0) + 1;
    for (const { ws } of opened) ws.terminate(); // abrupt: TCP reset, no close frame
    return { ok, failures };
  }

  async function settle(baselineFds) {
    // Descriptors return to the idle level once every dropped connection is cleaned up.
    const deadline = Date.now() + 10000;
    let fds = await fdCount(server.pid);
    while (fds > baselineFds + 10 && Date.now() < deadline) {
      await sleep(100);
      fds = await fdCount(server.pid);
    }
    await sleep(700); // pending ping timeouts of the polling sessions (300 + 200 ms)
    return fdCount(server.pid);
  }

  it("the server cleans up, its memory stops growing after warm-up, and it keeps answering", async (t) => {
    const idleFds = await fdCount(server.pid);
    const [wsBystander, pollingBystander] = bystanders;
    const mem = [];
    for (let r = 0; r < WARMUP_ROUNDS + ROUNDS; r++) {
      await wsBystander.request("probe-start");
      const started = Date.now();
      const { ok, failures } = await round();
      const took = Date.now() - started;
      const probe = await wsBystander.request("probe-stop");
      assert.ok(ok >= ROUND / 2 - 15, `round ${r}: only ${ok} of ${ROUND / 2} WebSocket sessions opened: ${JSON.stringify(failures)}`);
      const fds = await settle(idleFds);
      assert.ok(fds <= idleFds + 10, `round ${r}: ${fds} descriptors open, ${idleFds} when idle`);
      assert.equal(server.alive(), true, "sio-echo crashed");
      await assertServerAnswers();
      mem.push(memKiB(server.pid));
      t.diagnostic(
        `round ${r}${r < WARMUP_ROUNDS ? " (warm-up)" : ""}: ${took} ms, RSS ${mem[r].rss} KiB, peak ${mem[r].hwm} KiB, ` +
          `${fds} fds (idle ${idleFds}); WebSocket echo during the round: ${probe.samples} samples, ` +
          `p99 ${probe.p99Ms} ms, max ${probe.maxMs} ms; ended early: ${JSON.stringify(failures)}`,
      );
      // The WebSocket bystander must come through untouched.
      const ws = await wsBystander.check();
      assert.equal(ws.connected, true, `WebSocket bystander lost during round ${r}: ${ws.lostReason}`);
      assert.equal(ws.sameSession, true);
      assert.deepEqual(ws.echo, { text: "still-alive", bin: [1] });
    }
    // The polling bystander needs a new TCP connection for every pong (Ferry answers
    // each HTTP request with Connection: close) and sio-echo's pingTimeout is 200 ms:
    // queued behind a flood of connection attempts in the accept backlog, a pong can
    // arrive late. Its fate is reported, not asserted.
    const polling = await pollingBystander.check();
    t.diagnostic(`polling bystander: ${polling.connected ? "still connected" : `lost: ${polling.lostReason}`}`);

    const warm = mem.slice(0, WARMUP_ROUNDS);
    const rssBase = Math.max(...warm.map((m) => m.rss));
    const hwmBase = Math.max(...warm.map((m) => m.hwm));
    const limit = (base) => Math.round(base * WARM_FACTOR + WARM_SLACK_KIB);
    for (let r = WARMUP_ROUNDS; r < mem.length; r++) {
      assert.ok(mem[r].rss <= limit(rssBase), `RSS after round ${r} is ${mem[r].rss} KiB; warm-up ${rssBase} KiB, limit ${limit(rssBase)} KiB`);
      assert.ok(mem[r].hwm <= limit(hwmBase), `peak RSS after round ${r} is ${mem[r].hwm} KiB; warm-up ${hwmBase} KiB, limit ${limit(hwmBase)} KiB`);
    }
    const first = mem[WARMUP_ROUNDS].rss;
    const last = mem[mem.length - 1].rss;
    const slopeLimit = Math.round(first * SLOPE_FACTOR + SLOPE_SLACK_KIB);
    assert.ok(last <= slopeLimit, `RSS kept growing over the measured rounds: ${first} -> ${last} KiB (limit ${slopeLimit} KiB)`);
  });
});
