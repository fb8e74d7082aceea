// sio-interop-server - the server the interop tests (tests/interop/) drive with the
// official socket.io-client, built on Ferry's handler API like sio-echo.
//
// Namespaces "/" and "/custom" (anything else: CONNECT_ERROR "Invalid namespace"), each
// with these events:
//   "join" room                          -> the socket joins `room`; ack true
//   "broadcast" {room, except?, event, data}
//                                        -> to(room).except(except).emit(event, data);
//                                           ack with the number of recipients
//   "echo" ...args                       -> emits "echo" back with the same arguments
//                                           (binary attachments included)
//   "echo-ack" ...args                   -> acks with the same arguments
//   "server-ack" {event, data, timeoutMs}
//                                        -> emits `event` with `data` to the client asking
//                                           for an ack, then emits "server-ack-result" with
//                                           the client's reply arguments, or {"timeout":true}
//   "drop"                               -> ends the client's Engine.IO connection without a
//                                           Socket.IO DISCONNECT, so the client reconnects
//                                           (see drop_transport below)
//   "stats"                              -> acks {"connections":{"/":N,"/custom":M},
//                                           "connected":{"/":n,"/custom":m}}: connections
//                                           accepted since start, and currently connected
// Every event acks `true` when the client asked for an ack and nothing else is listed.
//
// --transports polling|websocket|both restricts the Engine.IO transports.
// pingInterval 300 ms, pingTimeout 200 ms (so dead transports are noticed quickly),
// maxPayload 1000000, CORS origin "*". Prints "sio-interop-server listening on
// <host>:<port>" once it accepts connections.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <nlohmann/json.hpp>

#include "broker/engineio.h"
#include "broker/http_server.h"
#include "broker/socketio.h"

using namespace ferry::broker;
using ojson = nlohmann::ordered_json;

namespace {

// The Engine.IO outbound-queue bound of this server. "drop" queues one message larger
// than this, which makes the session close itself with close_reason::slow_consumer: the
// only way the handler API offers to end a connection WITHOUT first sending the
// Socket.IO DISCONNECT packet (socket::disconnect(true) sends it, and a client that
// receives it does not reconnect: reason "io server disconnect"). The client sees a
// plain transport close and reconnects, which is what the test needs. 1 MiB leaves
// ample room for the other tests' payloads (a few KiB at most).
constexpr size_t max_buffered_bytes = 1024 * 1024;

struct counters {
  uint64_t connections_main = 0;
  uint64_t connections_custom = 0;
};

// Closes the socket's Engine.IO connection abruptly (from the client's point of view):
// no DISCONNECT packet, the WebSocket (or pending long-poll) just ends.
void drop_transport(const sio::socket_ptr& s) {
  std::string filler(max_buffered_bytes + 1, 'x');
  std::string json = "\"" + filler + "\"";
  s->emit("drop-filler", sio::args(std::move(json)));
}

// [v]: a one-element argument list (ojson::array({v}) would splice v if it is an array).
ojson one_arg(const ojson& v) {
  ojson a = ojson::array();
  a.push_back(v);
  return a;
}

// The first argument of an event as JSON (null when absent or not JSON).
ojson first_arg(sio::message& m) {
  ojson all = m.to_json();
  return all.is_array() && !all.empty() ? all[0] : ojson();
}

std::string string_field(const ojson& obj, const char* key) {
  if (!obj.is_object()) return {};
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

void setup(sio::server& io, sio::namespace_& nsp, counters& count) {
  const bool is_main = nsp.name() == "/";
  nsp.on_connection([&count, is_main](const sio::socket_ptr&) {
    if (is_main)
      ++count.connections_main;
    else
      ++count.connections_custom;
  });

  nsp.on("join", [](const sio::socket_ptr& s, sio::message& m, sio::responder ack) {
    ojson room = first_arg(m);
    if (!room.is_string()) {
      ack.send("false");
      return;
    }
    s->join(room.get<std::string>());
    ack.send("true");
  });

  nsp.on("broadcast", [&nsp](const sio::socket_ptr&, sio::message& m, sio::responder ack) {
    ojson req = first_arg(m);
    std::string event = string_field(req, "event");
    if (event.empty()) {
      ack.send("0");
      return;
    }
    sio::broadcast b(nsp);
    if (std::string room = string_field(req, "room"); !room.empty()) b.to(room);
    if (std::string except = string_field(req, "except"); !except.empty()) b.except(except);
    ojson data = req.contains("data") ? req["data"] : ojson();
    size_t n = b.emit(event, sio::args::from_json(one_arg(data)));
    ack.send(std::to_string(n));
  });

  nsp.on("echo", [](const sio::socket_ptr& s, sio::message& m, sio::responder ack) {
    s->emit("echo", m.args());
    ack.send("true");
  });

  nsp.on("echo-ack", [](const sio::socket_ptr&, sio::message& m, sio::responder ack) { ack.send(m.args()); });

  nsp.on("server-ack", [](const sio::socket_ptr& s, sio::message& m, sio::responder ack) {
    ojson req = first_arg(m);
    std::string event = string_field(req, "event");
    if (event.empty()) event = "server-ack";
    ojson data = req.is_object() && req.contains("data") ? req["data"] : ojson();
    int64_t timeout_ms = 2000;
    if (req.is_object() && req.contains("timeoutMs") && req["timeoutMs"].is_number_integer())
      timeout_ms = req["timeoutMs"].get<int64_t>();
    std::weak_ptr<sio::socket> weak = s;
    s->emit_with_ack(event, sio::args::from_json(one_arg(data)), std::chrono::milliseconds(timeout_ms),
                     [weak](sio::message* reply) {
                       auto self = weak.lock();
                       if (!self || !self->connected()) return;
                       if (reply)
                         self->emit("server-ack-result", reply->args());
                       else
                         self->emit("server-ack-result", R"({"timeout":true})");
                     });
    ack.send("true");
  });

  nsp.on("drop", [](const sio::socket_ptr& s, sio::message&, sio::responder) { drop_transport(s); });

  nsp.on("stats", [&io, &count](const sio::socket_ptr&, sio::message&, sio::responder ack) {
    ojson out = ojson::object();
    out["connections"] = {{"/", count.connections_main}, {"/custom", count.connections_custom}};
    auto size_of = [&io](const char* name) -> size_t {
      auto* n = io.find_namespace(name);
      return n ? n->size() : 0;
    };
    out["connected"] = {{"/", size_of("/")}, {"/custom", size_of("/custom")}};
    ack.send(out.dump());
  });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sio-interop-server: the server the official-client interop tests talk to"};
  uint16_t port = 0;
  std::string host = "127.0.0.1";
  std::string transports = "both";
  app.add_option("--port", port, "TCP port (0 = any free port, printed on stdout)")->capture_default_str();
  app.add_option("--host", host, "address to bind")->capture_default_str();
  app.add_option("--transports", transports, "Engine.IO transports to accept")
      ->check(CLI::IsMember({"polling", "websocket", "both"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  asio::io_context io;
  http_server http(io, {.host = host, .port = port, .max_message_bytes = 1000000, .max_http_body_bytes = 2000000});

  eio::options engine;
  engine.ping_interval = std::chrono::milliseconds(300);
  engine.ping_timeout = std::chrono::milliseconds(200);
  engine.max_payload = 1000000;
  engine.cors_origins = {"*"};
  engine.allow_polling = transports != "websocket";
  engine.allow_websocket = transports != "polling";
  engine.max_buffered_bytes = max_buffered_bytes;

  sio::server sio_server(io, http, {.connect_timeout = std::chrono::milliseconds(5000)}, engine);
  counters count;
  setup(sio_server, sio_server.of("/"), count);
  setup(sio_server, sio_server.of("/custom"), count);

  try {
    http.start();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sio-interop-server: %s\n", e.what());
    return 1;
  }
  std::printf("sio-interop-server listening on %s:%u\n", host.c_str(), static_cast<unsigned>(http.port()));
  std::fflush(stdout);

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const asio::error_code&, int) {
    http.stop_accepting();
    sio_server.close_all();
    io.stop();
  });
  io.run();
  return 0;
}
