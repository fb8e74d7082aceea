// socketio.h - a Socket.IO v5 client over WebSocket (Engine.IO v4, `?EIO=4&transport=websocket`),
// usable against any Socket.IO v4 server (Ferry or the reference Node server).
//
// Modelled on the official JavaScript client: `sio::client` is its Manager (one Engine.IO
// connection, reconnection with exponential backoff and jitter) and `sio::socket` its
// Socket (one namespace: CONNECT with an auth payload, emit/on, acks both ways with
// timeouts, binary attachments both ways, CONNECT_ERROR surfaced as an error, and the
// connection-state-recovery bookkeeping: the pid from the CONNECT ack and the last
// string argument of plain EVENT packets are sent back as auth {pid, offset} on
// reconnect).
//
// Threading: every method of client, socket and message is thread-safe. Work is
// serialised on a strand of the io_context the client was built on; every callback runs
// there, never inline in the calling thread. Callbacks must not block. The io_context
// may be run by one or several threads.
//
// Lifetime: client and socket are handles. Destroying the last client handle closes
// the connection without blocking; completion callbacks still pending are then invoked
// (on the io_context) with errc::closed, as asio does with operation_aborted. Event
// handlers are never called after close.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ferry/client/error.h"
#include "ferry/client/log.h"

namespace asio {
class io_context;
}

namespace ferry::client {

class runner;

namespace detail {
class manager_impl;
class socket_impl;
struct message_data;
}  // namespace detail

// Reconnection after an unexpected close (manager.ts reconnection* options). Delay of
// attempt n (0-based): min(initial_delay * 2^n, max_delay), then randomised by
// +-jitter * delay, never above max_delay.
struct reconnect_options {
  bool enabled = true;                            // reconnect after a close the application did not ask for
  uint32_t max_attempts = 0;                      // consecutive failures before giving up (reconnect_failed); 0 = never
  std::chrono::milliseconds initial_delay{1000};  // JS reconnectionDelay
  std::chrono::milliseconds max_delay{5000};      // JS reconnectionDelayMax
  double jitter = 0.5;                            // JS randomizationFactor, 0..1
};

namespace sio {

struct client_options {
  // "http://host:port[/namespace][?query]" or "ws://...". The URL's path names the
  // default namespace (as in the JS io(url)); query parameters go into the handshake.
  // https/wss are not supported by this build (errc::invalid_url).
  std::string url;
  std::string path = "/socket.io/";                  // Engine.IO endpoint path (JS `path`)
  std::chrono::milliseconds connect_timeout{20000};  // TCP + WebSocket + Engine.IO open (JS `timeout`)
  reconnect_options reconnect;
  bool auto_connect = true;                                  // socket() connects at once (JS autoConnect)
  std::vector<std::pair<std::string, std::string>> headers;  // extra HTTP headers on the WebSocket handshake
  size_t max_message_bytes = 16u << 20;       // inbound WebSocket message bound; above it the connection closes
  uint32_t max_attachments = 10;              // inbound binary packets announcing more are a protocol error
  log_sink log;                               // where log lines go; none = silent
  log_level min_log_level = log_level::info;  // lines below this level are not formatted
};

struct socket_options {
  std::string auth = "{}";                   // CONNECT auth payload, a JSON object
  std::chrono::milliseconds ack_timeout{0};  // default emit_with_ack timeout; 0 = none (disconnect still fails it)
  size_t max_buffered_packets = 1000;        // emits queued while not connected; beyond: errc::buffer_full
  size_t max_pending_acks = 10000;           // emit_with_ack awaiting a reply; beyond: errc::too_many_pending
  size_t max_receive_buffer = 100000;        // events received before the CONNECT ack; beyond: dispatched early
  bool dispatch_before_connect = false;      // true: events before the CONNECT ack are handled at once
  bool recovery = true;                      // send auth {pid, offset} on reconnect (connection-state recovery)
};

// Arguments of an emit or an ack: raw JSON values, comma-separated, with binary
// attachments referenced by {"_placeholder":true,"num":N} (socket.io-parser's format).
class FERRY_CLIENT_API args {
 public:
  args() = default;

  args& json(std::string_view raw_json);  // a raw JSON value, validated when sent
  args& string(std::string_view text);    // a JSON string
  args& number(int64_t v);
  args& number(double v);
  args& boolean(bool v);
  args& null();
  args& binary(std::string bytes);  // a Buffer argument
  // A placeholder for `bytes` to splice into a raw JSON value passed to json(), for
  // binary data nested inside objects or arrays.
  [[nodiscard]] std::string placeholder(std::string bytes);

  [[nodiscard]] const std::string& text() const noexcept { return _json; }
  [[nodiscard]] const std::vector<std::string>& binaries() const noexcept { return _binaries; }
  [[nodiscard]] bool empty() const noexcept { return _json.empty(); }

 private:
  void sep();
  std::string _json;
  std::vector<std::string> _binaries;
};

// A received event or ack reply. Cheap to copy (shared, immutable data).
class FERRY_CLIENT_API message {
 public:
  message() = default;
  // Built by the library from a received packet (detail::message_data is opaque).
  explicit message(std::shared_ptr<const detail::message_data> d) : _d(std::move(d)) {}

  [[nodiscard]] std::string_view event() const noexcept;                // event name ("" for an ack reply)
  [[nodiscard]] std::string_view args_json() const noexcept;            // arguments as raw comma-separated JSON
  [[nodiscard]] size_t size() const noexcept;                           // number of arguments
  [[nodiscard]] std::string_view arg(size_t i) const noexcept;          // raw JSON of argument i ("" if none)
  [[nodiscard]] std::optional<std::string> string_arg(size_t i) const;  // argument i if it is a JSON string
  [[nodiscard]] std::optional<std::string_view> binary_arg(size_t i) const noexcept;  // argument i if binary
  [[nodiscard]] const std::vector<std::string>& attachments() const noexcept;         // all binary attachments

  // True if the sender asked for an ack (the event carried an ack id).
  [[nodiscard]] bool wants_ack() const noexcept;
  // Sends the ack once; later calls and calls on messages without an ack id do nothing.
  // May be called later and from any thread; if the connection dropped meanwhile the ack
  // is discarded (the server times it out).
  void ack(const args& reply = {}) const;

 private:
  std::shared_ptr<const detail::message_data> _d;
};

enum class disconnect_reason : uint8_t {
  io_server_disconnect,  // the server sent DISCONNECT for the namespace (no reconnection)
  io_client_disconnect,  // socket::disconnect() or client::close()
  ping_timeout,          // no ping within pingInterval + pingTimeout
  transport_close,       // the connection was closed
  transport_error,       // the connection failed
  parse_error,           // the server sent a packet that does not decode
};
[[nodiscard]] FERRY_CLIENT_API std::string_view to_string(disconnect_reason r) noexcept;

struct connect_info {
  std::string sid;
  std::string pid;         // connection-state-recovery id ("" if the server has recovery off)
  bool recovered = false;  // the server restored the previous session (same pid)
};

using event_handler = std::function<void(const message&)>;
using any_handler = std::function<void(std::string_view event, const message&)>;
using ack_callback = std::function<void(result<message>)>;

class FERRY_CLIENT_API socket {
 public:
  socket() = default;  // an empty handle; valid() is false

  [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(_impl); }
  [[nodiscard]] const std::string& nsp() const noexcept;

  void connect();     // (re)joins the namespace; implicit with client_options::auto_connect
  void disconnect();  // sends DISCONNECT, fails pending acks with errc::closed, no reconnection

  [[nodiscard]] bool connected() const noexcept;
  [[nodiscard]] connect_info info() const;  // of the current (or last) connection

  // Handlers replace any earlier one for the same event. Registration is ordered with
  // later packets: register before connect() to see everything.
  void on(std::string event, event_handler handler);
  void off(const std::string& event);
  void on_any(any_handler handler);
  void on_connect(std::function<void(const connect_info&)> handler);
  void on_disconnect(std::function<void(disconnect_reason, const std::string& detail)> handler);
  void on_connect_error(std::function<void(const error&)> handler);

  // Queues an EVENT (BINARY_EVENT with attachments). Sent at once when connected,
  // otherwise buffered until the CONNECT ack (bounded: errc::buffer_full). Fails with
  // errc::invalid_argument for a reserved event name or arguments that are not JSON.
  [[nodiscard]] result<void> emit(std::string_view event, const args& a = {});

  // As emit, with an ack id; `cb` gets the reply, or errc::timeout after `timeout`
  // (0 = socket_options::ack_timeout), errc::disconnected when the connection drops after
  // sending, errc::closed on disconnect()/close, or the emit error.
  void emit_with_ack(std::string_view event, const args& a, ack_callback cb,
                     std::chrono::milliseconds timeout = std::chrono::milliseconds(0));
  [[nodiscard]] std::future<result<message>> emit_with_ack(
      std::string_view event, const args& a, std::chrono::milliseconds timeout = std::chrono::milliseconds(0));

 private:
  friend class client;
  explicit socket(std::shared_ptr<detail::socket_impl> impl, std::shared_ptr<void> keepalive)
      : _impl(std::move(impl)), _keepalive(std::move(keepalive)) {}
  std::shared_ptr<detail::socket_impl> _impl;
  std::shared_ptr<void> _keepalive;
};

class FERRY_CLIENT_API client {
 public:
  // Throws config_error for a malformed URL or invalid options (start-up misuse).
  client(asio::io_context& io, client_options options);
  client(runner& r, client_options options);
  ~client();  // close(), without blocking
  client(client&&) noexcept;
  client& operator=(client&&) noexcept;
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // The socket of a namespace ("" = the URL's namespace, or "/"); one per namespace, the
  // same object on every call (options of later calls are ignored).
  [[nodiscard]] sio::socket socket(std::string nsp = {}, socket_options options = {});

  void open();   // connects the Engine.IO connection (implicit with auto_connect)
  void close();  // closes it for good: no reconnection, sockets disconnected, pending acks fail

  // Connection-level errors: each failed attempt (connection_failed, connect_timeout),
  // protocol errors, ping timeouts, and finally reconnect_failed.
  void on_error(std::function<void(const error&)> handler);
  // Each reconnection attempt (1-based) before it starts.
  void on_reconnect_attempt(std::function<void(uint32_t attempt)> handler);

  [[nodiscard]] bool open_now() const noexcept;  // the Engine.IO connection is open

 private:
  std::shared_ptr<detail::manager_impl> _impl;
  std::shared_ptr<void> _keepalive;
};

}  // namespace sio
}  // namespace ferry::client
