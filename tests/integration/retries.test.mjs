// The official client's `retries` + `ackTimeout` options against the broker's dedupe:
// acks are delayed (the broker is SIGSTOPped for 300-600 ms at a time) or lost (the
// transport is cut), so the client re-sends the same publish; every publish still
// resolves, and no id is stored twice.
import assert from "node:assert/strict";
import { describe } from "node:test";
import { brokerTest, duplicates, sleep, withTimeout } from "./lib/broker.mjs";

// Publishes events with ids through the client's retry queue for `ms`, in bursts of 5
// queued emits, and waits for every callback. Resolves with [{id, err, reply}].
async function publishFor(socket, prefix, ms) {
  const results = [];
  const until = Date.now() + ms;
  let k = 0;
  while (Date.now() < until) {
    const burst = [];
    for (let j = 0; j < 5; j++, k++) {
      const id = `${prefix}-${k}`;
      const data = { k };
      burst.push(
        new Promise((resolve) => {
          socket.emit("publish", { topic: "r", event: "e", data, id }, (err, reply) => resolve({ id, err, reply }));
        }),
      );
    }
    results.push(...(await burst.reduce(async (acc, p) => [...(await acc), await p], [])));
    await sleep(10);
  }
  return results;
}

function countOutgoingPublishes(socket) {
  const counter = { n: 0 };
  socket.onAnyOutgoing((event) => {
    if (event === "publish") counter.n++;
  });
  return counter;
}

async function checkLog(b, results) {
  const evs = await b.allEvents("r");
  assert.deepEqual(duplicates(evs.map((e) => e.id)), [], "no id is stored twice");
  const byId = new Map(evs.map((e) => [e.id, e]));
  for (const r of results) {
    assert.equal(r.err, null, `${r.id} resolved without error (${r.err?.message})`);
    assert.equal(r.reply?.ok, true, `${r.id}: ${JSON.stringify(r.reply)}`);
    assert.ok(byId.has(r.id), `${r.id} is stored`);
    assert.equal(byId.get(r.id).offset, r.reply.offset, `${r.id}: acked offset = stored offset`);
  }
  return evs;
}

describe("socket.io-client retries + ackTimeout", () => {
  brokerTest("slow acks (broker SIGSTOPped): every publish resolves and no id is stored twice", { timeout: 120000 }, async (sc) => {
    const b = await sc.broker();
    const s = await sc.connect(b.url, { retries: 3, ackTimeout: 200 });
    const sent = countOutgoingPublishes(s);
    let done = false;
    const pauser = (async () => {
      let pauses = 0;
      while (!done) {
        await sleep(150 + Math.floor(Math.random() * 150));
        if (done) break;
        b.pause();
        await sleep(300 + Math.floor(Math.random() * 300));
        b.resume();
        pauses++;
      }
      return pauses;
    })();
    const results = await withTimeout(publishFor(s, "slow", 4000), 90000, "every publish to resolve");
    done = true;
    const pauses = await pauser;
    const N = results.length;

    const evs = await checkLog(b, results);
    assert.equal(evs.length, N);
    const dupReplies = results.filter((r) => r.reply?.duplicate).length;
    const m = await b.metrics();
    console.error(`# slow acks: ${pauses} pauses, ${sent.n} publish packets for ${N} events, ${dupReplies} acks said duplicate, broker counted ${m.ferry_duplicates_total} duplicates`);
    assert.ok(sent.n > N, `the client re-sent publishes (${sent.n} packets for ${N} events)`);
    assert.ok(m.ferry_duplicates_total > 0, "the broker deduplicated re-sent publishes");
    assert.equal(s.connected, true);
  });

  brokerTest("lost acks (transport cut mid-flight): every publish resolves after the reconnect, no id stored twice", { timeout: 120000 }, async (sc) => {
    const b = await sc.broker();
    const s = await sc.connect(b.url, { retries: 3, ackTimeout: 200 });
    const sent = countOutgoingPublishes(s);
    let reconnects = 0;
    s.on("connect", () => reconnects++);

    let done = false;
    const cutter = (async () => {
      let cuts = 0;
      while (!done) {
        await sleep(100 + Math.floor(Math.random() * 100));
        if (done || !s.connected) continue;
        // drop the Engine.IO transport: the client reconnects by itself and re-sends the
        // publish that waits for its ack
        s.io.engine.close();
        cuts++;
      }
      return cuts;
    })();
    const results = await withTimeout(publishFor(s, "cut", 3000), 90000, "every publish to resolve");
    done = true;
    const cuts = await cutter;
    const N = results.length;

    const evs = await checkLog(b, results);
    assert.equal(evs.length, N);
    console.error(`# lost acks: ${cuts} transport cuts, ${reconnects} reconnects, ${sent.n} publish packets for ${N} events`);
    assert.ok(cuts >= 3, `the transport was cut (${cuts})`);
    assert.ok(sent.n > N, "publishes were re-sent");
  });
});
