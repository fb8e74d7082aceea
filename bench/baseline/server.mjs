// The comparison baseline: the Node reference socket.io 4.8 server with connection state
// recovery on, implementing Ferry's subscribe/publish events in memory (no persistence).
//   node server.mjs --port 0      prints "baseline listening on 127.0.0.1:<port>"
import { createServer } from "node:http";
import { Server } from "socket.io";

const args = process.argv.slice(2);
const port = Number(args[args.indexOf("--port") + 1] ?? 0) || 0;

const http = createServer();
const io = new Server(http, {
  connectionStateRecovery: { maxDisconnectionDuration: 2 * 60 * 1000, skipMiddlewares: true },
  maxHttpBufferSize: 1e6,
});

let offset = 0;
const heads = new Map();

io.on("connection", (socket) => {
  socket.on("subscribe", (req, ack) => {
    if (!req || typeof req.topic !== "string") return ack?.({ ok: false, error: { code: "invalid_payload" } });
    socket.join(req.topic);
    ack?.({ ok: true, topic: req.topic, head: String(heads.get(req.topic) ?? 0), position: String(offset) });
  });
  socket.on("unsubscribe", (req, ack) => {
    socket.leave(req?.topic);
    ack?.({ ok: true });
  });
  socket.on("publish", (req, ack) => {
    const batch = Array.isArray(req) ? req : [req];
    const offsets = [];
    for (const ev of batch) {
      if (!ev || typeof ev.topic !== "string") return ack?.({ ok: false, error: { code: "invalid_topic" } });
      const off = ++offset;
      heads.set(ev.topic, off);
      io.to(ev.topic).emit(ev.event ?? "message", ev.data ?? null, { topic: ev.topic, id: ev.id ?? String(off), ts: Date.now() });
      offsets.push(String(off));
    }
    ack?.(Array.isArray(req) ? { ok: true, offsets } : { ok: true, offset: offsets[0], duplicate: false });
  });
});

http.listen(port, "127.0.0.1", () => {
  console.log(`baseline listening on 127.0.0.1:${http.address().port}`);
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => { io.close(); process.exit(0); });
