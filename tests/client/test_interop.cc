// Interop: the C++ Socket.IO client against the reference Node socket.io 4.8 server
// (tests/client/sio_node_server.mjs, packages pinned in tests/interop/package.json):
// emit/on, acks both ways, rooms, binary both ways, namespaces with auth and
// CONNECT_ERROR, connection-state recovery, ping/pong, server disconnects, malformed
// packets, a dead server, and a producer against a server that never acks.
//
// Needs NODE, NODE_SERVER_SCRIPT and INTEROP_DIR (set by meson). A missing node or
// node_modules FAILS with instructions; it never skips.
#include <doctest/doctest.h>

#include <condition_variable>
#include <deque>
#include <mutex>

#include "ferry/client/client.h"
#include "support.h"

using namespace ferry::client;
using namespace std::chrono_literals;
namespace ft = ferry::test;

namespace {

class node_server {
 public:
  node_server() {
    std::string node = ft::env("NODE");
    std::string script = ft::env("NODE_SERVER_SCRIPT");
    std::string interop = ft::env("INTEROP_DIR");
    if (node.empty()) throw std::runtime_error("node was not found at configure time; install Node.js >= 20");
    if (interop.empty() ||
        !std::filesystem::exists(std::filesystem::path(interop) / "node_modules" / "socket.io" / "package.json"))
      throw std::runtime_error("tests/interop/node_modules has no socket.io: run `npm ci` in " +
                               (interop.empty() ? std::string("tests/interop") : interop));
    _proc.start(node, {script});
    auto m = _proc.wait_for_line(std::regex(R"(listening sio=(\d+) raw=(\d+) silent=(\d+))"), 20s);
    if (!m) throw std::runtime_error("the Node socket.io server did not start (see its stderr above)");
    sio_port = static_cast<uint16_t>(std::stoi((*m)[1].str()));
    raw_port = static_cast<uint16_t>(std::stoi((*m)[2].str()));
    silent_port = static_cast<uint16_t>(std::stoi((*m)[3].str()));
  }
  [[nodiscard]] std::string url(uint16_t port) const { return "http://127.0.0.1:" + std::to_string(port); }

  uint16_t sio_port = 0, raw_port = 0, silent_port = 0;

 private:
  ft::child_process _proc;
};

node_server& server() {
  static node_server s;  // one server for all cases; killed at exit
  return s;
}

// Events received by a socket, for waiting on them from the test thread.
class inbox {
 public:
  void attach(sio::socket& s) {
    s.on_any([this](std::string_view ev, const sio::message& m) { push(std::string(ev), m); });
    s.on_connect([this](const sio::connect_info& i) {
      std::lock_guard l(_m);
      _connects.push_back(i);
      _cv.notify_all();
    });
    s.on_disconnect([this](sio::disconnect_reason r, const std::string&) {
      std::lock_guard l(_m);
      _disconnects.push_back(r);
      _cv.notify_all();
    });
    s.on_connect_error([this](const error& e) {
      std::lock_guard l(_m);
      _errors.push_back(e);
      _cv.notify_all();
    });
  }
  void push(std::string ev, const sio::message& m) {
    std::lock_guard l(_m);
    _events.emplace_back(std::move(ev), m);
    _cv.notify_all();
  }
  // The n-th (0-based) event named `ev`.
  std::optional<sio::message> wait(const std::string& ev, size_t n = 0, std::chrono::milliseconds t = 5s) {
    std::unique_lock l(_m);
    std::optional<sio::message> out;
    _cv.wait_for(l, t, [&] {
      size_t seen = 0;
      for (auto& [name, m] : _events)
        if (name == ev && seen++ == n) {
          out = m;
          return true;
        }
      return false;
    });
    return out;
  }
  size_t count(const std::string& ev) {
    std::lock_guard l(_m);
    size_t n = 0;
    for (auto& [name, m] : _events) n += name == ev;
    return n;
  }
  bool wait_connects(size_t n, std::chrono::milliseconds t = 5s) {
    std::unique_lock l(_m);
    return _cv.wait_for(l, t, [&] { return _connects.size() >= n; });
  }
  bool wait_disconnects(size_t n, std::chrono::milliseconds t = 5s) {
    std::unique_lock l(_m);
    return _cv.wait_for(l, t, [&] { return _disconnects.size() >= n; });
  }
  bool wait_errors(size_t n, std::chrono::milliseconds t = 5s) {
    std::unique_lock l(_m);
    return _cv.wait_for(l, t, [&] { return _errors.size() >= n; });
  }
  std::vector<sio::connect_info> connects() {
    std::lock_guard l(_m);
    return _connects;
  }
  std::vector<sio::disconnect_reason> disconnects() {
    std::lock_guard l(_m);
    return _disconnects;
  }
  std::vector<error> errors() {
    std::lock_guard l(_m);
    return _errors;
  }

 private:
  std::mutex _m;
  std::condition_variable _cv;
  std::deque<std::pair<std::string, sio::message>> _events;
  std::vector<sio::connect_info> _connects;
  std::vector<sio::disconnect_reason> _disconnects;
  std::vector<error> _errors;
};

sio::client_options fast_options(const std::string& url) {
  sio::client_options o;
  o.url = url;
  o.auto_connect = false;
  o.connect_timeout = 3s;
  o.reconnect.initial_delay = 50ms;
  o.reconnect.max_delay = 200ms;
  return o;
}

}  // namespace

TEST_SUITE("integration") {
  TEST_CASE("interop: the Node socket.io server is available (npm ci in tests/interop)") {
    // Fails - with the reason - when node or node_modules is missing.
    REQUIRE_NOTHROW(server());
  }

  TEST_CASE("interop: emit and on round-trip mixed arguments through the reference server") {
    inbox in;
    runner r;
    sio::client c(r, fast_options(server().url(server().sio_port)));
    auto s = c.socket();
    in.attach(s);
    s.connect();
    REQUIRE(in.wait_connects(1));
    CHECK(s.connected());
    CHECK_FALSE(s.info().sid.empty());
    CHECK_FALSE(s.info().pid.empty());  // the server has connection-state recovery on
    auto welcome = in.wait("welcome");
    REQUIRE(welcome);
    CHECK(welcome->arg(0).find(R"("recovered":false)") != std::string_view::npos);

    REQUIRE(s.emit("echo", sio::args().string("héllo \"q\"").number(int64_t{42}).json(R"({"a":[1,null,true]})")).ok());
    auto echo = in.wait("echo");
    REQUIRE(echo);
    // With connectionStateRecovery the server appends its offset to every event.
    CHECK(echo->size() == 4);
    CHECK(echo->string_arg(3).has_value());
    CHECK(echo->string_arg(0) == std::optional<std::string>("héllo \"q\""));
    CHECK(echo->arg(1) == "42");
    CHECK(echo->arg(2) == R"({"a":[1,null,true]})");

    CHECK(s.emit("connect").code() == errc::invalid_argument);  // reserved name
    CHECK(s.emit("echo", sio::args().json("{oops")).code() == errc::invalid_argument);
  }

  TEST_CASE("interop: emit_with_ack gets the server's ack arguments, and times out when there is none") {
    inbox in;
    runner r;
    sio::client c(r, fast_options(server().url(server().sio_port)));
    auto s = c.socket();
    in.attach(s);
    s.connect();
    REQUIRE(in.wait_connects(1));
    auto reply = s.emit_with_ack("echo-ack", sio::args().string("x").number(int64_t{7}), 3s).get();
    REQUIRE(reply.ok());
    CHECK(reply->size() == 2);
    CHECK(reply->string_arg(0) == std::optional<std::string>("x"));
    CHECK(reply->arg(1) == "7");

    auto t0 = std::chrono::steady_clock::now();
    auto none = s.emit_with_ack("echo", sio::args().string("no ack for this"), 300ms).get();
    REQUIRE_FALSE(none.ok());
    CHECK(none.code() == errc::timeout);
    CHECK(std::chrono::steady_clock::now() - t0 < 2s);
  }

  TEST_CASE("interop: a server-initiated emit with an ack is answered through message::ack") {
    inbox in;
    runner r;
    sio::client c(r, fast_options(server().url(server().sio_port)));
    auto s = c.socket();
    in.attach(s);
    s.on("question", [](const sio::message& m) {
      if (!m.wants_ack()) return;  // the server then reports a timeout
      m.ack(sio::args().string("answer to " + m.string_arg(0).value_or("?")));
      m.ack(sio::args().string("second ack is ignored"));
    });
    s.connect();
    REQUIRE(in.wait_connects(1));
    REQUIRE(s.emit("ask-me", sio::args().string("life")).ok());
    auto got = in.wait("answer-received");
    REQUIRE(got);
    CHECK(got->string_arg(0) == std::optional<std::string>("answer to life"));
  }

  TEST_CASE("interop: rooms - a joined socket gets room broadcasts, after leaving it does not") {
    inbox ia, ib;
    runner r;
    sio::client c1(r, fast_options(server().url(server().sio_port)));
    sio::client c2(r, fast_options(server().url(server().sio_port)));
    auto a = c1.socket();
    auto b = c2.socket();
    ia.attach(a);
    ib.attach(b);
    a.connect();
    b.connect();
    REQUIRE(ia.wait_connects(1));
    REQUIRE(ib.wait_connects(1));
    REQUIRE(a.emit_with_ack("join", sio::args().string("r1"), 3s).get().ok());
    REQUIRE(b.emit_with_ack("to-room", sio::args().string("r1").string("m1"), 3s).get().ok());
    auto m1 = ia.wait("room-msg");
    REQUIRE(m1);
    CHECK(m1->string_arg(1) == std::optional<std::string>("m1"));
    CHECK(ib.count("room-msg") == 0);  // b is not in r1
    REQUIRE(a.emit_with_ack("leave", sio::args().string("r1"), 3s).get().ok());
    REQUIRE(b.emit_with_ack("to-room", sio::args().string("r1").string("m2"), 3s).get().ok());
    std::this_thread::sleep_for(150ms);
    CHECK(ia.count("room-msg") == 1);
  }

  TEST_CASE("interop: binary attachments travel both ways") {
    inbox in;
    runner r;
    sio::client c(r, fast_options(server().url(server().sio_port)));
    auto s = c.socket();
    in.attach(s);
    s.connect();
    REQUIRE(in.wait_connects(1));
    std::string bytes;
    for (int i = 0; i < 300; ++i) bytes.push_back(static_cast<char>(i & 0xff));
    auto reply = s.emit_with_ack("binary-echo", sio::args().binary(bytes), 3s).get();
    REQUIRE(reply.ok());
    REQUIRE(reply->binary_arg(0).has_value());
    CHECK(*reply->binary_arg(0) == std::string("\xff") + bytes);
    auto back = in.wait("binary-back");
    REQUIRE(back);
    REQUIRE(back->binary_arg(0).has_value());
    CHECK(*back->binary_arg(0) == bytes);
    CHECK(back->arg(1) == R"({"isBuffer":true,"length":300})");
  }

  TEST_CASE("interop: a namespace's auth middleware - CONNECT_ERROR with message and data, then success") {
    inbox ib;
    inbox ig;
    runner r;
    sio::client c(r, fast_options(server().url(server().sio_port)));
    auto bad = c.socket("/admin", {.auth = R"({"token":"wrong"})"});
    ib.attach(bad);
    auto pending = bad.emit_with_ack("anything", {}, 5s);  // buffered until connected: fails with the refusal
    bad.connect();
    REQUIRE(ib.wait_errors(1));
    auto e = ib.errors().front();
    CHECK(e.code == errc::connect_error);
    CHECK(e.message.find("not authorized") != std::string::npos);
    CHECK(e.message.find("401") != std::string::npos);
    CHECK_FALSE(bad.connected());
    auto p = pending.get();
    CHECK(p.code() == errc::connect_error);

    sio::client c2(r, fast_options(server().url(server().sio_port)));
    auto good = c2.socket("/admin", {.auth = R"({"token":"secret","user":"ana"})"});
    ig.attach(good);
    good.connect();
    REQUIRE(ig.wait_connects(1));
    auto w = ig.wait("admin-welcome");
    REQUIRE(w);
    CHECK(w->arg(0) == R"({"token":"secret","user":"ana"})");
  }

  TEST_CASE("interop: connection-state recovery - reconnect with pid and offset restores the session") {
    inbox in;
    runner r;
    sio::client c(r, fast_options(server().url(server().sio_port)));
    auto s = c.socket();
    in.attach(s);
    s.connect();
    REQUIRE(in.wait_connects(1));
    REQUIRE(s.emit_with_ack("join", sio::args().string("rec-room"), 3s).get().ok());
    // An event with a string last argument moves the recovery offset.
    REQUIRE(s.emit_with_ack("to-room", sio::args().string("rec-room").string("before"), 3s).get().ok());
    REQUIRE(in.wait("room-msg"));
    auto first = in.connects().front();
    REQUIRE(s.emit("drop-transport", sio::args().string("rec-room")).ok());
    REQUIRE(in.wait_connects(2, 5s));
    auto second = in.connects().back();
    CHECK(second.recovered);
    CHECK(second.pid == first.pid);
    CHECK(second.sid == first.sid);
    auto m1 = in.wait("while-away", 0);
    auto m2 = in.wait("while-away", 1);
    REQUIRE(m1);
    REQUIRE(m2);
    CHECK(m1->string_arg(0) == std::optional<std::string>("missed-1"));
    CHECK(m2->string_arg(0) == std::optional<std::string>("missed-2"));
    // The server's "connection" handler runs again, and sees the restored session.
    auto welcome2 = in.wait("welcome", 1);
    REQUIRE(welcome2);
    CHECK(welcome2->arg(0).find(R"("recovered":true)") != std::string_view::npos);
  }

  TEST_CASE("interop: pings are answered - the connection outlives many ping intervals") {
    inbox in;
    runner r;
    sio::client c(r, fast_options(server().url(server().sio_port)));
    auto s = c.socket();
    in.attach(s);
    s.connect();
    REQUIRE(in.wait_connects(1));
    std::this_thread::sleep_for(1500ms);  // pingInterval 200 + pingTimeout 300: a missed pong closes in 500 ms
    CHECK(in.disconnects().empty());
    CHECK(s.connected());
    CHECK(s.emit_with_ack("echo-ack", sio::args().number(int64_t{1}), 2s).get().ok());
  }

  TEST_CASE("interop: a server-side disconnect ends the socket without reconnecting") {
    inbox in;
    runner r;
    sio::client c(r, fast_options(server().url(server().sio_port)));
    auto s = c.socket();
    in.attach(s);
    s.connect();
    REQUIRE(in.wait_connects(1));
    REQUIRE(s.emit("kick").ok());
    REQUIRE(in.wait_disconnects(1));
    CHECK(in.disconnects().front() == sio::disconnect_reason::io_server_disconnect);
    std::this_thread::sleep_for(300ms);
    CHECK(in.connects().size() == 1);
    auto after = s.emit_with_ack("echo-ack", {}, 200ms).get();
    CHECK_FALSE(after.ok());
  }

  TEST_CASE("interop: a malformed packet from the server closes the connection with a protocol error") {
    inbox in;
    ft::collected<error> errors;
    runner r;
    auto o = fast_options(server().url(server().raw_port));
    o.reconnect.enabled = false;
    sio::client c(r, o);
    c.on_error(errors.sink());
    auto s = c.socket();
    in.attach(s);
    s.connect();
    REQUIRE(in.wait_connects(1));
    REQUIRE(in.wait_disconnects(1));
    CHECK(in.disconnects().front() == sio::disconnect_reason::parse_error);
    REQUIRE(errors.wait_any());
    CHECK(errors.all().front().code == errc::protocol_error);
    CHECK(errors.all().front().message.find("invalid JSON") != std::string::npos);
  }

  TEST_CASE("interop: a server that stops pinging is detected within pingInterval + pingTimeout") {
    inbox in;
    ft::collected<error> errors;
    runner r;
    auto o = fast_options(server().url(server().silent_port));
    o.reconnect.enabled = false;
    sio::client c(r, o);
    c.on_error(errors.sink());
    auto s = c.socket();
    in.attach(s);
    auto pending = s.emit_with_ack("never-answered", {}, 10s);
    s.connect();
    REQUIRE(in.wait_connects(1));
    auto t0 = std::chrono::steady_clock::now();
    REQUIRE(in.wait_disconnects(1, 3s));
    CHECK(std::chrono::steady_clock::now() - t0 < 1500ms);
    CHECK(in.disconnects().front() == sio::disconnect_reason::ping_timeout);
    auto p = pending.get();  // sent, then the connection died: fails, does not hang
    CHECK(p.code() == errc::disconnected);
    REQUIRE_FALSE(errors.all().empty());
    CHECK(errors.all().front().code == errc::ping_timeout);
  }

  TEST_CASE("interop: a producer against a server that never acks fails its futures with timeout") {
    runner r;
    producer_options o;
    o.url = server().url(server().sio_port);
    o.delivery_timeout = 800ms;
    o.ack_timeout = 300ms;  // resent a few times, then given up
    o.linger = 1ms;
    producer p(r, o);
    std::vector<std::future<result<publish_ack>>> fs;
    for (int i = 0; i < 5; ++i) fs.push_back(p.publish({.topic = "t", .data = std::to_string(i)}));
    auto t0 = std::chrono::steady_clock::now();
    for (auto& f : fs) {
      REQUIRE(f.wait_for(5s) == std::future_status::ready);
      auto res = f.get();
      REQUIRE_FALSE(res.ok());
      CHECK(res.code() == errc::timeout);
    }
    CHECK(std::chrono::steady_clock::now() - t0 < 3s);
    CHECK(p.stats().failed == 5);
    CHECK(p.stats().resent > 0);
  }

}  // TEST_SUITE
