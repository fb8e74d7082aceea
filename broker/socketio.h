// socketio.h - the Socket.IO v5 server layer and Ferry's C++ handler API.
//
//   ferry::broker::sio::server io(http, {});
//   auto& chat = io.of("/chat");
//   chat.use([](const socket_ptr& s, next_fn next) { next(std::nullopt); });  // middleware
//   chat.on_connection([&](const socket_ptr& s) {
//     s->join("lobby");
//     s->on("say", [&](const socket_ptr& s, message& m, responder reply) {
//       chat.to("lobby").except(s->id()).emit("said", m.args());  // encoded once
//       if (reply) reply.send(R"("ok")");                          // ack: ["ok"]
//     });
//   });
//
// Arguments travel as raw JSON (`args::json` is the comma-separated argument list
// without brackets) plus binary attachments; nothing is re-serialised on relay. The
// nlohmann helpers (args::from_json, message::to_json) are there for convenience.
//
// Threading: every object here belongs to the io thread. Call nothing from another
// thread; post to the io_context instead.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "broker/engineio.h"
#include "broker/http_server.h"
#include "protocol/json.h"
#include "protocol/socketio.h"

namespace ferry::broker::sio {

// Why a socket left its namespace (the reference server's reason strings).
enum class disconnect_reason : uint8_t {
  server_namespace_disconnect,  // socket->disconnect()
  client_namespace_disconnect,  // the client sent DISCONNECT
  server_shutting_down,
  ping_timeout,
  transport_close,
  transport_error,
  parse_error,
  forced_close,          // the Engine.IO session was closed by the server
  forced_server_close,   // socket->disconnect(true)
  slow_consumer,         // Ferry: outbound queue over its bound
  payload_too_large,     // Ferry: message above maxPayload
};
inline constexpr size_t disconnect_reason_count = 11;
[[nodiscard]] std::string_view to_string(disconnect_reason r) noexcept;

// Event or ack arguments: raw JSON values separated by commas, without brackets, and
// the binary attachments their {"_placeholder":true,"num":N} objects refer to.
struct args {
  std::string json;
  std::vector<std::string> binary;

  args() = default;
  args(std::string raw_json) : json(std::move(raw_json)) {}  // NOLINT(google-explicit-constructor)
  args(const char* raw_json) : json(raw_json) {}             // NOLINT(google-explicit-constructor)
  args(std::string raw_json, std::vector<std::string> attachments)
      : json(std::move(raw_json)), binary(std::move(attachments)) {}

  // From a JSON array; binary values (nlohmann::ordered_json::binary) become attachments.
  [[nodiscard]] static args from_json(const nlohmann::ordered_json& array);
};

// A fully encoded packet: the text frame and its binary attachment frames, ready to be
// queued on any number of sockets of one namespace.
struct packet_frames {
  frame_ptr text;
  std::vector<frame_ptr> binary;
};
[[nodiscard]] packet_frames encode_event(std::string_view nsp, std::string_view event, const args& a,
                                         std::optional<uint64_t> ack_id = std::nullopt);

// An incoming event or ack, valid during the handler call.
class message {
 public:
  message(std::string_view event, std::string_view args, std::vector<std::string>& attachments,
          bool compact = false, protocol::json::value first_arg = {}) noexcept
      : _event(event), _args(args), _attachments(attachments), _compact(compact), _first(first_arg) {}
  // The first argument as a validated JSON value (raw empty when there is none).
  [[nodiscard]] protocol::json::value first_arg() const noexcept { return _first; }
  // The arguments hold no insignificant whitespace (they can be relayed as they are).
  [[nodiscard]] bool compact() const noexcept { return _compact; }
  [[nodiscard]] std::string_view event() const noexcept { return _event; }  // empty for acks
  // The arguments after the event name, raw JSON, comma-separated, no brackets.
  [[nodiscard]] std::string_view args_json() const noexcept { return _args; }
  [[nodiscard]] std::vector<std::string>& attachments() noexcept { return _attachments; }
  // A copy of the arguments (raw JSON + attachments) for relaying.
  [[nodiscard]] sio::args args() const { return {std::string(_args), _attachments}; }
  // The arguments as a JSON array with placeholders replaced by binary values.
  [[nodiscard]] nlohmann::ordered_json to_json() const;

 private:
  std::string_view _event;
  std::string_view _args;
  std::vector<std::string>& _attachments;
  bool _compact = false;
  protocol::json::value _first;
};

class socket;
class namespace_;
class server;
class client;
using socket_ptr = std::shared_ptr<socket>;

// Heterogeneous lookup: finding a handler by string_view allocates nothing.
struct string_hash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// Sends the ack a client asked for. Cheap to copy; keeps no socket alive; a no-op
// when the client did not ask for an ack (operator bool is false) or has gone.
class responder {
 public:
  responder() = default;
  responder(std::weak_ptr<socket> s, uint64_t id) : _socket(std::move(s)), _id(id), _wanted(true) {}
  explicit operator bool() const noexcept { return _wanted; }
  [[nodiscard]] uint64_t id() const noexcept { return _id; }
  // Sends the ack once; later calls are ignored.
  void send(const args& a = {});

 private:
  std::weak_ptr<socket> _socket;
  uint64_t _id = 0;
  bool _wanted = false;
};

// What a middleware (or the connect hook) refuses a connection with; sent to the client
// as CONNECT_ERROR {"message":..., "data":...}.
struct connect_error {
  std::string message;
  std::string data_json;  // raw JSON; empty = no "data" field
};

using next_fn = std::function<void(std::optional<connect_error>)>;
using middleware = std::function<void(const socket_ptr&, next_fn)>;
using connection_handler = std::function<void(const socket_ptr&)>;
using event_handler = std::function<void(const socket_ptr&, message&, responder)>;
using disconnect_handler = std::function<void(const socket_ptr&, disconnect_reason)>;
// Result of a server->client ack: `reply` is null when the ack timed out or the socket
// disconnected first.
using ack_callback = std::function<void(message* reply)>;

// Runs after the middlewares accepted a CONNECT, before the socket joins the namespace
// and before the CONNECT ack. It may restore a previous session (set_recovered), send
// packets that must precede the CONNECT ack, or refuse the connection. It must call
// `done` exactly once, possibly later.
struct connect_outcome {
  std::optional<connect_error> error;
  std::string pid;  // included in the CONNECT ack when not empty
};
using connect_hook = std::function<void(const socket_ptr&, std::function<void(connect_outcome)> done)>;

struct handshake_info {
  std::string auth;                 // the CONNECT payload, raw JSON ("{}" when absent)
  std::chrono::system_clock::time_point issued;
};

class socket final : public std::enable_shared_from_this<socket> {
 public:
  socket(namespace_& nsp, std::shared_ptr<client> owner, std::string auth);
  ~socket();
  socket(const socket&) = delete;
  socket& operator=(const socket&) = delete;

  [[nodiscard]] const std::string& id() const noexcept { return _id; }
  [[nodiscard]] namespace_& nsp() noexcept { return _nsp; }
  [[nodiscard]] const handshake_info& handshake() const noexcept { return _handshake; }
  // The Engine.IO request that opened the connection (headers, query, remote address).
  [[nodiscard]] const http_request& request() const noexcept;
  [[nodiscard]] bool connected() const noexcept { return _connected; }
  [[nodiscard]] bool recovered() const noexcept { return _recovered; }
  // The underlying connection is still open (also true while the connect hook runs).
  [[nodiscard]] bool transport_open() const noexcept;

  // Handlers for this socket only (namespace_::on applies to every socket and is checked
  // after these).
  void on(std::string event, event_handler handler);
  void on_disconnect(disconnect_handler handler);

  void emit(std::string_view event, const args& a = {});
  // Asks the client for an ack; `cb` runs once with the reply, or with nullptr after
  // `timeout` or on disconnect. Fails (cb(nullptr) at once) beyond options::max_pending_acks.
  void emit_with_ack(std::string_view event, const args& a, std::chrono::milliseconds timeout, ack_callback cb);
  // Queues pre-encoded frames (a broadcast, or a broker delivery).
  void send(const packet_frames& frames);
  // Bytes queued toward this socket's client and not yet written.
  [[nodiscard]] size_t buffered_bytes() const noexcept;

  void join(std::string_view room);
  void leave(std::string_view room);
  [[nodiscard]] bool in(std::string_view room) const noexcept;
  [[nodiscard]] const std::vector<std::string>& rooms() const noexcept { return _rooms; }

  // Leaves the namespace (DISCONNECT is sent); with close_connection the whole
  // Engine.IO connection is closed too.
  void disconnect(bool close_connection = false);
  // Closes the underlying Engine.IO connection without a DISCONNECT packet, so the
  // client sees a lost connection and reconnects (every socket of the connection gets
  // disconnect_reason::forced_close). The reference server's socket.conn.close().
  void close_connection();

  // For the connect hook only: take over the id of a previous session and mark the
  // socket as recovered.
  void set_recovered(std::string previous_id);

  // Application state attached to the socket.
  std::shared_ptr<void> data;

 private:
  friend class client;
  friend class namespace_;
  friend class responder;

  void on_packet(const protocol::sio::packet& p, std::vector<std::string>& attachments);
  void on_event(const protocol::sio::packet& p, std::vector<std::string>& attachments);
  void on_ack(const protocol::sio::packet& p, std::vector<std::string>& attachments);
  void send_ack(uint64_t id, const args& a);
  void on_close(disconnect_reason reason);  // the socket is gone, for whatever reason
  void fail_pending_acks();

  struct pending_ack {
    ack_callback callback;
    std::unique_ptr<asio::steady_timer> timer;
  };

  namespace_& _nsp;
  std::shared_ptr<client> _client;
  std::string _id;
  handshake_info _handshake;
  bool _connected = false;
  bool _recovered = false;
  std::vector<std::string> _rooms;
  std::unordered_map<std::string, event_handler, string_hash, std::equal_to<>> _handlers;
  std::vector<disconnect_handler> _disconnect_handlers;
  std::unordered_map<uint64_t, pending_ack> _pending_acks;
};

// Emits to the sockets of a namespace that are in any of the `to` rooms (all sockets
// if none) and in none of the `except` rooms. A room may be a socket id.
class broadcast {
 public:
  explicit broadcast(namespace_& nsp) : _nsp(nsp) {}
  broadcast& to(std::string room) &;
  broadcast&& to(std::string room) &&;
  broadcast& except(std::string room) &;
  broadcast&& except(std::string room) &&;
  // Encodes once and queues the same frames on every recipient. Returns the count.
  size_t emit(std::string_view event, const args& a = {});
  size_t send(const packet_frames& frames);
  // The recipients, for callers that need to filter further.
  [[nodiscard]] std::vector<socket*> recipients() const;

 private:
  namespace_& _nsp;
  std::vector<std::string> _to;
  std::vector<std::string> _except;
};

struct namespace_options {
  // Sockets of this namespace receive the connection-state-recovery pid in the CONNECT
  // ack (set by the broker for namespaces with recovery on).
  bool send_pid = false;
};

class namespace_ {
 public:
  namespace_(server& srv, std::string name);
  namespace_(const namespace_&) = delete;
  namespace_& operator=(const namespace_&) = delete;

  [[nodiscard]] const std::string& name() const noexcept { return _name; }
  [[nodiscard]] server& srv() noexcept { return _server; }

  void use(middleware m);
  void on_connection(connection_handler h);
  // A handler for `event` on every socket of the namespace (one map for all sockets).
  void on(std::string event, event_handler h);
  void set_connect_hook(connect_hook hook) { _connect_hook = std::move(hook); }

  broadcast to(std::string room) { return broadcast(*this).to(std::move(room)); }
  broadcast except(std::string room) { return broadcast(*this).except(std::move(room)); }
  size_t emit(std::string_view event, const args& a = {}) { return broadcast(*this).emit(event, a); }

  [[nodiscard]] socket_ptr find(std::string_view id) const;
  [[nodiscard]] size_t size() const noexcept { return _sockets.size(); }
  [[nodiscard]] const std::unordered_map<std::string, socket*>& sockets() const noexcept { return _sockets; }
  [[nodiscard]] const std::unordered_map<std::string, std::unordered_set<socket*>>& rooms() const noexcept {
    return _rooms;
  }
  // Next server->client ack id (one counter per namespace, like the reference server).
  uint64_t next_ack_id() noexcept { return _next_ack_id++; }

 private:
  friend class socket;
  friend class client;
  friend class broadcast;

  void add(const socket_ptr& s, std::function<void(bool connected)> done);
  void run_middlewares(const socket_ptr& s, size_t index, std::function<void(std::optional<connect_error>)> done);
  void remove(socket& s);
  void join(socket& s, const std::string& room);
  void leave(socket& s, const std::string& room);
  [[nodiscard]] const event_handler* find_handler(std::string_view event) const;

  server& _server;
  std::string _name;
  std::vector<middleware> _middlewares;
  std::vector<connection_handler> _connection_handlers;
  std::unordered_map<std::string, event_handler, string_hash, std::equal_to<>> _handlers;
  connect_hook _connect_hook;
  std::unordered_map<std::string, socket*> _sockets;
  std::unordered_map<std::string, std::unordered_set<socket*>> _rooms;
  uint64_t _next_ack_id = 0;

 public:
  namespace_options options;
};

struct options {
  std::string path = "/socket.io/";
  // A client that has not connected to any namespace this long after the Engine.IO
  // handshake is disconnected (reference default 45 s).
  std::chrono::milliseconds connect_timeout{45000};
  // BINARY_* packets announcing more attachments than this are a parse error.
  uint32_t max_attachments = 10;
  // Server->client acks awaiting a reply, per socket.
  size_t max_pending_acks = 10000;
  // Socket.IO packet / JSON nesting limit.
  unsigned max_json_depth = protocol::json::default_max_depth;
};

struct stats {
  uint64_t connects = 0;
  uint64_t connect_errors = 0;
  uint64_t disconnects[disconnect_reason_count] = {};
  uint64_t packets_in = 0;
};

class server {
 public:
  // Registers the Engine.IO endpoint at options.path on `http`.
  server(asio::io_context& io, http_server& http, options opts = {}, eio::options engine = {});
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // The namespace `name`, created on first use.
  namespace_& of(const std::string& name);
  [[nodiscard]] namespace_* find_namespace(std::string_view name) noexcept;
  // Dynamic namespaces: a CONNECT to an unknown namespace creates it when `allow`
  // returns true; `on_created` then sets it up before the socket is added.
  void allow_namespaces(std::function<bool(std::string_view name, const std::string& auth)> allow,
                        std::function<void(namespace_&)> on_created = {});

  [[nodiscard]] eio::server& engine() noexcept { return _engine; }
  [[nodiscard]] asio::io_context& io() noexcept { return _io; }
  [[nodiscard]] const options& opts() const noexcept { return _opts; }
  [[nodiscard]] const stats& counters() const noexcept { return _stats; }
  [[nodiscard]] stats& counters_mut() noexcept { return _stats; }

  // Disconnects every client with server_shutting_down.
  void close_all();

 private:
  friend class client;
  void on_engine_session(const eio::session_ptr& s);

  asio::io_context& _io;
  options _opts;
  eio::server _engine;
  std::unordered_map<std::string, std::unique_ptr<namespace_>> _namespaces;
  std::function<bool(std::string_view, const std::string&)> _allow_namespace;
  std::function<void(namespace_&)> _on_namespace_created;
  stats _stats;
};

}  // namespace ferry::broker::sio
