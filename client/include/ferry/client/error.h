// error.h - the client module's one error enum, an error value with context, and
// result<T>, returned by every fallible call on a hot or untrusted path.
//
// Exceptions are thrown only for start-up / configuration misuse (config_error from
// constructors: a malformed URL, an unusable spool directory, contradictory options).
// Everything that can go wrong at run time (refused connections, rejected auth,
// timeouts, a full outbox, a malformed server packet) arrives as an `error` in a
// result<T> or a callback.
#pragma once

#include <cassert>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

#include "ferry/client/export.h"

namespace ferry::client {

enum class errc : uint8_t {
  ok = 0,
  invalid_argument,   // bad topic/event/JSON, reserved name, event too large
  invalid_url,        // URL that cannot be parsed or uses an unsupported scheme (https/wss)
  connection_failed,  // TCP connect / WebSocket handshake failed (refused, unreachable, HTTP error)
  connect_timeout,    // no Engine.IO open packet within client_options::connect_timeout
  connect_error,      // the server refused the namespace (Socket.IO CONNECT_ERROR, e.g. rejected auth)
  disconnected,       // the connection dropped while the operation was pending
  server_disconnect,  // the server closed the namespace (Socket.IO DISCONNECT packet)
  ping_timeout,       // no ping from the server within pingInterval + pingTimeout
  protocol_error,     // a malformed or unexpected packet from the server
  reconnect_failed,   // reconnect_options::max_attempts consecutive attempts failed
  timeout,            // an ack or a delivery deadline passed
  closed,             // the object was closed or destroyed before the operation completed
  outbox_full,        // producer outbox at its bound (policy fail, or block timed out)
  dropped,            // evicted from a full outbox by the drop_oldest policy
  would_block,        // the block policy was used on the io_context's own thread
  rejected,           // the broker answered {ok:false}; error::message has its code and message
  too_many_pending,   // the pending-ack map of a socket is at its bound
  buffer_full,        // a socket's send buffer (packets queued while disconnected) is at its bound
  spool_error,        // the spool file could not be written or read
  spool_corrupt,      // a spool record failed its CRC check (not a torn tail)
  not_subscribed,     // the consumer has no subscription to that topic
};

[[nodiscard]] FERRY_CLIENT_API std::string_view to_string(errc e) noexcept;

// The std::error_code category of errc ("ferry.client").
[[nodiscard]] FERRY_CLIENT_API const std::error_category& client_category() noexcept;
[[nodiscard]] inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), client_category()};
}

// A failure: the code to branch on, and the detail a human needs (the OS error, the
// server's CONNECT_ERROR message, the broker's {code, message}, ...).
struct FERRY_CLIENT_API error {
  errc code = errc::ok;
  std::string message;

  // "<code>: <message>" (or just the code's text when there is no message).
  [[nodiscard]] std::string what() const;
};

// A value or an error. [[nodiscard]]: ignoring a failure is a warning; write `(void)`
// to ignore one on purpose.
template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : _v(std::in_place_index<0>, std::move(value)) {}  // NOLINT(google-explicit-constructor)
  result(error e) : _v(std::in_place_index<1>, std::move(e)) {}      // NOLINT(google-explicit-constructor)
  result(errc code, std::string message = {}) : _v(std::in_place_index<1>, error{code, std::move(message)}) {}

  [[nodiscard]] bool ok() const noexcept { return _v.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  [[nodiscard]] const error& err() const noexcept {
    assert(!ok());
    return std::get<1>(_v);
  }
  [[nodiscard]] errc code() const noexcept { return ok() ? errc::ok : std::get<1>(_v).code; }

  [[nodiscard]] T& value() & noexcept {
    assert(ok());
    return std::get<0>(_v);
  }
  [[nodiscard]] const T& value() const& noexcept {
    assert(ok());
    return std::get<0>(_v);
  }
  [[nodiscard]] T&& value() && noexcept {
    assert(ok());
    return std::get<0>(std::move(_v));
  }
  T* operator->() noexcept { return &value(); }
  const T* operator->() const noexcept { return &value(); }
  T& operator*() & noexcept { return value(); }
  const T& operator*() const& noexcept { return value(); }

 private:
  std::variant<T, error> _v;
};

template <>
class [[nodiscard]] result<void> {
 public:
  result() = default;
  result(error e) : _e(std::move(e)) {}  // NOLINT(google-explicit-constructor)
  result(errc code, std::string message = {}) : _e{code, std::move(message)} {}

  [[nodiscard]] bool ok() const noexcept { return _e.code == errc::ok; }
  explicit operator bool() const noexcept { return ok(); }
  [[nodiscard]] const error& err() const noexcept { return _e; }
  [[nodiscard]] errc code() const noexcept { return _e.code; }

 private:
  error _e;
};

// Thrown by constructors for start-up / configuration misuse only.
class FERRY_CLIENT_API config_error : public std::invalid_argument {
 public:
  config_error(errc code, const std::string& what) : std::invalid_argument(what), _code(code) {}
  [[nodiscard]] errc code() const noexcept { return _code; }

 private:
  errc _code;
};

}  // namespace ferry::client

template <>
struct std::is_error_code_enum<ferry::client::errc> : std::true_type {};
