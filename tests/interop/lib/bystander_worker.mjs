// A socket.io-client connection in its own worker thread (own event loop), so that its
// heartbeat answers are not delayed by whatever load the test itself generates. The
// parent sends {id, cmd: "check"}; the worker answers {id, connected, sameSession,
// lostReason, echo}. {id, cmd: "probe-start"} starts timing an echo every 20 ms;
// {id, cmd: "probe-stop"} answers {id, samples, maxMs, p99Ms} (round-trip times).
import { parentPort, workerData } from "node:worker_threads";
import { io } from "socket.io-client";

const { url, transports } = workerData;
const socket = io(url, { forceNew: true, transports, reconnection: false });
let firstId = null;
let lostReason = null;

socket.once("connect", () => {
  firstId = socket.id;
  parentPort.postMessage({ ready: true, transport: socket.io.engine.transport.name });
});
socket.once("connect_error", (err) => parentPort.postMessage({ ready: false, error: err.message }));
socket.on("disconnect", (reason, details) => {
  const why = details?.description?.message ?? details?.description ?? "";
  lostReason = `${reason}${why ? ` (${why})` : ""} at ${new Date().toISOString()}`;
});

let probe = null;
function startProbe() {
  const p = { rtts: [], timer: null, inflight: false };
  p.timer = setInterval(() => {
    if (!socket.connected || p.inflight) return;
    p.inflight = true;
    const t0 = performance.now();
    socket.emit("message-with-ack", "probe", () => {
      p.inflight = false;
      p.rtts.push(performance.now() - t0);
    });
  }, 20);
  probe = p;
}
function stopProbe() {
  clearInterval(probe.timer);
  const sorted = [...probe.rtts].sort((a, b) => a - b);
  const result = {
    samples: sorted.length,
    maxMs: Math.round(sorted.at(-1) ?? -1),
    p99Ms: Math.round(sorted[Math.floor(sorted.length * 0.99)] ?? -1),
    // a reply still missing counts as the time since it was sent
    stuck: probe.inflight,
  };
  probe = null;
  return result;
}

parentPort.on("message", (msg) => {
  if (msg.cmd === "probe-start") {
    startProbe();
    return parentPort.postMessage({ id: msg.id });
  }
  if (msg.cmd === "probe-stop") return parentPort.postMessage({ id: msg.id, ...stopProbe() });
  if (msg.cmd === "close") {
    socket.disconnect();
    parentPort.close();
    return;
  }
  if (msg.cmd !== "check") return;
  const reply = (extra) =>
    parentPort.postMessage({
      id: msg.id,
      connected: socket.connected,
      sameSession: socket.id === firstId,
      transport: socket.io.engine?.transport?.name,
      lostReason,
      ...extra,
    });
  if (!socket.connected) return reply({ echo: null });
  const timer = setTimeout(() => reply({ echo: "timeout" }), 3000);
  socket.once("message-back", (text, bin) => {
    clearTimeout(timer);
    reply({ echo: { text, bin: [...bin] } });
  });
  socket.emit("message", "still-alive", Buffer.from([1]));
});
