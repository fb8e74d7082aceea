// sio_node_server.mjs - the reference Node socket.io 4.8 server the C++ client's interop
// test talks to (tests/client/test_interop.cc). Uses the packages pinned in
// tests/interop/package.json; INTEROP_DIR points at that folder.
//
// Listens on 127.0.0.1 with kernel-chosen ports and prints one line
//   listening sio=<port> raw=<port> silent=<port>
//   sio    : socket.io with connection-state recovery, pingInterval 200 ms / pingTimeout 300 ms
//            "/"      echo, echo-ack, join/leave/to-room, binary echo, server-initiated acks,
//                     drop-transport (for recovery), never-ack ("publish" is ignored)
//            "/admin" auth middleware: auth.token must be "secret" (else CONNECT_ERROR)
//   raw    : a bare WebSocket speaking Engine.IO that answers CONNECT, then sends a
//            malformed Socket.IO packet (the client must close with a protocol error)
//   silent : a bare WebSocket speaking Engine.IO with pingInterval 300 / pingTimeout 200
//            that never pings (the client must detect a dead server)
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import http from "node:http";
import path from "node:path";

const interopDir = process.env.INTEROP_DIR;
if (!interopDir || !existsSync(path.join(interopDir, "node_modules", "socket.io", "package.json"))) {
  console.error(
    `sio_node_server: socket.io is not installed under ${interopDir}/node_modules; run \`npm ci\` in tests/interop`,
  );
  process.exit(3);
}
const require = createRequire(path.join(interopDir, "package.json"));
const { Server } = require("socket.io");
const { WebSocketServer } = require("ws");

function listen(server) {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server.address().port)));
}

// ---- socket.io
const httpServer = http.createServer();
const io = new Server(httpServer, {
  pingInterval: 200,
  pingTimeout: 300,
  connectionStateRecovery: { maxDisconnectionDuration: 60000, skipMiddlewares: true },
});

io.on("connection", (socket) => {
  socket.emit("welcome", { id: socket.id, recovered: socket.recovered, auth: socket.handshake.auth });
  socket.on("echo", (...args) => socket.emit("echo", ...args));
  socket.on("echo-ack", (...args) => {
    const ack = args.pop();
    if (typeof ack === "function") ack(...args);
  });
  socket.on("binary-echo", (buf, ack) => {
    const isBuffer = Buffer.isBuffer(buf);
    socket.emit("binary-back", buf, { isBuffer, length: isBuffer ? buf.length : -1 });
    if (typeof ack === "function") ack(Buffer.concat([Buffer.from([0xff]), isBuffer ? buf : Buffer.alloc(0)]));
  });
  socket.on("join", (room, ack) => {
    socket.join(room);
    if (typeof ack === "function") ack("joined");
  });
  socket.on("leave", (room, ack) => {
    socket.leave(room);
    if (typeof ack === "function") ack("left");
  });
  socket.on("to-room", (room, msg, ack) => {
    io.to(room).emit("room-msg", room, msg);
    if (typeof ack === "function") ack("sent");
  });
  socket.on("ask-me", async (question) => {
    // A server-initiated emit with an ack; report what the client answered.
    try {
      const answer = await socket.timeout(2000).emitWithAck("question", question);
      socket.emit("answer-received", answer);
    } catch (err) {
      socket.emit("answer-received", { error: String(err) });
    }
  });
  socket.on("drop-transport", (room) => {
    // Close the underlying connection, then emit to a room the client is in: with
    // connection-state recovery the client gets it after reconnecting.
    socket.conn.close();
    setTimeout(() => io.to(room).emit("while-away", "missed-1"), 20);
    setTimeout(() => io.to(room).emit("while-away", "missed-2"), 40);
  });
  socket.on("kick", () => socket.disconnect());
  socket.on("publish", () => {
    // Never acknowledged: a "server that never acks" for the producer's timeout test.
  });
});

io.of("/admin")
  .use((socket, next) => {
    if (socket.handshake.auth && socket.handshake.auth.token === "secret") return next();
    const err = new Error("not authorized");
    err.data = { code: 401 };
    next(err);
  })
  .on("connection", (socket) => {
    socket.emit("admin-welcome", socket.handshake.auth);
  });

// ---- raw Engine.IO over WebSocket, malformed Socket.IO after CONNECT
function rawServer(pingInterval, pingTimeout, onMessage) {
  const server = http.createServer();
  const wss = new WebSocketServer({ server });
  wss.on("connection", (ws) => {
    ws.send(
      "0" + JSON.stringify({ sid: "raw-" + Math.random().toString(36).slice(2), upgrades: [], pingInterval, pingTimeout, maxPayload: 1000000 }),
    );
    ws.on("message", (data, isBinary) => onMessage(ws, isBinary ? data : data.toString()));
  });
  return server;
}
const raw = rawServer(25000, 20000, (ws, msg) => {
  if (msg === "40" || msg.startsWith("40{")) {
    ws.send('40{"sid":"raw-sid"}');
    setTimeout(() => ws.send('42["broken",'), 50);
  }
});
const silent = rawServer(300, 200, (ws, msg) => {
  if (msg === "40" || msg.startsWith("40{")) ws.send('40{"sid":"silent-sid"}');
});

const [sioPort, rawPort, silentPort] = await Promise.all([listen(httpServer), listen(raw), listen(silent)]);
console.log(`listening sio=${sioPort} raw=${rawPort} silent=${silentPort}`);

const stop = () => process.exit(0);
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
