// Unit tests: the Engine.IO / Socket.IO client state machines (manager_impl, socket_impl)
// driven through a fake WebSocket - no network. Frames the client sends are recorded;
// frames "from the server" are injected through the connection's handlers.
#include <doctest/doctest.h>

#include <asio/io_context.hpp>

#include "client/src/sio_impl.h"

using namespace ferry::client;
using namespace ferry::client::detail;
using namespace std::chrono_literals;

namespace {

struct fake_ws final : ws_connection {
  std::vector<std::pair<bool, std::string>> sent;
  bool closed = false;
  bool terminated = false;
  ws_handlers h;

  bool send(bool binary, const std::string& payload, std::string&) override {
    sent.emplace_back(binary, payload);
    return true;
  }
  void close(uint16_t, const std::string&) override { closed = true; }
  void terminate() override { terminated = true; }
  [[nodiscard]] size_t buffered_bytes() const override { return 0; }

  [[nodiscard]] std::vector<std::string> texts() const {
    std::vector<std::string> out;
    for (auto& [b, p] : sent)
      if (!b) out.push_back(p);
    return out;
  }
};

const std::string handshake =
    R"(0{"sid":"e1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000})";

struct harness {
  asio::io_context io;
  std::vector<std::shared_ptr<fake_ws>> conns;
  std::shared_ptr<manager_impl> mgr;
  std::vector<error> errors;

  explicit harness(sio::client_options o = {}) {
    if (o.url.empty()) o.url = "http://127.0.0.1:1";
    o.reconnect.initial_delay = 10ms;
    o.reconnect.max_delay = 20ms;
    o.reconnect.jitter = 0;
    auto url = parse_server_url(o.url);
    REQUIRE(url.ok());
    mgr = std::make_shared<manager_impl>(io, o, *url);
    mgr->set_connector([this](asio::io_context&, const ws_options&, ws_handlers h, std::string&) {
      auto c = std::make_shared<fake_ws>();
      c->h = std::move(h);
      conns.push_back(c);
      return c;
    });
    mgr->on_error([this](const error& e) { errors.push_back(e); });
  }
  void pump() {
    io.restart();
    io.poll();
  }
  void run_for(std::chrono::milliseconds d) {
    io.restart();
    io.run_for(d);
  }
  fake_ws& ws() { return *conns.back(); }
  // Server -> client text frame.
  void server(const std::string& frame) {
    ws().h.on_message(false, frame);
    pump();
  }
  void server_binary(const std::string& bytes) {
    ws().h.on_message(true, bytes);
    pump();
  }
  void open_transport(const std::string& hs = handshake) {
    REQUIRE(!conns.empty());
    ws().h.on_open();
    server(hs);
  }
};

struct recorder {
  std::vector<std::pair<std::string, sio::message>> events;
  std::vector<sio::connect_info> connects;
  std::vector<sio::disconnect_reason> disconnects;
  std::vector<error> connect_errors;

  void attach(socket_impl& s) {
    s.on_any([this](std::string_view ev, const sio::message& m) { events.emplace_back(std::string(ev), m); });
    s.on_connect([this](const sio::connect_info& i) { connects.push_back(i); });
    s.on_disconnect([this](sio::disconnect_reason r, const std::string&) { disconnects.push_back(r); });
    s.on_connect_error([this](const error& e) { connect_errors.push_back(e); });
  }
};

}  // namespace

TEST_SUITE("unit") {
  TEST_CASE("sio state: handshake, CONNECT with auth, pong, events, acks both ways") {
    harness t;
    auto s = t.mgr->socket("/", {.auth = R"({"k":1})"});
    recorder r;
    r.attach(*s);
    s->connect();
    t.pump();
    REQUIRE(t.conns.size() == 1);
    CHECK(t.ws().sent.empty());  // nothing before the Engine.IO open packet
    t.open_transport();
    CHECK(t.mgr->is_open());
    REQUIRE(t.ws().texts() == std::vector<std::string>{R"(40{"k":1})"});
    t.server(R"(40{"sid":"s1","pid":"p1"})");
    REQUIRE(r.connects.size() == 1);
    CHECK(r.connects[0].sid == "s1");
    CHECK(r.connects[0].pid == "p1");
    CHECK_FALSE(r.connects[0].recovered);
    CHECK(s->connected());

    t.server("2");
    CHECK(t.ws().texts().back() == "3");  // ping answered

    std::optional<result<sio::message>> reply;
    s->emit_with_ack(
        "q", sio::args().string("a"), [&](result<sio::message> m) { reply = std::move(m); }, 1s);
    t.pump();
    CHECK(t.ws().texts().back() == R"(420["q","a"])");
    t.server(R"(430["r",1])");
    REQUIRE(reply.has_value());
    REQUIRE(reply->ok());
    CHECK((*reply)->string_arg(0) == std::optional<std::string>("r"));
    CHECK((*reply)->arg(1) == "1");

    t.server(R"(427["ask","x"])");  // the server wants an ack (id 7)
    REQUIRE(r.events.size() == 1);
    CHECK(r.events[0].first == "ask");
    REQUIRE(r.events[0].second.wants_ack());
    r.events[0].second.ack(sio::args().string("yes"));
    t.pump();
    CHECK(t.ws().texts().back() == R"(437["yes"])");

    // Binary event: header, then its attachment.
    t.server(R"(451-["bin",{"_placeholder":true,"num":0}])");
    CHECK(r.events.size() == 1);  // waiting for the attachment
    t.server_binary(std::string("\x01\x02", 2));
    REQUIRE(r.events.size() == 2);
    CHECK(*r.events[1].second.binary_arg(0) == std::string("\x01\x02", 2));
  }

  TEST_CASE("sio state: reconnect sends pid and the last plain-event offset; same pid means recovered") {
    harness t;
    auto s = t.mgr->socket("/", {.auth = R"({"k":1})"});
    recorder r;
    r.attach(*s);
    s->connect();
    t.pump();
    t.open_transport();
    t.server(R"(40{"sid":"s1","pid":"p1"})");
    t.server(R"(42["e","x","off-1"])");
    t.server(R"(425["e","y","off-2"])");  // carries an ack id: not an offset (socket.ts)
    t.server(R"(42["e",{"o":"not-a-string-last-arg"}])");

    std::optional<result<sio::message>> pending;
    s->emit_with_ack(
        "q", {}, [&](result<sio::message> m) { pending = std::move(m); }, 0ms);
    t.pump();
    t.ws().h.on_close(1006, "");
    t.pump();
    REQUIRE(r.disconnects.size() == 1);
    CHECK(r.disconnects[0] == sio::disconnect_reason::transport_error);
    REQUIRE(pending.has_value());
    CHECK(pending->code() == errc::disconnected);  // sent, then the connection died
    CHECK_FALSE(s->connected());

    t.run_for(100ms);  // backoff 10 ms
    REQUIRE(t.conns.size() == 2);
    t.open_transport();
    CHECK(t.ws().texts().front() == R"(40{"pid":"p1","offset":"off-1","k":1})");
    t.server(R"(40{"sid":"s1","pid":"p1"})");
    REQUIRE(r.connects.size() == 2);
    CHECK(r.connects[1].recovered);

    // A new pid: not recovered, and the old offset is forgotten.
    t.ws().h.on_close(1000, "bye");
    t.pump();
    t.run_for(100ms);
    REQUIRE(t.conns.size() == 3);
    t.open_transport();
    CHECK(t.ws().texts().front() == R"(40{"pid":"p1","offset":"off-1","k":1})");
    t.server(R"(40{"sid":"s2","pid":"p2"})");
    CHECK_FALSE(r.connects.back().recovered);
    t.ws().h.on_close(1000, "bye");
    t.pump();
    t.run_for(100ms);
    t.open_transport();
    CHECK(t.ws().texts().front() == R"(40{"pid":"p2","k":1})");
  }

  TEST_CASE("sio state: emits and events before the CONNECT ack are buffered, then flushed in order") {
    harness t;
    auto s = t.mgr->socket("/chat", {});
    recorder r;
    r.attach(*s);
    REQUIRE(s->emit("early", sio::args().number(int64_t{1})).ok());
    s->connect();
    t.pump();
    t.open_transport();
    REQUIRE(t.ws().texts() == std::vector<std::string>{"40/chat,{}"});
    t.server(R"(42/chat,["pre","1"])");
    CHECK(r.events.empty());  // not connected yet
    t.server(R"(40/chat,{"sid":"s1"})");
    REQUIRE(r.events.size() == 1);
    CHECK(r.events[0].first == "pre");
    CHECK(t.ws().texts().back() == R"(42/chat,["early",1])");
    CHECK(r.connects.size() == 1);
    CHECK(r.connects[0].pid.empty());      // no recovery on that server
    t.server(R"(42["other-namespace"])");  // a namespace without a socket: ignored
    CHECK(r.events.size() == 1);
  }

  TEST_CASE("sio state: CONNECT_ERROR fails buffered work and closes the unused connection") {
    harness t;
    auto s = t.mgr->socket("/admin", {.auth = R"({"token":"x"})"});
    recorder r;
    r.attach(*s);
    std::optional<result<sio::message>> pending;
    s->emit_with_ack(
        "q", {}, [&](result<sio::message> m) { pending = std::move(m); }, 0ms);
    s->connect();
    t.pump();
    t.open_transport();
    t.server(R"(44/admin,{"message":"not authorized","data":{"code":401}})");
    REQUIRE(r.connect_errors.size() == 1);
    CHECK(r.connect_errors[0].code == errc::connect_error);
    CHECK(r.connect_errors[0].message == R"(not authorized (data: {"code":401}))");
    REQUIRE(pending.has_value());
    CHECK(pending->code() == errc::connect_error);
    CHECK_FALSE(s->active());
    CHECK(t.conns[0]->closed);  // no namespace left: the connection closes, no reconnect
    t.run_for(60ms);
    CHECK(t.conns.size() == 1);
  }

  TEST_CASE("sio state: a malformed packet closes with a protocol error and reconnects") {
    harness t;
    auto s = t.mgr->socket("/", {});
    recorder r;
    r.attach(*s);
    s->connect();
    t.pump();
    t.open_transport();
    t.server(R"(40{"sid":"s1"})");
    t.server(R"(42["broken",)");
    REQUIRE(r.disconnects.size() == 1);
    CHECK(r.disconnects[0] == sio::disconnect_reason::parse_error);
    CHECK(t.conns[0]->terminated);
    REQUIRE_FALSE(t.errors.empty());
    CHECK(t.errors.back().code == errc::protocol_error);
    t.run_for(100ms);
    CHECK(t.conns.size() == 2);  // reconnecting, as the JS client does after a parse error

    // The first frame must be the Engine.IO open packet.
    t.ws().h.on_open();
    t.server(R"(40{"sid":"x"})");
    CHECK(t.errors.back().code == errc::protocol_error);
    CHECK(t.errors.back().message.find("open packet") != std::string::npos);
  }

  TEST_CASE("sio state: no ping within pingInterval + pingTimeout closes the connection") {
    sio::client_options o;
    o.reconnect.enabled = false;
    harness t(o);
    auto s = t.mgr->socket("/", {});
    recorder r;
    r.attach(*s);
    s->connect();
    t.pump();
    t.open_transport(R"(0{"sid":"e1","upgrades":[],"pingInterval":100,"pingTimeout":100})");
    t.server(R"(40{"sid":"s1"})");
    t.run_for(60ms);
    t.server("2");  // a ping resets the 200 ms deadline
    t.run_for(60ms);
    CHECK(r.disconnects.empty());
    t.run_for(400ms);
    REQUIRE(r.disconnects.size() == 1);
    CHECK(r.disconnects[0] == sio::disconnect_reason::ping_timeout);
    REQUIRE_FALSE(t.errors.empty());
    CHECK(t.errors.back().code == errc::ping_timeout);
    CHECK(t.conns.size() == 1);  // reconnection disabled
  }

  TEST_CASE("sio state: reconnection gives up after max_attempts with reconnect_failed") {
    sio::client_options o;
    o.reconnect.max_attempts = 2;
    harness t(o);
    auto s = t.mgr->socket("/", {});
    recorder r;
    r.attach(*s);
    std::optional<result<sio::message>> pending;
    s->emit_with_ack(
        "q", {}, [&](result<sio::message> m) { pending = std::move(m); }, 0ms);
    s->connect();
    t.pump();
    for (int i = 0; i < 3; ++i) {
      REQUIRE(t.conns.size() == static_cast<size_t>(i + 1));
      t.ws().h.on_fail("Connection refused");
      t.pump();
      t.run_for(60ms);
    }
    CHECK(t.conns.size() == 3);  // the first attempt and two reconnections
    REQUIRE(pending.has_value());
    CHECK(pending->code() == errc::reconnect_failed);
    CHECK(pending->err().message.find("Connection refused") != std::string::npos);
    REQUIRE(r.connect_errors.size() == 3);
    CHECK(r.connect_errors[0].code == errc::connection_failed);
    CHECK(r.connect_errors[2].code == errc::reconnect_failed);
    CHECK_FALSE(s->active());
  }

  TEST_CASE("sio state: disconnect and close fail pending acks with closed; silenced handlers stay quiet") {
    harness t;
    auto s = t.mgr->socket("/", {});
    recorder r;
    r.attach(*s);
    s->connect();
    t.pump();
    t.open_transport();
    t.server(R"(40{"sid":"s1"})");
    std::optional<result<sio::message>> pending;
    s->emit_with_ack(
        "q", {}, [&](result<sio::message> m) { pending = std::move(m); }, 0ms);
    t.pump();
    t.mgr->silence();
    t.mgr->close();
    t.pump();
    REQUIRE(pending.has_value());
    CHECK(pending->code() == errc::closed);  // completion callbacks still resolve
    CHECK(r.disconnects.empty());            // event handlers do not run once silenced
    CHECK(t.ws().texts().back() == "41");    // DISCONNECT sent before closing
    CHECK(t.conns[0]->closed);
  }

}  // TEST_SUITE
