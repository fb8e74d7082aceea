// sio_impl.h - the Socket.IO client's state machines (private).
//
// manager_impl: one Engine.IO connection over WebSocket (engine.io-protocol v4-current.md):
//   closed -> opening (WebSocket + waiting for the open packet) -> open -> closed, and
//   reconnecting (backoff timer) between attempts. Answers pings; a missing ping for
//   pingInterval + pingTimeout closes the connection ("ping timeout"). Reassembles
//   Socket.IO packets (protocol::sio::reassembler) and routes them by namespace.
// socket_impl: one namespace (socket.io-protocol v5-current.md): CONNECT/ack or
//   CONNECT_ERROR, events, acks both ways, the send and receive buffers of the JS client,
//   connection-state recovery (pid + last offset).
//
// All state lives on one strand of the io_context (shared by a manager, its sockets and
// the producer/consumer built on them). Public entry points post onto it; handlers
// capture weak_ptr and check the connection generation, so late events from an old
// WebSocket are ignored. Every pending ack fails exactly once: reply, timeout,
// disconnect, or close.
#pragma once

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "client/src/backoff.h"
#include "client/src/logging.h"
#include "client/src/sio_codec.h"
#include "client/src/url.h"
#include "client/src/ws_transport.h"
#include "ferry/client/socketio.h"
#include "protocol/socketio.h"

namespace ferry::client::detail {

using strand_type = asio::strand<asio::io_context::executor_type>;

// Runs `f`, logging (never propagating) an exception: an exception escaping a handler
// would escape io_context::run() in the host.
template <class F>
void guarded(const logger& log, const char* what, F&& f) noexcept {
  try {
    f();
  } catch (const std::exception& e) {
    log.error("{} threw: {}", what, e.what());
  } catch (...) {
    log.error("{} threw a non-standard exception", what);
  }
}

class manager_impl;

class socket_impl : public std::enable_shared_from_this<socket_impl> {
 public:
  socket_impl(std::weak_ptr<manager_impl> manager, asio::io_context& io, strand_type strand, std::string nsp,
              sio::socket_options options, logger log, std::shared_ptr<std::atomic<bool>> silenced);
  ~socket_impl();

  // ---- any thread
  [[nodiscard]] const std::string& nsp() const noexcept { return _nsp; }
  void connect();
  void disconnect();
  [[nodiscard]] bool connected() const noexcept { return _connected_flag.load(); }
  [[nodiscard]] sio::connect_info info() const;
  void on(std::string event, sio::event_handler h);
  void off(std::string event);
  void on_any(sio::any_handler h);
  void on_connect(std::function<void(const sio::connect_info&)> h);
  void on_disconnect(std::function<void(sio::disconnect_reason, const std::string&)> h);
  void on_connect_error(std::function<void(const error&)> h);
  [[nodiscard]] result<void> emit(std::string_view event, const sio::args& a);
  void emit_with_ack(std::string_view event, const sio::args& a, sio::ack_callback cb,
                     std::chrono::milliseconds timeout);
  // From message::ack(): sends an ACK if the message arrived on the current connection.
  void send_ack(uint64_t ack_id, uint64_t connection, const sio::args& a);

  // ---- strand only (called by the manager, or by code already on the strand)
  void strand_connect();
  void strand_disconnect(errc why);
  [[nodiscard]] bool active() const noexcept { return _active; }
  [[nodiscard]] bool is_connected() const noexcept { return _connected; }
  void on_transport_open();
  void on_packet(const protocol::sio::packet& p, std::vector<std::string>& attachments);
  void on_transport_close(sio::disconnect_reason reason, const std::string& detail);
  // A connection attempt failed; `final`: no more attempts (pending work fails with `e`).
  void on_attempt_failed(const error& e, bool final);
  // client::close(): fails everything with errc::closed, clears the handlers.
  void on_manager_closed();
  // An EVENT to send (arguments already validated).
  struct emit_request {
    std::string event;
    std::string args;  // raw comma-separated JSON
    std::vector<std::string> binaries;
  };
  // Emits on the strand. `counted`: the emit was counted in _queued by emit().
  void strand_emit(emit_request r, std::optional<sio::ack_callback> cb, std::chrono::milliseconds timeout,
                   bool counted = false);
  [[nodiscard]] uint64_t connection_generation() const noexcept { return _connection; }

 private:
  struct outgoing {
    std::string text;  // Socket.IO packet without the Engine.IO '4'
    std::vector<std::string> binaries;
    std::optional<uint64_t> ack_id;
    uint64_t connection = 0;  // for ACK packets: only valid on this connection (0 = any)
    bool counted = false;     // counted in _queued
  };
  struct pending_ack {
    sio::ack_callback cb;
    std::unique_ptr<asio::steady_timer> timer;
  };

  void send_connect();
  bool send_now(const outgoing& o);
  void flush_send_buffer();
  void dispatch(const std::shared_ptr<message_data>& m);
  void on_event_packet(const protocol::sio::packet& p, std::vector<std::string>& attachments);
  void on_ack_packet(const protocol::sio::packet& p, std::vector<std::string>& attachments);
  void fail_acks(const error& e, bool keep_buffered);
  void fail_buffer(const error& e);
  void set_connected(bool c);
  void finish_ack(uint64_t id, result<sio::message> r);

  // True once the application's handle is gone: no event handler is started after that.
  [[nodiscard]] bool silenced() const noexcept { return _silenced->load(); }

  std::weak_ptr<manager_impl> _manager;
  asio::io_context& _io;
  strand_type _strand;
  const std::string _nsp;
  std::shared_ptr<std::atomic<bool>> _silenced;
  const sio::socket_options _opts;
  logger _log;

  // strand state
  bool _active = false;
  bool _connected = false;
  uint64_t _connection = 0;  // generation: +1 per transport open
  std::string _sid, _pid, _last_offset;
  bool _recovered = false;
  uint64_t _next_ack_id = 0;
  std::map<uint64_t, pending_ack> _acks;
  std::deque<outgoing> _send_buffer;
  std::vector<std::shared_ptr<message_data>> _receive_buffer;
  bool _dispatch_early = false;  // receive buffer overflowed on this connection
  std::unordered_map<std::string, sio::event_handler> _handlers;
  sio::any_handler _any;
  std::function<void(const sio::connect_info&)> _on_connect;
  std::function<void(sio::disconnect_reason, const std::string&)> _on_disconnect;
  std::function<void(const error&)> _on_connect_error;

  // any thread
  std::atomic<bool> _connected_flag{false};
  std::atomic<size_t> _queued{0};  // emits posted or buffered, not yet sent
  mutable std::mutex _info_mutex;
  sio::connect_info _info;
};

class manager_impl : public std::enable_shared_from_this<manager_impl> {
 public:
  manager_impl(asio::io_context& io, sio::client_options options, server_url url);
  ~manager_impl();

  // ---- any thread
  void open();
  void close();
  // The owner's handle is being destroyed: from now on no event handler (on, on_any,
  // on_connect, on_disconnect, on_connect_error, on_error) is started; completion
  // callbacks (acks) still get their final error.
  void silence() noexcept { _silenced->store(true); }
  [[nodiscard]] bool silenced() const noexcept { return _silenced->load(); }
  std::shared_ptr<socket_impl> socket(std::string nsp, sio::socket_options options);
  void on_error(std::function<void(const error&)> h);
  void on_reconnect_attempt(std::function<void(uint32_t)> h);
  [[nodiscard]] bool is_open() const noexcept { return _open_flag.load(); }
  [[nodiscard]] strand_type& strand() noexcept { return _strand; }
  [[nodiscard]] asio::io_context& io() noexcept { return _io; }
  [[nodiscard]] const logger& log() const noexcept { return _log; }
  [[nodiscard]] const server_url& url() const noexcept { return _url; }
  [[nodiscard]] const sio::client_options& options() const noexcept { return _opts; }

  // Test seam: how a WebSocket is opened (ws_connect by default). Set before open().
  using connector = std::function<std::shared_ptr<ws_connection>(asio::io_context&, const ws_options&, ws_handlers,
                                                                 std::string& error)>;
  void set_connector(connector c) { _connector = std::move(c); }

  // ---- strand only
  void strand_open();
  void strand_close();
  // A socket wants its namespace: opens the connection, or sends CONNECT when open.
  void socket_wants_connect(socket_impl& s);
  // A socket left (disconnect, CONNECT_ERROR, server DISCONNECT): closes the connection
  // when no socket is active any more (as the JS Manager does).
  void socket_left();
  // Sends one Socket.IO packet (+ attachments). False if the connection is not open.
  bool send_packet(const std::string& sio_text, const std::vector<std::string>& binaries);
  [[nodiscard]] bool strand_is_open() const noexcept { return _state == state::open; }
  [[nodiscard]] const eio_handshake& handshake() const noexcept { return _hs; }
  [[nodiscard]] uint64_t opens() const noexcept { return _opens; }

 private:
  enum class state : uint8_t { closed, opening, open, reconnecting };

  void start_attempt();
  void on_ws_open(uint64_t gen);
  void on_ws_message(uint64_t gen, bool binary, std::string payload);
  void on_ws_fail(uint64_t gen, errc code, std::string reason);
  void on_ws_close(uint64_t gen, uint16_t code, std::string reason);
  void on_engine_open(std::string_view json);
  void on_sio_text(std::string_view text);
  void on_sio_binary(std::string_view bytes);
  void route(const protocol::sio::packet& p);
  void protocol_failure(const std::string& detail);
  void transport_closed(sio::disconnect_reason reason, const std::string& detail);
  void attempt_failed(const error& e);
  void schedule_reconnect();
  void reset_ping_timer();
  void drop_transport(bool graceful);
  void report(const error& e);
  std::vector<std::shared_ptr<socket_impl>> sockets_snapshot() const;

  asio::io_context& _io;
  strand_type _strand;
  const sio::client_options _opts;
  const server_url _url;
  const std::string _uri;
  logger _log;

  // strand state
  state _state = state::closed;
  bool _closed_for_good = false;
  uint64_t _gen = 0;  // +1 per WebSocket attempt
  uint64_t _opens = 0;
  std::shared_ptr<ws_connection> _ws;
  eio_handshake _hs;
  protocol::sio::reassembler _reassembler;
  backoff _backoff;
  asio::steady_timer _connect_timer;
  asio::steady_timer _ping_timer;
  asio::steady_timer _reconnect_timer;
  std::function<void(const error&)> _on_error;
  std::function<void(uint32_t)> _on_reconnect_attempt;
  connector _connector = ws_connect;

  std::atomic<bool> _open_flag{false};
  std::shared_ptr<std::atomic<bool>> _silenced = std::make_shared<std::atomic<bool>>(false);
  mutable std::mutex _sockets_mutex;
  std::map<std::string, std::shared_ptr<socket_impl>> _sockets;
};

}  // namespace ferry::client::detail
