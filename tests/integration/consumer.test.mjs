// Named durable consumers (auth.consumer): the position is stored per (namespace,
// consumer, topic), so a NEW client instance — a new process, a new socket, no pid —
// resumes right after what the last instance of that consumer got (auto mode) or
// acknowledged (ack mode), also after a broker crash; other consumer names are
// independent.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { describe } from "node:test";
import { brokerTest, INTEGRATION_DIR, withTimeout } from "./lib/broker.mjs";

const CHILD = path.join(INTEGRATION_DIR, "lib", "consumer_child.mjs");

// Runs one consumer process; resolves with {subscribed, events, exit, connect}.
async function runConsumer(opts) {
  const child = spawn(process.execPath, [CHILD, JSON.stringify(opts)], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
  const code = await withTimeout(
    new Promise((resolve) => child.on("exit", (c) => resolve(c))),
    (opts.timeout ?? 5000) + 5000,
    "consumer process to exit",
  ).catch((e) => {
    child.kill("SIGKILL");
    throw e;
  });
  const lines = stdout
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  const res = {
    code,
    stderr,
    connect: lines.find((l) => l.type === "connect"),
    subscribed: lines.find((l) => l.type === "subscribed")?.reply,
    events: lines.filter((l) => l.type === "event"),
    notices: lines.filter((l) => l.type === "notice"),
    exit: lines.find((l) => l.type === "exit"),
  };
  assert.equal(code, 0, `consumer process failed: ${stdout}\n${stderr}`);
  assert.ok(res.connect, `consumer connected: ${stdout}`);
  assert.equal(res.connect.recovered, false, "a new instance has no session to recover");
  assert.equal(res.subscribed?.ok, true, JSON.stringify(res.subscribed));
  return res;
}

async function publishMany(b, topic, prefix, n) {
  const out = [];
  for (let k = 0; k < n; k++) {
    const r = await b.publishHttp({ topic, event: "bill", data: { k }, id: `${prefix}-${k}` });
    assert.equal(r.status, 200, r.text);
    out.push(r.json.offset);
  }
  return out;
}

describe("named consumers", () => {
  brokerTest("a new client instance with the same auth.consumer resumes from the stored position (auto mode, also after a crash)", async (sc) => {
    const b = await sc.broker();
    const first = await publishMany(b, "inv", "a", 3);

    // Instance 1 reads everything from earliest and exits without a clean disconnect.
    const one = await runConsumer({ url: b.url, consumer: "billing", topic: "inv", from: "earliest", expect: 3, abrupt: true });
    assert.deepEqual(one.events.map((e) => e.offset), first);

    const second = await publishMany(b, "inv", "b", 2);
    // Instance 2 (new process, no pid) asks for "earliest" again: the stored position wins.
    const two = await runConsumer({ url: b.url, consumer: "billing", topic: "inv", from: "earliest", expect: 2, linger: 500 });
    assert.equal(two.subscribed.position, first[2], "subscribe reports the stored position");
    assert.deepEqual(two.events.map((e) => e.offset), second, "resumes right after the last event instance 1 got");
    assert.deepEqual(two.events.map((e) => e.meta.id), ["b-0", "b-1"]);

    // Another consumer name is independent.
    const other = await runConsumer({ url: b.url, consumer: "audit", topic: "inv", from: "earliest", expect: 5 });
    assert.deepEqual(other.events.map((e) => e.offset), [...first, ...second]);

    // The position survives a broker crash.
    const third = await publishMany(b, "inv", "c", 2);
    await b.kill();
    await b.restart();
    const three = await runConsumer({ url: b.url, consumer: "billing", topic: "inv", expect: 2, linger: 500 });
    assert.deepEqual(three.events.map((e) => e.offset), third, "after the crash: exactly the events after the stored position");

    // Caught up: a fresh instance gets nothing old.
    const four = await runConsumer({ url: b.url, consumer: "billing", topic: "inv", from: "earliest", expect: 0, linger: 500 });
    assert.deepEqual(four.events, []);
    assert.equal(four.subscribed.position, third[1]);
  });

  brokerTest("ack mode: a new instance resumes after the last acknowledged event, not the last delivered one", async (sc) => {
    const b = await sc.broker();
    const offs = await publishMany(b, "jobs", "j", 4);
    // Instance 1 gets all four but acknowledges only the first two.
    const one = await runConsumer({ url: b.url, consumer: "worker", topic: "jobs", from: "earliest", mode: "ack", expect: 4, ackFirst: 2, linger: 300 });
    assert.deepEqual(one.events.map((e) => e.offset), offs);
    assert.equal(one.exit.acked, 2);
    const more = await publishMany(b, "jobs", "k", 1);
    // Instance 2 gets the unacknowledged two and the new one.
    const two = await runConsumer({ url: b.url, consumer: "worker", topic: "jobs", mode: "ack", expect: 3, linger: 300 });
    assert.equal(two.subscribed.position, offs[1], "position = last acknowledged");
    assert.deepEqual(two.events.map((e) => e.offset), [offs[2], offs[3], more[0]]);
    const three = await runConsumer({ url: b.url, consumer: "worker", topic: "jobs", mode: "ack", expect: 0, linger: 500 });
    assert.deepEqual(three.events, [], "everything was acknowledged");
  });
});
