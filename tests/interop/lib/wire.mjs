// Raw Engine.IO / Socket.IO peers for the wire-level tests: HTTP long-polling through
// fetch, WebSocket through the `ws` package, raw TCP through `net`. Nothing here
// understands more of the protocol than a test needs to state its expectations.
import net from "node:net";
import { loadWs, withTimeout } from "./harness.mjs";

export const RS = "\x1e"; // Engine.IO polling record separator

// ---------------------------------------------------------------------------------
// HTTP long-polling

export class Polling {
  // `base` is "http://127.0.0.1:<port>", `path` the Engine.IO endpoint.
  constructor(base, path = "/socket.io/") {
    this.base = base;
    this.path = path;
  }

  url(query = "EIO=4&transport=polling") {
    return `${this.base}${this.path}?${query}`;
  }

  sidUrl(sid, extra = "") {
    return this.url(`EIO=4&transport=polling&sid=${encodeURIComponent(sid)}${extra}`);
  }

  // A raw request: {status, body, headers, elapsed}. `body` is the response text.
  async request(url, init = {}) {
    const started = Date.now();
    const res = await fetch(url, init);
    const body = await res.text();
    return { status: res.status, body, headers: res.headers, elapsed: Date.now() - started };
  }

  // Opens a session: {sid, open (parsed handshake), raw (the response)}.
  async handshake(init = {}) {
    const raw = await this.request(this.url(), init);
    if (raw.status !== 200 || !raw.body.startsWith("0")) {
      throw new Error(`handshake failed: ${raw.status} ${raw.body}`);
    }
    const open = JSON.parse(raw.body.slice(1));
    return { sid: open.sid, open, raw };
  }

  poll(sid, init = {}, extra = "") {
    return this.request(this.sidUrl(sid, extra), init);
  }

  post(sid, body, init = {}) {
    return this.request(this.sidUrl(sid), { method: "POST", body, ...init });
  }
}

// Splits a polling payload into its packets.
export const packets = (body) => (body === "" ? [] : body.split(RS));

// ---------------------------------------------------------------------------------
// WebSocket

// One WebSocket with every message buffered, so a test can await them in order.
// With autoPong, Engine.IO pings ("2") are answered with "3" and not queued.
export class WsPeer {
  static async connect(url, options = {}) {
    const { WebSocket } = await loadWs();
    return new WsPeer(WebSocket, url, options);
  }

  constructor(WebSocket, url, { autoPong = false, headers } = {}) {
    this.url = url;
    this.autoPong = autoPong;
    this.pings = 0;
    this.queue = [];
    this.waiters = [];
    this.openedAt = null;
    this.rejected = null; // {status, headers, body} when the upgrade was refused
    this.error = null;
    this.ws = new WebSocket(url, { perMessageDeflate: false, headers });
    this.createdAt = Date.now();

    let resolveOpen, rejectOpen, resolveClosed;
    this.opened = new Promise((res, rej) => {
      resolveOpen = res;
      rejectOpen = rej;
    });
    this.opened.catch(() => {});
    this.closed = new Promise((res) => {
      resolveClosed = res;
    });
    let settled = false;
    const finish = (info) => {
      if (settled) return;
      settled = true;
      this.closeInfo = { ...info, at: Date.now() };
      rejectOpen(new Error(`WebSocket closed before opening: ${JSON.stringify(this.closeInfo)}`));
      resolveClosed(this.closeInfo);
      for (const w of this.waiters.splice(0)) w.reject(new Error(`WebSocket closed: ${JSON.stringify(this.closeInfo)}`));
    };

    this.ws.on("open", () => {
      this.openedAt = Date.now();
      resolveOpen();
    });
    this.ws.on("message", (data, isBinary) => {
      const msg = isBinary ? { binary: true, data: Buffer.from(data) } : { binary: false, data: data.toString("utf8") };
      if (this.autoPong && !msg.binary && msg.data === "2") {
        this.pings++;
        this.ws.send("3");
        return;
      }
      const w = this.waiters.shift();
      if (w) w.resolve(msg);
      else this.queue.push(msg);
    });
    this.ws.on("unexpected-response", (req, res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (body += d));
      const done = () => {
        this.rejected = { status: res.statusCode, headers: res.headers, body };
        finish({ code: "http", status: res.statusCode });
        req.destroy();
      };
      res.on("end", done);
      res.on("error", done);
      res.on("close", done);
    });
    this.ws.on("error", (e) => {
      this.error = e;
    });
    this.ws.on("close", (code, reason) => finish({ code, reason: reason.toString() }));
  }

  // The next message ({binary, data}), or a rejection after `ms` or on close.
  next(ms = 3000) {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    if (this.closeInfo) return Promise.reject(new Error(`WebSocket closed: ${JSON.stringify(this.closeInfo)}`));
    let waiter;
    const p = new Promise((resolve, reject) => {
      waiter = { resolve, reject };
      this.waiters.push(waiter);
    });
    return withTimeout(p, ms, `a message on ${this.url}`).catch((e) => {
      const i = this.waiters.indexOf(waiter);
      if (i >= 0) this.waiters.splice(i, 1);
      throw e;
    });
  }

  // The next text message's data (fails on binary).
  async nextText(ms = 3000) {
    const m = await this.next(ms);
    if (m.binary) throw new Error(`expected a text message, got binary ${m.data.toString("hex")}`);
    return m.data;
  }

  // The next binary message's bytes (fails on text).
  async nextBinary(ms = 3000) {
    const m = await this.next(ms);
    if (!m.binary) throw new Error(`expected a binary message, got text ${JSON.stringify(m.data)}`);
    return m.data;
  }

  // Resolves true when nothing arrived within `ms` (messages are left queued).
  async quietFor(ms) {
    const before = this.queue.length;
    await new Promise((r) => setTimeout(r, ms));
    return this.queue.length === before && !this.closeInfo;
  }

  send(data) {
    this.ws.send(data);
  }

  waitClose(ms = 3000) {
    return withTimeout(this.closed, ms, `the server to close ${this.url}`);
  }

  isOpen() {
    return this.ws.readyState === 1;
  }

  close() {
    try {
      this.ws.close();
    } catch {
      // not open yet
    }
  }

  terminate() {
    try {
      this.ws.terminate();
    } catch {
      // already gone
    }
  }
}

// A Socket.IO connection over a raw WebSocket: Engine.IO open, CONNECT to `nsp` (with
// `auth` if given), the CONNECT ack and sio-echo's "auth" event. Pings are answered.
export async function sioConnect(wsUrl, { nsp = "/", auth, autoPong = true } = {}) {
  const peer = await WsPeer.connect(`${wsUrl}/socket.io/?EIO=4&transport=websocket`, { autoPong });
  const open = await peer.nextText();
  if (!open.startsWith("0")) throw new Error(`expected the open packet, got ${open}`);
  const prefix = nsp === "/" ? "40" : `40${nsp},`;
  peer.send(auth === undefined ? prefix : prefix + JSON.stringify(auth));
  const ack = await peer.nextText();
  if (!ack.startsWith(prefix)) throw new Error(`expected a CONNECT ack for ${nsp}, got ${ack}`);
  peer.sid = JSON.parse(ack.slice(prefix.length)).sid;
  peer.authPacket = await peer.nextText();
  return peer;
}

// ---------------------------------------------------------------------------------
// Raw TCP

// Connects to 127.0.0.1:port. `received` accumulates everything the server sends,
// `closed` resolves with {at, hadError} when the server (or an error) ends it.
export function rawTcp(port) {
  const sock = net.connect({ host: "127.0.0.1", port });
  const conn = { sock, received: Buffer.alloc(0), connectedAt: null, closedAt: null };
  conn.connected = new Promise((resolve, reject) => {
    sock.once("connect", () => {
      conn.connectedAt = Date.now();
      resolve();
    });
    sock.once("error", reject);
  });
  conn.connected.catch(() => {});
  conn.closed = new Promise((resolve) => {
    sock.on("data", (d) => {
      conn.received = Buffer.concat([conn.received, d]);
    });
    sock.on("error", () => {});
    sock.on("close", (hadError) => {
      conn.closedAt = Date.now();
      resolve({ at: conn.closedAt, hadError });
    });
  });
  return conn;
}

// Sends `bytes` on a new TCP connection and collects the reply until the server closes
// it or `ms` passes: {text, closed}.
export async function rawExchange(port, bytes, ms = 3000) {
  const conn = rawTcp(port);
  await conn.connected;
  conn.sock.write(bytes);
  const closed = await withTimeout(conn.closed, ms, "the server to answer and close").then(
    () => true,
    () => false,
  );
  conn.sock.destroy();
  return { text: conn.received.toString("latin1"), closed };
}
