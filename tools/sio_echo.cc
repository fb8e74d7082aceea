// sio-echo - the reference configuration the official Engine.IO v4 and Socket.IO v5
// test suites expect (socket.io-protocol v5-current.md, "Test suite"), built on Ferry's
// handler API:
//   /engine.io/  raw Engine.IO, every message echoed back (text as text, binary as binary)
//   /socket.io/  namespaces "/" and "/custom": emit "auth" with the handshake auth on
//                connection, "message" -> "message-back", "message-with-ack" -> ack;
//                other namespaces get CONNECT_ERROR {"message":"Invalid namespace"}.
// pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1000000, connectTimeout 1000 ms,
// CORS origin "*".
#include <csignal>
#include <cstdio>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <CLI/CLI.hpp>

#include "broker/engineio.h"
#include "broker/http_server.h"
#include "broker/socketio.h"

using namespace ferry::broker;

namespace {

// Echoes every Engine.IO message of one session.
class echo final : public eio::session_handler {
 public:
  explicit echo(std::weak_ptr<eio::session> s) : _session(std::move(s)) {}
  void on_eio_message(bool binary, std::string_view data) override {
    auto s = _session.lock();
    if (!s) return;
    if (binary) s->send(make_frame(std::string(data), true));
    else s->send(make_frame(std::string("4").append(data), false));
  }
  void on_eio_close(eio::close_reason) override {}

 private:
  std::weak_ptr<eio::session> _session;
};

void setup(sio::namespace_& nsp) {
  nsp.on_connection([](const sio::socket_ptr& s) { s->emit("auth", s->handshake().auth); });
  nsp.on("message", [](const sio::socket_ptr& s, sio::message& m, sio::responder) { s->emit("message-back", m.args()); });
  nsp.on("message-with-ack", [](const sio::socket_ptr&, sio::message& m, sio::responder ack) { ack.send(m.args()); });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sio-echo: the Engine.IO v4 / Socket.IO v5 test-suite reference server on Ferry's handler API"};
  uint16_t port = 3000;
  std::string host = "127.0.0.1";
  app.add_option("--port", port, "TCP port (0 = any free port, printed on stdout)")->capture_default_str();
  app.add_option("--host", host, "address to bind")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  asio::io_context io;
  http_server http(io, {.host = host, .port = port, .max_message_bytes = 1000000, .max_http_body_bytes = 2000000});

  eio::options engine;
  engine.ping_interval = std::chrono::milliseconds(300);
  engine.ping_timeout = std::chrono::milliseconds(200);
  engine.max_payload = 1000000;
  engine.cors_origins = {"*"};

  eio::options raw = engine;
  raw.path = "/engine.io/";
  eio::server raw_engine(io, raw, [](const eio::session_ptr& s) { s->set_handler(std::make_shared<echo>(s)); });
  http.route(raw.path, [&](const std::shared_ptr<http_exchange>& ex) { raw_engine.handle_http(ex); });
  http.route_upgrade(
      raw.path, [&](const http_request& req, http_response& reject) { return raw_engine.validate_upgrade(req, reject); },
      [&](std::shared_ptr<ws_connection> ws) { raw_engine.handle_upgrade(std::move(ws)); });

  sio::server sio_server(io, http, {.connect_timeout = std::chrono::milliseconds(1000)}, engine);
  setup(sio_server.of("/"));
  setup(sio_server.of("/custom"));

  try {
    http.start();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sio-echo: %s\n", e.what());
    return 1;
  }
  std::printf("sio-echo listening on %s:%u\n", host.c_str(), static_cast<unsigned>(http.port()));
  std::fflush(stdout);

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const asio::error_code&, int) {
    http.stop_accepting();
    raw_engine.close_all(eio::close_reason::server_shutdown);
    sio_server.close_all();
    io.stop();
  });
  io.run();
  return 0;
}
