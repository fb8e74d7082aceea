// ws_transport.h - one client WebSocket connection, with no websocketpp types.
//
// The only implementation is ws_transport_wspp.cc (websocketpp 0.8.2 on standalone Asio),
// compiled alone as C++17 because websocketpp does not build as C++20 with GCC 12 and
// costs ~30 s / 1 GB per translation unit. This header must stay valid C++17.
//
// Threading: the handlers run on an io_context thread inside the connection's own
// strand, not on the caller's strand; callers post them to wherever their state lives.
// send/close/terminate are thread-safe (websocketpp's connection mutex).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace asio {
class io_context;
}

namespace ferry::client::detail {

struct ws_handlers {
  std::function<void()> on_open;
  // One complete message; the string is the caller's to keep.
  std::function<void(bool binary, std::string payload)> on_message;
  // The connection could not be established (refused, DNS, HTTP status, timeout).
  std::function<void(std::string reason)> on_fail;
  // An open connection ended (`code` 1006 when closed without a close frame).
  std::function<void(uint16_t code, std::string reason)> on_close;
};

struct ws_options {
  std::string uri;  // ws://host:port/path?query
  std::vector<std::pair<std::string, std::string>> headers;
  size_t max_message_bytes = 16u << 20;
  std::chrono::milliseconds open_timeout{20000};
};

class ws_connection {
 public:
  virtual ~ws_connection() = default;
  // Queues one message; false (with `error`) when the connection is not open.
  virtual bool send(bool binary, const std::string& payload, std::string& error) = 0;
  // Starts the closing handshake (or aborts a connection that is not open yet).
  virtual void close(uint16_t code, const std::string& reason) = 0;
  // Drops the TCP connection at once. No handler is called afterwards.
  virtual void terminate() = 0;
  [[nodiscard]] virtual size_t buffered_bytes() const = 0;
};

// Starts connecting. Returns nullptr (and `error`) if the URI is rejected before any I/O.
// Otherwise exactly one of on_fail / on_open(..., later on_close) is called, unless
// terminate() comes first.
std::shared_ptr<ws_connection> ws_connect(asio::io_context& io, const ws_options& options, ws_handlers handlers,
                                          std::string& error);

}  // namespace ferry::client::detail
