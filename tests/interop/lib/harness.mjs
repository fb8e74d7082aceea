// Test harness shared by the interop tests: dependency check, server processes, timing
// helpers. Servers are always bound to 127.0.0.1 on a port the kernel picks.
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const INTEROP_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

// The packages of package.json. A missing node_modules must fail the run with a message
// that says what to do, never skip.
const REQUIRED_PACKAGES = ["socket.io-client", "socket.io", "ws"];

export function checkNodeModules() {
  const missing = REQUIRED_PACKAGES.filter(
    (p) => !existsSync(path.join(INTEROP_DIR, "node_modules", p, "package.json")),
  );
  if (missing.length) {
    const msg =
      `tests/interop/node_modules is missing or incomplete (no ${missing.join(", ")}).\n` +
      `Run \`npm ci\` in ${INTEROP_DIR} once, then re-run the interop suite.`;
    console.error(msg);
    throw new Error(msg);
  }
}

// Imported lazily so that a missing node_modules produces the message above instead of
// ERR_MODULE_NOT_FOUND.
export async function loadClient() {
  checkNodeModules();
  return import("socket.io-client");
}

export async function loadWs() {
  checkNodeModules();
  return import("ws");
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Resolves with `promise`, or rejects after `ms` with an error naming `what`.
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// The first `event` from an EventEmitter-like object (on/off), with a deadline.
export function nextEvent(emitter, event, ms = 3000) {
  let handler;
  const p = new Promise((resolve) => {
    handler = (...args) => resolve(args);
    emitter.once ? emitter.once(event, handler) : emitter.on(event, handler);
  });
  return withTimeout(p, ms, `event "${event}"`).finally(() => emitter.off?.(event, handler));
}

// ---------------------------------------------------------------------------------
// Server processes

const live = new Set();
function killAll() {
  for (const proc of live) {
    try {
      proc.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
}
// Backstops: the test files stop their servers in after() hooks; these cover crashes of
// the test process itself.
process.on("exit", killAll);
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    killAll();
    process.exit(1);
  });
}

const BINARIES = {
  SIO_ECHO: "tools/sio-echo",
  SIO_INTEROP_SERVER: "tools/sio-interop-server",
};

// Starts the binary named by the environment variable `envVar` (SIO_ECHO or
// SIO_INTEROP_SERVER, set by meson) with --host 127.0.0.1 --port 0, waits for its
// "listening on <host>:<port>" line and returns a handle.
export async function startServer(envVar, extraArgs = [], extraEnv = {}) {
  const bin = process.env[envVar];
  if (!bin) {
    throw new Error(
      `${envVar} is not set. Run the interop suite through meson (meson test -C <builddir> --suite interop) ` +
        `or set ${envVar}=<builddir>/${BINARIES[envVar] ?? "..."}`,
    );
  }
  if (!existsSync(bin)) throw new Error(`${envVar}=${bin} does not exist; build it first`);

  const proc = spawn(bin, ["--host", "127.0.0.1", "--port", "0", ...extraArgs], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...extraEnv },
  });
  live.add(proc);
  let stderr = "";
  proc.stderr.setEncoding("utf8");
  proc.stderr.on("data", (d) => {
    stderr += d;
    if (stderr.length > 200000) stderr = stderr.slice(-100000);
  });
  let exitInfo = null;
  const exited = new Promise((resolve) => {
    proc.on("exit", (code, signal) => {
      exitInfo = { code, signal };
      live.delete(proc);
      resolve(exitInfo);
    });
  });

  let stdout = "";
  proc.stdout.setEncoding("utf8");
  const port = await withTimeout(
    new Promise((resolve, reject) => {
      proc.stdout.on("data", (d) => {
        stdout += d;
        const m = /listening on [^\s]+:(\d+)\s*$/m.exec(stdout);
        if (m) resolve(Number(m[1]));
      });
      exited.then((info) => reject(new Error(`${bin} exited before listening (${JSON.stringify(info)}): ${stderr}`)));
      proc.on("error", reject);
    }),
    10000,
    `${bin} to print its port`,
  ).catch((e) => {
    proc.kill("SIGKILL");
    throw e;
  });

  return {
    bin,
    port,
    pid: proc.pid,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    exited,
    stderr: () => stderr,
    alive: () => exitInfo === null,
    exitInfo: () => exitInfo,
    // SIGTERM, then SIGKILL after 5 s. Resolves with {code, signal, crashed}: crashed is
    // true when the process had died before stop() (it must not) or did not exit 0 on
    // SIGTERM.
    async stop() {
      const diedEarly = exitInfo !== null;
      if (!diedEarly) proc.kill("SIGTERM");
      const info = await withTimeout(exited, 5000, `${bin} to exit on SIGTERM`).catch(async () => {
        proc.kill("SIGKILL");
        return { ...(await exited), killed: true };
      });
      return { ...info, diedEarly, crashed: diedEarly || info.code !== 0 || !!info.killed };
    },
  };
}

// Resident memory of a process in KiB (Linux): {rss: VmRSS now, hwm: VmHWM, the peak}.
export function memKiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (name) => {
    const m = new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, "m").exec(status);
    if (!m) throw new Error(`no ${name} in /proc/${pid}/status`);
    return Number(m[1]);
  };
  return { rss: field("VmRSS"), hwm: field("VmHWM") };
}

// Open file descriptors of a process (Linux).
export async function fdCount(pid) {
  return readdirSync(`/proc/${pid}/fd`).length;
}
