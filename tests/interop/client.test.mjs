// Interop with the official socket.io-client 4.8 (Node): the client's own transports,
// upgrade, acks, binary, namespaces, rooms, reconnection and errors against
// sio-interop-server (and sio-echo for the auth payload), all on 127.0.0.1:0.
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import { loadClient, nextEvent, sleep, startServer, withTimeout } from "./lib/harness.mjs";

const { io, Manager } = await loadClient();

const MODES = {
  websocket: { transports: ["websocket"] },
  polling: { transports: ["polling"] },
  default: {}, // polling first, then upgrade to WebSocket
};

const servers = {};
const sockets = new Set();

// A client with its own Manager (its own Engine.IO connection), fast reconnection and
// no automatic connect until the test has registered its listeners.
function client(url, mode, opts = {}) {
  const s = io(url, {
    forceNew: true,
    reconnectionDelay: 100,
    reconnectionDelayMax: 200,
    randomizationFactor: 0,
    timeout: 5000,
    autoConnect: false,
    ...MODES[mode],
    ...opts,
  });
  sockets.add(s);
  return s;
}

// Connects and resolves once "connect" fired; rejects on connect_error.
function connect(s, ms = 5000) {
  const p = new Promise((resolve, reject) => {
    const ok = () => {
      s.off("connect_error", fail);
      resolve(s);
    };
    const fail = (err) => {
      s.off("connect", ok);
      reject(err);
    };
    s.once("connect", ok);
    s.once("connect_error", fail);
  });
  s.connect();
  return withTimeout(p, ms, "connect");
}

// Emits with an ack callback and resolves with ALL the ack arguments.
function ack(s, event, ...args) {
  return withTimeout(
    new Promise((resolve) => s.emit(event, ...args, (...reply) => resolve(reply))),
    3000,
    `the ack of "${event}"`,
  );
}

// Every `event` received by `s`, for asserting what did (not) arrive.
function record(s, event) {
  const got = [];
  s.on(event, (...args) => got.push(args));
  return got;
}

const stats = async (s) => (await ack(s, "stats"))[0];

const bytes = (b) => [...new Uint8Array(b.buffer ?? b, b.byteOffset ?? 0, b.byteLength)];

before(async () => {
  [servers.both, servers.websocket, servers.polling, servers.echo] = await Promise.all([
    startServer("SIO_INTEROP_SERVER", ["--transports", "both"]),
    startServer("SIO_INTEROP_SERVER", ["--transports", "websocket"]),
    startServer("SIO_INTEROP_SERVER", ["--transports", "polling"]),
    startServer("SIO_ECHO"),
  ]);
});

afterEach(() => {
  for (const s of sockets) s.disconnect();
  sockets.clear();
});

after(async () => {
  const results = {};
  for (const [name, srv] of Object.entries(servers)) {
    results[name] = { ...(await srv.stop()), stderr: srv.stderr().slice(-2000) };
  }
  for (const [name, r] of Object.entries(results)) {
    assert.equal(r.diedEarly, false, `server ${name} died during the tests: ${r.stderr}`);
    assert.equal(r.crashed, false, `server ${name} did not exit cleanly on SIGTERM: ${JSON.stringify(r)}`);
  }
});

for (const mode of Object.keys(MODES)) {
  describe(`socket.io-client over ${mode}`, () => {
    const url = () => servers.both.url;

    it("connects and uses the expected transport", async () => {
      const s = client(url(), mode);
      let openedOn;
      s.io.once("open", () => (openedOn = s.io.engine.transport.name));
      let upgraded;
      if (mode === "default") {
        s.io.once("open", () => {
          upgraded = nextEvent(s.io.engine, "upgrade", 5000);
        });
      }
      await connect(s);
      assert.equal(s.connected, true);
      assert.match(s.id, /^[A-Za-z0-9_-]{20}$/);
      if (mode === "websocket") {
        assert.equal(openedOn, "websocket");
        assert.equal(s.io.engine.transport.name, "websocket");
      } else if (mode === "polling") {
        assert.equal(openedOn, "polling");
        await sleep(500); // several heartbeats: it must neither upgrade nor drop
        assert.equal(s.io.engine.transport.name, "polling");
        assert.equal(s.connected, true);
      } else {
        assert.equal(openedOn, "polling");
        const [transport] = await upgraded;
        assert.equal(transport.name, "websocket");
        assert.equal(s.io.engine.transport.name, "websocket");
      }
      assert.deepEqual(await ack(s, "echo-ack", "after connect"), ["after connect"]);
    });

    it("keeps the order of a burst of 200 events", async () => {
      const s = client(url(), mode);
      await connect(s);
      const got = record(s, "echo");
      for (let i = 0; i < 200; i++) s.emit("echo", i);
      await withTimeout(
        (async () => {
          while (got.length < 200) await sleep(10);
        })(),
        5000,
        "200 echoes",
      );
      assert.deepEqual(
        got.map((a) => a[0]),
        Array.from({ length: 200 }, (_, i) => i),
      );
    });

    it("client -> server acks carry every argument back", async () => {
      const s = client(url(), mode);
      await connect(s);
      assert.deepEqual(await ack(s, "echo-ack", 1, "two", { three: [true, null] }, [4.5]), [
        1,
        "two",
        { three: [true, null] },
        [4.5],
      ]);
      assert.deepEqual(await ack(s, "echo-ack"), []);
      assert.equal(await s.timeout(2000).emitWithAck("echo-ack", "promise"), "promise");
    });

    it("server -> client acks: the client's reply reaches the server", async () => {
      const s = client(url(), mode);
      s.on("ask", (question, cb) => cb("answer", question));
      await connect(s);
      const result = nextEvent(s, "server-ack-result");
      await ack(s, "server-ack", { event: "ask", data: { q: 1 }, timeoutMs: 2000 });
      assert.deepEqual(await result, ["answer", { q: 1 }]);
    });

    it("server -> client acks time out when the client never replies", async () => {
      const s = client(url(), mode);
      s.on("ignored", () => {});
      await connect(s);
      const result = nextEvent(s, "server-ack-result");
      const started = Date.now();
      await ack(s, "server-ack", { event: "ignored", data: null, timeoutMs: 200 });
      assert.deepEqual(await result, [{ timeout: true }]);
      assert.ok(Date.now() - started >= 150, "not before the timeout");
    });

    it("binary arguments travel both ways (Buffer, Uint8Array, nested, empty, 100 KB)", async () => {
      const s = client(url(), mode);
      await connect(s);
      const big = Buffer.alloc(100 * 1024, 0xab);
      const echoed = nextEvent(s, "echo");
      s.emit(
        "echo",
        Buffer.from([1, 2, 3]),
        Uint8Array.from([4, 5]),
        { nested: { list: [Buffer.from([6]), "text", Buffer.alloc(0)] } },
        big,
      );
      const [a, b, c, d] = await echoed;
      assert.ok(Buffer.isBuffer(a));
      assert.deepEqual(bytes(a), [1, 2, 3]);
      assert.deepEqual(bytes(b), [4, 5]);
      assert.deepEqual(bytes(c.nested.list[0]), [6]);
      assert.equal(c.nested.list[1], "text");
      assert.equal(c.nested.list[2].byteLength, 0);
      assert.equal(d.byteLength, big.length);
      assert.ok(Buffer.from(d).equals(big));
    });

    it("binary ack payloads travel both ways", async () => {
      const s = client(url(), mode);
      s.on("ask-bin", (payload, cb) => cb({ got: payload.bin }, Buffer.from([9, 8])));
      await connect(s);
      const [x, y] = await ack(s, "echo-ack", Buffer.from([7]), { deep: [Uint8Array.from([1, 1])] });
      assert.deepEqual(bytes(x), [7]);
      assert.deepEqual(bytes(y.deep[0]), [1, 1]);

      const result = nextEvent(s, "server-ack-result");
      await ack(s, "server-ack", { event: "ask-bin", data: { bin: Buffer.from([5, 5, 5]) }, timeoutMs: 2000 });
      const [reply, extra] = await result;
      assert.deepEqual(bytes(reply.got), [5, 5, 5]);
      assert.deepEqual(bytes(extra), [9, 8]);
    });

    it("connects to a custom namespace, multiplexed with the main one on one connection", async () => {
      const manager = new Manager(url(), {
        reconnectionDelay: 100,
        autoConnect: false,
        ...MODES[mode],
      });
      const main = manager.socket("/");
      const custom = manager.socket("/custom");
      sockets.add(main);
      sockets.add(custom);
      const before = await (async () => {
        const probe = client(url(), mode);
        await connect(probe);
        const st = await stats(probe);
        probe.disconnect();
        return st;
      })();
      await Promise.all([connect(main), connect(custom)]);
      assert.equal(main.io, custom.io);
      assert.notEqual(main.id, custom.id);
      assert.deepEqual(await ack(custom, "echo-ack", "custom"), ["custom"]);
      assert.deepEqual(await ack(main, "echo-ack", "main"), ["main"]);
      const echoed = nextEvent(custom, "echo");
      custom.emit("echo", Buffer.from([1]));
      assert.deepEqual(bytes((await echoed)[0]), [1]);
      const after = await stats(custom);
      assert.equal(after.connections["/custom"], before.connections["/custom"] + 1);
    });

    it("a room broadcast reaches every member except the excepted one, and no one else", async () => {
      const [a, b, c, d] = [0, 1, 2, 3].map(() => client(url(), mode));
      await Promise.all([a, b, c, d].map((s) => connect(s)));
      const room = `room-${mode}`;
      for (const s of [a, b, c]) assert.deepEqual(await ack(s, "join", room), [true]);
      const got = Object.fromEntries(["a", "b", "c", "d"].map((k, i) => [k, record([a, b, c, d][i], "news")]));

      const [count] = await ack(a, "broadcast", {
        room,
        except: c.id,
        event: "news",
        data: { n: 1, bin: Buffer.from([1, 2]) },
      });
      assert.equal(count, 2);
      await withTimeout(
        (async () => {
          while (got.a.length < 1 || got.b.length < 1) await sleep(10);
        })(),
        3000,
        "news at a and b",
      );
      await sleep(200); // time for anything that should not arrive
      for (const k of ["a", "b"]) {
        assert.equal(got[k].length, 1, k);
        assert.equal(got[k][0][0].n, 1);
        assert.deepEqual(bytes(got[k][0][0].bin), [1, 2]);
      }
      assert.equal(got.c.length, 0, "the excepted socket got nothing");
      assert.equal(got.d.length, 0, "a socket outside the room got nothing");

      // except by room name
      assert.deepEqual(await ack(b, "join", "quiet"), [true]);
      const [count2] = await ack(d, "broadcast", { room, except: "quiet", event: "news", data: 2 });
      assert.equal(count2, 2); // a and c
      await sleep(200);
      assert.deepEqual(
        [got.a.length, got.b.length, got.c.length, got.d.length],
        [2, 1, 1, 0],
      );
    });

    it("reconnects by itself after the server drops the transport, and can emit again", async () => {
      const s = client(url(), mode);
      await connect(s);
      const firstId = s.id;
      const before = await stats(s);
      const disconnected = nextEvent(s, "disconnect", 5000);
      const reconnected = nextEvent(s.io, "reconnect", 5000);
      s.emit("drop");
      const [reason] = await disconnected;
      assert.ok(["transport close", "transport error"].includes(reason), `disconnect reason ${reason}`);
      const [attempts] = await reconnected;
      assert.ok(attempts >= 1);
      if (!s.connected) await nextEvent(s, "connect", 5000);
      assert.equal(s.connected, true);
      assert.notEqual(s.id, firstId, "a new session (no state recovery configured)");
      assert.deepEqual(await ack(s, "echo-ack", "again"), ["again"]);
      const after = await stats(s);
      assert.equal(after.connections["/"], before.connections["/"] + 1);
    });

    it("an unknown namespace fails with connect_error 'Invalid namespace' and does not retry", async () => {
      const s = client(`${url()}/nope`, mode);
      const connectErrors = record(s, "connect_error");
      await assert.rejects(connect(s), (err) => {
        assert.equal(err.message, "Invalid namespace");
        return true;
      });
      await sleep(400);
      assert.equal(connectErrors.length, 1, "no automatic retry after a server refusal");
      assert.equal(s.connected, false);
      assert.equal(s.active, false);
    });

    it("the CONNECT auth payload reaches the server (sio-echo emits it back)", async () => {
      const auth = { token: "abc", n: 1, nested: { list: [1, "x"] } };
      const s = client(servers.echo.url, mode, { auth });
      const got = nextEvent(s, "auth");
      await connect(s);
      assert.deepEqual(await got, [auth]);

      const fn = client(`${servers.echo.url}/custom`, mode, { auth: (cb) => cb({ from: "function" }) });
      const got2 = nextEvent(fn, "auth");
      await connect(fn);
      assert.deepEqual(await got2, [{ from: "function" }]);

      const none = client(servers.echo.url, mode);
      const got3 = nextEvent(none, "auth");
      await connect(none);
      assert.deepEqual(await got3, [{}]);
    });
  });
}

describe("transport restrictions and mixed transports", () => {
  it("a broadcast reaches clients on polling and on WebSocket alike", async () => {
    const p = client(servers.both.url, "polling");
    const w = client(servers.both.url, "websocket");
    const u = client(servers.both.url, "default");
    await Promise.all([p, w, u].map((s) => connect(s)));
    for (const s of [p, w, u]) await ack(s, "join", "mixed");
    const got = [p, w, u].map((s) => nextEvent(s, "hello"));
    const [count] = await ack(w, "broadcast", { room: "mixed", event: "hello", data: [Buffer.from([3])] });
    assert.equal(count, 3);
    for (const g of got) {
      const [data] = await g;
      assert.deepEqual(bytes(data[0]), [3]);
    }
  });

  it("a WebSocket-only server serves WebSocket clients and refuses polling ones", async () => {
    const w = client(servers.websocket.url, "websocket");
    await connect(w);
    assert.deepEqual(await ack(w, "echo-ack", 1), [1]);
    const p = client(servers.websocket.url, "polling", { reconnection: false });
    await assert.rejects(connect(p));
    assert.equal(p.connected, false);
  });

  it("a polling-only server never offers an upgrade and refuses WebSocket clients", async () => {
    const u = client(servers.polling.url, "default");
    await connect(u);
    await sleep(500);
    assert.equal(u.io.engine.transport.name, "polling");
    assert.deepEqual(u.io.engine.upgrades ?? [], []);
    assert.deepEqual(await ack(u, "echo-ack", 1), [1]);
    const w = client(servers.polling.url, "websocket", { reconnection: false });
    await assert.rejects(connect(w));
  });

  for (const mode of ["polling", "websocket"]) {
    it(`a client with forceBase64 exchanges binary over ${mode}`, {
    }, async () => {
      const s = client(servers.both.url, mode, { forceBase64: true });
      await connect(s);
      const [x] = await ack(s, "echo-ack", Buffer.from([1, 2, 3]));
      assert.deepEqual(bytes(x), [1, 2, 3]);
    });
  }
});
