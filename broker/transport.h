// transport.h - HTTP and WebSocket on one listening port, with no websocketpp types.
//
// The only implementation lives in transport_wspp.cc (websocketpp 0.8.2 on standalone
// Asio, compiled as C++17 because websocketpp does not build as C++20 with GCC 12).
// Everything here runs on the io_context passed to create(); no method is thread-safe,
// call them on that io_context's thread (use asio::post from elsewhere).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <asio/io_context.hpp>

namespace ferry::broker {

struct http_request {
  std::string method;  // "GET", "POST", ...
  std::string version; // "HTTP/1.1"
  std::string path;    // "/socket.io/"
  std::string query;   // raw query string, without '?'
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string remote;  // "ip:port" of the peer

  // Case-insensitive header lookup; empty if absent.
  [[nodiscard]] std::string_view header(std::string_view name) const noexcept;
  // First query parameter with that name, percent-decoded; false if absent.
  [[nodiscard]] bool query_param(std::string_view name, std::string& out) const;
};

struct http_response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// One WebSocket message, encoded once and shared by every recipient (a broadcast is
// never re-encoded per connection). Long-polling sessions read payload() instead.
class outbound_frame {
 public:
  virtual ~outbound_frame() = default;
  [[nodiscard]] virtual std::string_view payload() const noexcept = 0;
  [[nodiscard]] virtual bool binary() const noexcept = 0;
};
using frame_ptr = std::shared_ptr<const outbound_frame>;

[[nodiscard]] frame_ptr make_frame(std::string payload, bool binary);

// An HTTP request waiting for its response. respond() exactly once; later calls are
// ignored. Dropping the last reference without responding answers 500.
class http_exchange {
 public:
  virtual ~http_exchange() = default;
  [[nodiscard]] virtual const http_request& request() const noexcept = 0;
  virtual void respond(http_response response) = 0;
  [[nodiscard]] virtual bool responded() const noexcept = 0;
  // Calls `on_gone` if the client closes the connection before respond() (long-polling
  // needs this: websocketpp reports a deferred response to a departed client as sent).
  virtual void watch_disconnect(std::function<void()> on_gone) = 0;
};

// Receives what happens on one WebSocket connection.
class ws_listener {
 public:
  virtual ~ws_listener() = default;
  // `payload` is valid only during the call.
  virtual void on_ws_message(bool binary, std::string_view payload) = 0;
  virtual void on_ws_close() = 0;
};

class ws_connection {
 public:
  virtual ~ws_connection() = default;
  [[nodiscard]] virtual const http_request& request() const noexcept = 0;
  // Hands the upgrade request over (its owner keeps it for the connection's life, so the
  // connection need not); request() is empty afterwards.
  [[nodiscard]] virtual http_request take_request() noexcept = 0;
  virtual void set_listener(std::weak_ptr<ws_listener> listener) = 0;
  virtual void send(const frame_ptr& frame) = 0;
  // Bytes queued for this connection and not yet written to the socket.
  [[nodiscard]] virtual size_t buffered_bytes() const noexcept = 0;
  // Sends a close frame after everything already queued.
  virtual void close(uint16_t code, std::string_view reason) = 0;
  [[nodiscard]] virtual bool open() const noexcept = 0;
};

struct transport_handlers {
  // Every plain HTTP request (including long-polling).
  std::function<void(std::shared_ptr<http_exchange>)> on_http;
  // An upgrade request: return true to accept; otherwise fill `reject`.
  std::function<bool(const http_request&, http_response& reject)> on_ws_validate;
  // A WebSocket that passed validation is open.
  std::function<void(std::shared_ptr<ws_connection>)> on_ws_open;
};

struct transport_options {
  std::string host = "127.0.0.1";          // address to bind
  uint16_t port = 0;                       // 0 = pick a free port
  size_t max_message_bytes = 1000000;      // WebSocket messages above this close the connection (1009)
  size_t max_http_body_bytes = 1000000;    // HTTP bodies above this are answered 413 by the transport
  size_t max_connections = 100000;         // TCP connections beyond this are refused at accept
  int listen_backlog = 1024;               // kernel accept queue
  std::chrono::milliseconds handshake_timeout{10000};  // HTTP header / WebSocket handshake deadline
};

class transport {
 public:
  virtual ~transport() = default;
  // Binds and starts accepting. Throws std::runtime_error if the address cannot be bound
  // (a start-up error).
  static std::unique_ptr<transport> create(asio::io_context& io, transport_options options,
                                           transport_handlers handlers);
  [[nodiscard]] virtual uint16_t port() const noexcept = 0;
  [[nodiscard]] virtual size_t connection_count() const noexcept = 0;
  // Stops accepting new connections; existing ones continue.
  virtual void stop_accepting() = 0;
};

}  // namespace ferry::broker
