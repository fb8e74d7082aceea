// Shared harness of the integration tests: starts the REAL ferry-broker on 127.0.0.1
// (port 0, the port is read from its one stdout line), each in its own temporary data
// directory, and always stops it, also when a test fails. Also: the official
// socket.io-client (pinned in tests/interop/package.json, loaded from
// tests/interop/node_modules), HTTP API helpers and small timing helpers.
//
// Environment:
//   FERRY_BROKER      path of <builddir>/broker/ferry-broker (meson sets it)
//   FERRY_KEEP_DATA   1 = keep the temporary data directories (printed on exit)
//   FERRY_SHOW_LOGS   1 = print every broker's log when its test ends, pass or fail
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

export const INTEGRATION_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const INTEROP_DIR = path.resolve(INTEGRATION_DIR, "..", "interop");

// ---------------------------------------------------------------------------------
// socket.io-client: the copy pinned by tests/interop (same exact version for both
// suites). A missing node_modules FAILS the run with what to do, never skips.

let clientModule = null;
export function loadClient() {
  if (clientModule) return clientModule;
  const pkg = path.join(INTEROP_DIR, "node_modules", "socket.io-client", "package.json");
  if (!existsSync(pkg)) {
    const msg =
      `socket.io-client is not installed: ${pkg} is missing.\n` +
      `The integration tests use the socket.io-client pinned in tests/interop/package.json.\n` +
      `Run \`npm ci\` in ${INTEROP_DIR} once, then re-run \`meson test --suite integration\`.`;
    console.error(msg);
    throw new Error(msg);
  }
  const require = createRequire(path.join(INTEROP_DIR, "package.json"));
  clientModule = require("socket.io-client");
  return clientModule;
}

// ---------------------------------------------------------------------------------
// timing

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Polls `fn` (sync or async) until it returns a truthy value; returns that value.
export async function waitFor(fn, { timeout = 5000, interval = 20, what = "condition" } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}` + (last instanceof Error ? `: ${last.message}` : ""));
    }
    await sleep(interval);
  }
}

// ---------------------------------------------------------------------------------
// broker processes

const liveProcs = new Set();
const dataDirs = new Set();
process.on("exit", () => {
  for (const p of liveProcs) {
    try {
      process.kill(p.pid, "SIGCONT");
      p.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
  if (process.env.FERRY_KEEP_DATA === "1") {
    for (const d of dataDirs) console.error(`kept data dir ${d}`);
  } else {
    for (const d of dataDirs) rmSync(d, { recursive: true, force: true });
  }
});
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => process.exit(1));
}

function brokerBinary() {
  const bin = process.env.FERRY_BROKER;
  if (!bin) {
    throw new Error(
      "FERRY_BROKER is not set. Run through meson (meson test -C <builddir> --suite integration) " +
        "or set FERRY_BROKER=<builddir>/broker/ferry-broker",
    );
  }
  if (!existsSync(bin)) throw new Error(`FERRY_BROKER=${bin} does not exist; build it first (ninja -C <builddir> broker/ferry-broker)`);
  return bin;
}

export function makeTempDir(prefix = "ferry-it-") {
  const d = mkdtempSync(path.join(os.tmpdir(), prefix));
  dataDirs.add(d);
  return d;
}

// One broker "installation": a data directory (and optional TOML file) that survives
// restarts of the process. start() / stop() / kill() / restart() manage the process.
export class Broker {
  // opts: {toml: string, args: [...], dataDir, name, faults: bool, dynamic: bool, sync}
  constructor(opts = {}) {
    this.opts = opts;
    this.name = opts.name ?? "broker";
    this.dataDir = opts.dataDir ?? makeTempDir();
    this.configPath = null;
    if (opts.toml) {
      this.configPath = path.join(this.dataDir + ".toml");
      writeFileSync(this.configPath, opts.toml);
      dataDirs.add(this.configPath);
    }
    this.port = 0;
    this.proc = null;
    this.logText = ""; // stderr of every run, with a marker line per start
    this.runs = 0;
    this.lastExit = null;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  args(port) {
    const a = ["--listen", `127.0.0.1:${port}`, "--data-dir", this.dataDir, "--log-level", this.opts.logLevel ?? "info"];
    if (this.configPath) a.push("--config", this.configPath);
    if (this.opts.dynamic) a.push("--dynamic-namespaces");
    if (this.opts.faults) a.push("--debug-storage-faults");
    if (this.opts.sync) a.push("--sync", this.opts.sync);
    return a.concat(this.opts.args ?? []);
  }

  // Starts the process; `port` 0 = a free port. Resolves with the port it listens on.
  async start(port = 0) {
    if (this.proc) throw new Error(`${this.name} is already running`);
    const bin = brokerBinary();
    this.runs += 1;
    this.logText += `----- ${this.name} run ${this.runs}: ${bin} ${this.args(port).join(" ")}\n`;
    const proc = spawn(bin, this.args(port), { stdio: ["ignore", "pipe", "pipe"] });
    this.proc = proc;
    liveProcs.add(proc);
    let stdout = "";
    proc.stderr.setEncoding("utf8");
    proc.stderr.on("data", (d) => {
      this.logText += d;
      if (this.logText.length > 4_000_000) this.logText = this.logText.slice(-2_000_000);
    });
    proc.exited = new Promise((resolve) => {
      proc.on("exit", (code, signal) => {
        liveProcs.delete(proc);
        resolve({ code, signal });
      });
    });
    proc.stdout.setEncoding("utf8");
    try {
      this.port = await withTimeout(
        new Promise((resolve, reject) => {
          proc.stdout.on("data", (d) => {
            stdout += d;
            const m = /^ferry-broker listening on 127\.0\.0\.1:(\d+)$/m.exec(stdout);
            if (m) resolve(Number(m[1]));
          });
          proc.exited.then((info) =>
            reject(new Error(`${this.name} exited before listening (${JSON.stringify(info)}); log:\n${this.logTail(30)}`)),
          );
          proc.on("error", reject);
        }),
        15000,
        `${this.name} to print "ferry-broker listening on 127.0.0.1:<port>"`,
      );
    } catch (e) {
      if (this.proc === proc) {
        proc.kill("SIGKILL");
        await proc.exited;
        this.proc = null;
      }
      throw e;
    }
    proc.stdoutText = () => stdout;
    return this.port;
  }

  get pid() {
    return this.proc?.pid;
  }

  get running() {
    return this.proc !== null;
  }

  stdout() {
    return this.proc?.stdoutText?.() ?? "";
  }

  async waitExit(ms) {
    const proc = this.proc;
    if (!proc) return this.lastExit;
    const info = await withTimeout(proc.exited, ms, `${this.name} to exit`);
    this.proc = null;
    this.lastExit = info;
    return info;
  }

  // SIGTERM (graceful drain); resolves with {code, signal}. SIGKILLs after `ms`.
  async stop(ms = 10000) {
    const proc = this.proc;
    if (!proc) return this.lastExit;
    try {
      process.kill(proc.pid, "SIGCONT"); // in case a test left it stopped
    } catch {
      // gone
    }
    proc.kill("SIGTERM");
    try {
      return await this.waitExit(ms);
    } catch (e) {
      proc.kill("SIGKILL");
      await this.waitExit(5000);
      throw new Error(`${this.name} did not exit within ${ms} ms of SIGTERM (killed)`);
    }
  }

  // SIGKILL: a crash.
  async kill() {
    const proc = this.proc;
    if (!proc) return this.lastExit;
    proc.kill("SIGKILL");
    return this.waitExit(5000);
  }

  pause() {
    process.kill(this.proc.pid, "SIGSTOP");
  }

  resume() {
    process.kill(this.proc.pid, "SIGCONT");
  }

  // Starts again on the same data directory, on the same port if it can be bound
  // again (it normally can: the listener sets SO_REUSEADDR); otherwise on a new port.
  // Resolves with {port, samePort}.
  async restart() {
    const want = this.port;
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        await this.start(want);
        return { port: this.port, samePort: true };
      } catch (e) {
        if (!/exited before listening/.test(e.message)) throw e;
        await sleep(100);
      }
    }
    await this.start(0);
    return { port: this.port, samePort: false };
  }

  logTail(lines = 60) {
    const all = this.logText.split("\n");
    return all.slice(-lines).join("\n");
  }

  // ---- HTTP API (fetch) -------------------------------------------------------

  async http(method, urlPath, body, headers = {}) {
    const init = { method, headers: { ...headers } };
    if (body !== undefined) {
      init.body = typeof body === "string" ? body : JSON.stringify(body);
      if (!init.headers["content-type"]) init.headers["content-type"] = "application/json";
    }
    const res = await fetch(`${this.url}${urlPath}`, init);
    const text = await res.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {
      // not JSON (e.g. /metrics)
    }
    return { status: res.status, text, json };
  }

  // POST /v1/publish: {status, json}
  publishHttp(body, nsp = "/") {
    return this.http("POST", `/v1/publish?namespace=${encodeURIComponent(nsp)}`, body);
  }

  // One page of GET /v1/topics/<topic>/events.
  async eventsPage(topic, { nsp = "/", from = "earliest", limit = 1000 } = {}) {
    const q = `namespace=${encodeURIComponent(nsp)}&from=${encodeURIComponent(from)}&limit=${limit}`;
    const r = await this.http("GET", `/v1/topics/${encodeURIComponent(topic)}/events?${q}`);
    if (r.status !== 200 || !r.json?.ok) throw new Error(`GET events of ${topic} failed: ${r.status} ${r.text}`);
    return r.json;
  }

  // Every stored event of a topic, paging with `next`.
  async allEvents(topic, { nsp = "/", limit = 5000 } = {}) {
    const out = [];
    let from = "earliest";
    for (let pages = 0; pages < 10000; pages++) {
      const page = await this.eventsPage(topic, { nsp, from, limit });
      out.push(...page.events);
      if (page.events.length < limit) return out;
      from = page.next;
    }
    throw new Error("too many pages");
  }

  async topics(nsp = "/") {
    const r = await this.http("GET", `/v1/topics?namespace=${encodeURIComponent(nsp)}`);
    if (r.status !== 200 || !r.json?.ok) throw new Error(`GET /v1/topics failed: ${r.status} ${r.text}`);
    return r.json;
  }

  async metrics() {
    const r = await this.http("GET", "/metrics");
    const out = {};
    for (const line of r.text.split("\n")) {
      if (!line || line.startsWith("#")) continue;
      const sp = line.lastIndexOf(" ");
      out[line.slice(0, sp)] = Number(line.slice(sp + 1));
    }
    return out;
  }

  healthz() {
    return this.http("GET", "/healthz");
  }

  storageFault(kind) {
    return this.http("POST", "/v1/debug/storage-fault", kind, { "content-type": "text/plain" });
  }
}

// ---------------------------------------------------------------------------------
// per-test scope: everything created through it is torn down when the test ends, and
// the broker logs are printed when it fails.

export class Scope {
  constructor(name) {
    this.name = name;
    this.brokers = [];
    this.sockets = [];
    this.cleanups = [];
  }

  async broker(opts = {}) {
    const b = new Broker({ name: `broker${this.brokers.length ? this.brokers.length + 1 : ""}`, ...opts });
    this.brokers.push(b);
    await b.start(opts.port ?? 0);
    return b;
  }

  // A socket.io-client socket (a new Manager each time: forceNew). Reconnects fast.
  // Does not wait for the connection: see connected().
  client(url, opts = {}) {
    const { io } = loadClient();
    const s = io(url, {
      forceNew: true,
      reconnectionDelay: 100,
      reconnectionDelayMax: 400,
      randomizationFactor: 0,
      timeout: 5000,
      ...opts,
    });
    this.sockets.push(s);
    return s;
  }

  // client() + waits for "connect".
  async connect(url, opts = {}) {
    const s = this.client(url, opts);
    await connected(s);
    return s;
  }

  defer(fn) {
    this.cleanups.push(fn);
  }

  async close() {
    for (const s of this.sockets) {
      try {
        s.io.reconnection(false);
        s.disconnect();
        s.io.engine?.close();
      } catch {
        // ignore
      }
    }
    for (const fn of this.cleanups.reverse()) {
      try {
        await fn();
      } catch {
        // ignore
      }
    }
    for (const b of this.brokers) {
      try {
        await b.stop(5000);
      } catch {
        await b.kill().catch(() => {});
      }
    }
  }

  dumpLogs(reason) {
    for (const b of this.brokers) {
      console.error(`\n===== ${this.name}: log of ${b.name} (port ${b.port}, data ${b.dataDir})${reason ? ` — ${reason}` : ""} =====`);
      console.error(b.logTail(80));
    }
  }
}

// test() with a Scope that is always closed; on failure the broker logs are printed.
export function brokerTest(name, opts, fn) {
  if (typeof opts === "function") {
    fn = opts;
    opts = {};
  }
  test(name, { timeout: 120000, ...opts }, async (t) => {
    const scope = new Scope(name);
    let failed = false;
    try {
      await fn(scope, t);
    } catch (e) {
      failed = true;
      scope.dumpLogs("test failed");
      throw e;
    } finally {
      if (!failed && process.env.FERRY_SHOW_LOGS === "1") scope.dumpLogs();
      await scope.close();
    }
  });
}

// ---------------------------------------------------------------------------------
// socket helpers

export function connected(socket, ms = 5000) {
  if (socket.connected) return Promise.resolve(socket);
  return withTimeout(
    new Promise((resolve, reject) => {
      const onConnect = () => {
        socket.off("connect_error", onError);
        resolve(socket);
      };
      const onError = (err) => {
        // a refused namespace (CONNECT_ERROR) destroys the socket: no retry will come
        if (!socket.active) {
          socket.off("connect", onConnect);
          reject(new Error(`connect refused: ${err.message}`));
        }
      };
      socket.once("connect", onConnect);
      socket.on("connect_error", onError);
    }),
    ms,
    "socket connect",
  );
}

export function nextEvent(emitter, event, ms = 5000) {
  let handler;
  const p = new Promise((resolve) => {
    handler = (...args) => resolve(args);
    emitter.once(event, handler);
  });
  return withTimeout(p, ms, `event "${event}"`).finally(() => emitter.off(event, handler));
}

// Emits with an ack and a deadline; resolves with the first ack argument.
export function call(socket, event, payload, ms = 5000) {
  return socket.timeout(ms).emitWithAck(event, payload);
}

// Records deliveries on a socket (every event but the broker's $offset/$gap notices).
// Each record: {event, data, meta, offset, ack, args}; `offset` is the trailing string
// argument when there is one.
export class Recorder {
  constructor(socket, { autoAck = false } = {}) {
    this.socket = socket;
    this.events = [];
    this.notices = []; // [name, ...args] of $offset / $gap
    this.waiters = [];
    this.autoAck = autoAck;
    socket.onAny((event, ...args) => {
      if (event.startsWith("$")) {
        this.notices.push([event, ...args]);
        return;
      }
      let ack = null;
      if (typeof args[args.length - 1] === "function") ack = args.pop();
      const rec = {
        event,
        data: args[0],
        meta: args[1],
        offset: typeof args[2] === "string" ? args[2] : undefined,
        ack,
        args,
        at: Date.now(),
      };
      this.events.push(rec);
      if (ack && this.autoAck) ack();
      for (const w of [...this.waiters]) w();
    });
  }

  forTopic(topic) {
    return this.events.filter((e) => e.meta?.topic === topic);
  }

  ids(topic) {
    return (topic ? this.forTopic(topic) : this.events).map((e) => e.meta?.id);
  }

  offsets(topic) {
    return (topic ? this.forTopic(topic) : this.events).map((e) => e.offset);
  }

  // Waits until predicate(this) holds.
  until(pred, ms = 5000, what = "deliveries") {
    if (pred(this)) return Promise.resolve();
    let w;
    return withTimeout(
      new Promise((resolve) => {
        w = () => {
          if (pred(this)) resolve();
        };
        this.waiters.push(w);
      }),
      ms,
      what,
    ).finally(() => {
      this.waiters = this.waiters.filter((x) => x !== w);
    });
  }

  count(n, ms = 5000) {
    return this.until((r) => r.events.length >= n, ms, `${n} deliveries (have ${this.events.length})`);
  }
}

// ---------------------------------------------------------------------------------
// offsets: "<epoch:8 hex>-<seq:16 hex>"

export function parseOffset(off) {
  const m = /^([0-9a-f]{8})-([0-9a-f]{16})$/.exec(off);
  if (!m) throw new Error(`not an offset: ${JSON.stringify(off)}`);
  return { epoch: m[1], seq: BigInt("0x" + m[2]) };
}

export function formatOffset(epoch, seq) {
  return `${epoch}-${BigInt(seq).toString(16).padStart(16, "0")}`;
}

export function assertStrictlyIncreasing(assert, offsets, what = "offsets") {
  for (let i = 1; i < offsets.length; i++) {
    if (!(offsets[i - 1] < offsets[i])) {
      assert.fail(`${what} not strictly increasing at index ${i}: ${offsets[i - 1]} then ${offsets[i]}`);
    }
  }
}

// Duplicates in a list: [[value, count], ...]
export function duplicates(list) {
  const seen = new Map();
  for (const x of list) seen.set(x, (seen.get(x) ?? 0) + 1);
  return [...seen].filter(([, n]) => n > 1);
}
