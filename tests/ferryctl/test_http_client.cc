// Tests for ferryctl's blocking HTTP client (tools/ferryctl/http_client.h) against a
// scripted server on 127.0.0.1 in a thread: what goes on the wire, response framings
// arriving in pieces, and every way a request can fail — refused, silent server, early
// close, garbage, cancellation — each bounded in time.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/read_until.hpp>
#include <asio/streambuf.hpp>
#include <asio/write.hpp>

#include "tools/ferryctl/http_client.h"

using namespace ferry::ferryctl::http;
using asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

// Accepts connections on 127.0.0.1:<kernel port>; for each one reads the request (head
// and Content-Length body), stores it, and runs `respond` with the socket. The socket
// is closed when `respond` returns.
class scripted_server {
 public:
  using action = std::function<void(tcp::socket&, const std::atomic<bool>& stopping)>;

  explicit scripted_server(action respond)
      : _respond(std::move(respond)), _acceptor(_io, {asio::ip::make_address("127.0.0.1"), 0}) {
    accept();
    _thread = std::thread([this] { _io.run(); });
  }
  ~scripted_server() {
    _stopping = true;
    _io.stop();
    _thread.join();
  }
  uint16_t port() const { return _acceptor.local_endpoint().port(); }
  std::string request() {
    std::lock_guard lk(_mu);
    return _request;
  }

 private:
  void accept() {
    _acceptor.async_accept([this](const asio::error_code& ec, tcp::socket s) {
      if (ec) return;
      asio::error_code rec;
      asio::streambuf buf;
      size_t n = asio::read_until(s, buf, "\r\n\r\n", rec);
      if (!rec) {
        std::string all(asio::buffers_begin(buf.data()), asio::buffers_end(buf.data()));
        std::string head = all.substr(0, n);
        size_t cl = head.find("Content-Length: ");
        size_t want = cl == std::string::npos ? 0 : std::stoul(head.substr(cl + 16));
        if (all.size() - n < want) asio::read(s, buf, asio::transfer_exactly(want - (all.size() - n)), rec);
        std::lock_guard lk(_mu);
        _request = std::string(asio::buffers_begin(buf.data()), asio::buffers_end(buf.data()));
      }
      _respond(s, _stopping);
      asio::error_code ignored;
      s.close(ignored);
      accept();
    });
  }

  action _respond;
  asio::io_context _io;
  tcp::acceptor _acceptor;
  std::thread _thread;
  std::mutex _mu;
  std::string _request;
  std::atomic<bool> _stopping{false};
};

void send(tcp::socket& s, std::string_view bytes) {
  asio::error_code ec;
  asio::write(s, asio::buffer(bytes.data(), bytes.size()), ec);
}

url loopback(uint16_t port, std::string base = {}) {
  url u;
  u.host = "127.0.0.1";
  u.port = port;
  u.base_path = std::move(base);
  return u;
}

client_options fast() {
  client_options o;
  o.connect_timeout = 1000ms;
  o.request_timeout = 2000ms;
  return o;
}

// A port nothing listens on: bound once by the kernel, then released.
uint16_t closed_port() {
  asio::io_context io;
  tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
  uint16_t p = a.local_endpoint().port();
  a.close();
  return p;
}

}  // namespace

TEST_CASE("GET sends an HTTP/1.1 request with Host and Connection: close and returns the body") {
  scripted_server server(
      [](tcp::socket& s, const auto&) { send(s, "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"ok\":true}"); });
  client c(loopback(server.port(), "/base"), fast());
  auto r = c.get("/v1/topics?namespace=%2F");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body == "{\"ok\":true}");
  std::string req = server.request();
  CHECK(req.starts_with("GET /base/v1/topics?namespace=%2F HTTP/1.1\r\n"));
  CHECK(req.find("\r\nHost: 127.0.0.1:" + std::to_string(server.port()) + "\r\n") != std::string::npos);
  CHECK(req.find("\r\nConnection: close\r\n") != std::string::npos);
  CHECK(req.find("Content-Length") == std::string::npos);
}

TEST_CASE("POST sends the body with Content-Type and Content-Length") {
  scripted_server server(
      [](tcp::socket& s, const auto&) { send(s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"); });
  client c(loopback(server.port()), fast());
  auto r = c.post("/v1/publish", R"({"topic":"t"})");
  REQUIRE(r);
  std::string req = server.request();
  CHECK(req.starts_with("POST /v1/publish HTTP/1.1\r\n"));
  CHECK(req.find("\r\nContent-Type: application/json\r\n") != std::string::npos);
  CHECK(req.find("\r\nContent-Length: 13\r\n") != std::string::npos);
  CHECK(req.ends_with("\r\n\r\n{\"topic\":\"t\"}"));
}

TEST_CASE("a chunked response arriving in small pieces with pauses is reassembled") {
  scripted_server server([](tcp::socket& s, const auto&) {
    std::string wire =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n";
    for (size_t i = 0; i < wire.size(); i += 5) {
      send(s, std::string_view(wire).substr(i, 5));
      std::this_thread::sleep_for(2ms);
    }
  });
  client c(loopback(server.port()), fast());
  auto r = c.get("/");
  REQUIRE(r);
  CHECK(r->body == "abc0123456789abcdef");
}

TEST_CASE("a response without length is read until the server closes") {
  scripted_server server([](tcp::socket& s, const auto&) { send(s, "HTTP/1.0 404 Not Found\r\n\r\nnot here"); });
  client c(loopback(server.port()), fast());
  auto r = c.get("/x");
  REQUIRE(r);
  CHECK(r->status == 404);
  CHECK(r->body == "not here");
}

TEST_CASE("a refused connection fails fast with connection_refused") {
  client c(loopback(closed_port()), fast());
  auto t0 = std::chrono::steady_clock::now();
  auto r = c.get("/");
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::connection_refused);
  CHECK(std::chrono::steady_clock::now() - t0 < 500ms);
  CHECK(c.last_error_detail().find("127.0.0.1") != std::string::npos);
}

TEST_CASE("a server that accepts but never answers times out after request_timeout") {
  scripted_server server([](tcp::socket&, const std::atomic<bool>& stopping) {
    while (!stopping) std::this_thread::sleep_for(5ms);
  });
  client_options o = fast();
  o.request_timeout = 300ms;
  client c(loopback(server.port()), o);
  auto t0 = std::chrono::steady_clock::now();
  auto r = c.get("/");
  auto took = std::chrono::steady_clock::now() - t0;
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::timeout);
  CHECK(took >= 290ms);
  CHECK(took < 1500ms);
}

TEST_CASE("a server that sends half a response and stalls also times out") {
  scripted_server server([](tcp::socket& s, const std::atomic<bool>& stopping) {
    send(s, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
    while (!stopping) std::this_thread::sleep_for(5ms);
  });
  client_options o = fast();
  o.request_timeout = 200ms;
  client c(loopback(server.port()), o);
  auto r = c.get("/");
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::timeout);
}

TEST_CASE("a server that closes without answering gives connection_closed") {
  scripted_server server([](tcp::socket&, const auto&) {});
  client c(loopback(server.port()), fast());
  auto r = c.get("/");
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::connection_closed);
}

TEST_CASE("a server speaking something else gives malformed_response") {
  scripted_server server([](tcp::socket& s, const auto&) { send(s, "SSH-2.0-OpenSSH_9.2\r\n"); });
  client c(loopback(server.port()), fast());
  auto r = c.get("/");
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::malformed_response);
}

TEST_CASE("raising the cancel flag ends a waiting request promptly with cancelled") {
  scripted_server server([](tcp::socket&, const std::atomic<bool>& stopping) {
    while (!stopping) std::this_thread::sleep_for(5ms);
  });
  std::atomic<bool> cancel{false};
  client_options o = fast();
  o.request_timeout = 10s;
  o.cancel = &cancel;
  client c(loopback(server.port()), o);
  std::thread raiser([&] {
    std::this_thread::sleep_for(100ms);
    cancel = true;
  });
  auto t0 = std::chrono::steady_clock::now();
  auto r = c.get("/");
  raiser.join();
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::cancelled);
  CHECK(std::chrono::steady_clock::now() - t0 < 1s);
}

TEST_CASE("host names are resolved (localhost)") {
  scripted_server server(
      [](tcp::socket& s, const auto&) { send(s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"); });
  url u = loopback(server.port());
  u.host = "localhost";
  client c(u, fast());
  auto r = c.get("/");
  REQUIRE(r);
  CHECK(r->body == "hi");
}

TEST_CASE("an unresolvable host name fails with resolve_failed") {
  url u = loopback(80);
  u.host = "no-such-host.invalid";
  client c(u, fast());
  auto r = c.get("/");
  REQUIRE_FALSE(r);
  CHECK((r.error() == errc::resolve_failed || r.error() == errc::connect_timeout));
}
