// engineio.h - Engine.IO v4 sessions over the transport (docs/engine.io-protocol/v4-current.md).
//
// A session starts with an HTTP long-polling handshake or directly over WebSocket, may
// upgrade from polling to WebSocket (probe "2probe"/"3probe", then "5"), exchanges
// message packets, and is kept alive by server pings. Every session ends through
// session::close(reason), exactly once; the reason is logged and counted.
//
// Threading: everything runs on the io_context thread. No method is thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include "broker/transport.h"

namespace ferry::broker::eio {

// Why a session ended. The strings match the reference server's close reasons where
// one exists.
enum class close_reason : uint8_t {
  transport_close,    // "transport close": the client closed the connection or sent a close packet
  transport_error,    // "transport error": aborted or overlapping poll, socket error
  ping_timeout,       // "ping timeout": no pong within ping_timeout after a ping
  parse_error,        // "parse error": a packet that does not decode
  forced_close,       // "forced close": the application closed the session
  server_shutdown,    // "server shutting down"
  slow_consumer,      // "slow consumer": outbound queue above options::max_buffered_bytes
  payload_too_large,  // "payload too large": a message or POST body above max_payload
};
inline constexpr size_t close_reason_count = 8;
[[nodiscard]] std::string_view to_string(close_reason r) noexcept;

struct options {
  std::string path = "/socket.io/";  // URL prefix of the endpoint
  std::chrono::milliseconds ping_interval{25000};   // server ping period (reference default)
  std::chrono::milliseconds ping_timeout{20000};    // pong deadline after each ping (reference default)
  std::chrono::milliseconds upgrade_timeout{10000}; // a probe must finish the upgrade within this
  uint64_t max_payload = 1000000;     // largest message / POST body; advertised as maxPayload
  bool allow_polling = true;          // HTTP long-polling transport
  bool allow_websocket = true;        // WebSocket transport
  bool allow_upgrades = true;         // polling -> WebSocket upgrades
  // CORS: empty = no CORS headers (same-origin only); "*" = any origin; otherwise exact
  // origins, reflected back with Vary: Origin.
  std::vector<std::string> cors_origins;
  bool cors_credentials = false;      // Access-Control-Allow-Credentials: true (reflects the origin)
  // Bytes a session may have queued toward its client (polling buffer or WebSocket
  // send queue) before it is closed with slow_consumer. Protects broker memory.
  size_t max_buffered_bytes = 16 * 1024 * 1024;
};

// Receives a session's traffic; owned by the session until it closes.
class session_handler {
 public:
  virtual ~session_handler() = default;
  virtual void on_eio_message(bool binary, std::string_view data) = 0;
  virtual void on_eio_close(close_reason reason) = 0;
};

class server;

class session final : public std::enable_shared_from_this<session> {
 public:
  enum class transport_kind : uint8_t { polling, websocket };

  session(server& srv, std::string id, transport_kind kind, http_request handshake);
  ~session();
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  [[nodiscard]] const std::string& id() const noexcept { return _id; }
  [[nodiscard]] transport_kind transport() const noexcept { return _kind; }
  [[nodiscard]] bool is_open() const noexcept { return _state == state::open; }
  // The request that opened the session (query, headers, remote address; no body).
  [[nodiscard]] const http_request& handshake_request() const noexcept { return _handshake; }

  void set_handler(std::shared_ptr<session_handler> handler) { _handler = std::move(handler); }

  // Queues one message packet: a text frame holding "4<data>" or a binary frame with the
  // raw bytes. The frame may be shared with other sessions.
  void send(const frame_ptr& frame);
  // Bytes queued toward the client and not yet written.
  [[nodiscard]] size_t buffered_bytes() const noexcept;

  // Ends the session gracefully: queued packets are still delivered (on polling, to the
  // next GET together with the close packet), then the transport is closed. Idempotent.
  void close(close_reason reason);

 private:
  friend class server;
  class ws_binding;
  enum class state : uint8_t { open, closed };

  // transport events
  void on_poll(const std::shared_ptr<http_exchange>& ex);
  void on_post(const std::shared_ptr<http_exchange>& ex);
  void on_ws_message(bool probe, bool binary, std::string_view payload);
  void on_ws_close(bool probe);
  void attach_websocket(std::shared_ptr<ws_connection> ws, bool probe);

  // Ends the session at once because the client or its transport failed: nothing more
  // reaches the client (a waiting GET still gets the close packet).
  void terminate(close_reason reason);
  void finish_close(close_reason reason, bool drain);
  void on_packet(char type, bool binary, std::string_view data);
  void send_control(const frame_ptr& frame);
  void schedule_flush();
  void flush_poll(bool closing);
  void schedule_ping();
  void on_ping_timer(const asio::error_code& ec);
  void finish_upgrade();
  void release_poll_later();
  void abort_upgrade();

  server& _server;
  std::string _id;
  transport_kind _kind;
  state _state = state::open;
  bool _upgrading = false;     // a probe WebSocket is attached
  bool _probe_answered = false;
  bool _flush_scheduled = false;
  bool _awaiting_pong = false;
  bool _draining = false;      // closed by the server; the next GET gets the queue + close packet
  http_request _handshake;
  std::shared_ptr<session_handler> _handler;

  // polling
  std::shared_ptr<http_exchange> _poll;  // a GET waiting for packets
  std::vector<frame_ptr> _write_buffer;  // packets waiting for the next GET
  size_t _write_buffer_bytes = 0;
  // websocket
  std::shared_ptr<ws_connection> _ws;
  std::shared_ptr<ws_binding> _ws_binding;
  std::shared_ptr<ws_connection> _probe;
  std::shared_ptr<ws_binding> _probe_binding;

  asio::steady_timer _ping_timer;
  std::unique_ptr<asio::steady_timer> _upgrade_timer;
  std::unique_ptr<asio::steady_timer> _noop_timer;  // during an upgrade: release waiting GETs
};

using session_ptr = std::shared_ptr<session>;

// Counters for /metrics (io thread only).
struct stats {
  uint64_t sessions_opened = 0;
  uint64_t upgrades = 0;
  uint64_t closed[close_reason_count] = {};
  uint64_t http_rejected = 0;  // 400/403/413 answers
};

class server {
 public:
  using session_callback = std::function<void(const session_ptr&)>;

  server(asio::io_context& io, options opts, session_callback on_session);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Called by the HTTP router for requests whose path starts with options::path.
  void handle_http(const std::shared_ptr<http_exchange>& ex);
  // WebSocket upgrade requests for options::path.
  [[nodiscard]] bool validate_upgrade(const http_request& req, http_response& reject);
  void handle_upgrade(std::shared_ptr<ws_connection> ws);

  [[nodiscard]] size_t session_count() const noexcept { return _sessions.size(); }
  [[nodiscard]] const options& opts() const noexcept { return _opts; }
  [[nodiscard]] const stats& counters() const noexcept { return _stats; }
  [[nodiscard]] asio::io_context& io() noexcept { return _io; }

  // Closes every session (server shutdown).
  void close_all(close_reason reason);

  // Adds CORS headers for the request's Origin according to options.
  void add_cors_headers(const http_request& req, http_response& resp) const;

 private:
  friend class session;
  enum class eio_error : uint8_t {
    unknown_transport = 0,
    unknown_sid = 1,
    bad_handshake_method = 2,
    bad_request = 3,
    forbidden = 4,
    unsupported_protocol_version = 5,
  };
  [[nodiscard]] http_response error_response(const http_request& req, eio_error e);
  void handshake_polling(const std::shared_ptr<http_exchange>& ex);
  void on_session_closed(session& s, close_reason reason, bool drain);
  std::string new_id();

  asio::io_context& _io;
  options _opts;
  session_callback _on_session;
  std::unordered_map<std::string, session_ptr> _sessions;
  stats _stats;
};

}  // namespace ferry::broker::eio
