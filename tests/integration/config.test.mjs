// Broker configuration: a bad TOML file is a start-up error that names the file, the key
// and the reason (exit 2, nothing served), and [storage] writer_thread = "auto" resolves
// to commits on the io thread only when sync = "none" and the process has one CPU.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import { makeTempDir, withTimeout } from "./lib/broker.mjs";

const BROKER = process.env.FERRY_BROKER;

function writeToml(text) {
  const dir = makeTempDir();
  const file = path.join(dir, "ferry.toml");
  writeFileSync(file, text);
  return { dir, file };
}

// Runs the broker to completion (it must refuse to start) and returns {status, stderr}.
function refused(toml) {
  const { dir, file } = writeToml(toml);
  const r = spawnSync(BROKER, ["--config", file, "--data-dir", path.join(dir, "data"), "--listen", "127.0.0.1:0"], {
    encoding: "utf8",
    timeout: 10000,
  });
  return { status: r.status, stderr: r.stderr, file };
}

// Starts the broker (optionally under `taskset -c 0`), returns its start-up line, stops it.
async function startupLine(toml, { oneCpu }) {
  const { dir, file } = writeToml(toml);
  const args = ["--config", file, "--data-dir", path.join(dir, "data"), "--listen", "127.0.0.1:0"];
  const proc = oneCpu ? spawn("taskset", ["-c", "0", BROKER, ...args]) : spawn(BROKER, args);
  let stderr = "";
  proc.stderr.setEncoding("utf8");
  const exited = new Promise((resolve) => proc.on("exit", (code, signal) => resolve({ code, signal })));
  try {
    return await withTimeout(
      new Promise((resolve, reject) => {
        proc.stderr.on("data", (d) => {
          stderr += d;
          const m = /ferry-broker \S+ started: .*$/m.exec(stderr);
          if (m) resolve(m[0]);
        });
        exited.then((info) => reject(new Error(`broker exited before starting: ${JSON.stringify(info)}\n${stderr}`)));
        proc.on("error", reject);
      }),
      10000,
      "the start-up log line",
    );
  } finally {
    proc.kill("SIGTERM");
    assert.deepEqual(await exited, { code: 0, signal: null });
  }
}

describe("configuration file errors", () => {
  const cases = [
    ['[storage]\nwriter_thread = "maybe"\n', /storage\.writer_thread: expected auto, on or off/],
    ['[storage]\nsync = "fast"\n', /storage\.sync: expected none, batch or always/],
    ["[server]\nno_such_key = 1\n", /server\.no_such_key: unknown key/],
    ['[server]\nmax_payload = "big"\n', /server\.max_payload: expected a non-negative integer/],
    ["[server\nx = 1\n", /:1:\d+: .*expected ']'/],
  ];
  for (const [toml, reason] of cases) {
    test(`refused with exit 2 and the reason: ${JSON.stringify(toml)}`, () => {
      const r = refused(toml);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, reason);
      assert.ok(r.stderr.includes(r.file), `names the file: ${r.stderr}`);
    });
  }
});

describe("storage.writer_thread", () => {
  test('"auto" commits on the io thread under one CPU with sync = "none"', async () => {
    assert.match(await startupLine('[storage]\nsync = "none"\n', { oneCpu: true }), / writer_thread=off /);
  });
  test('"auto" keeps the writer thread with sync = "batch" (an fsync must not stall the io thread)', async () => {
    assert.match(await startupLine('[storage]\nsync = "batch"\n', { oneCpu: true }), / writer_thread=on /);
  });
  test('"auto" keeps the writer thread when the process has more than one CPU', async () => {
    const expected = os.availableParallelism() >= 2 ? "on" : "off"; // CI has 2 CPUs
    assert.match(await startupLine("", { oneCpu: false }), new RegExp(` writer_thread=${expected} `));
  });
  test('"on" and "off" are taken as given', async () => {
    assert.match(await startupLine('[storage]\nwriter_thread = "on"\n', { oneCpu: true }), / writer_thread=on /);
    assert.match(await startupLine('[storage]\nwriter_thread = "off"\n', { oneCpu: false }), / writer_thread=off /);
  });
});
