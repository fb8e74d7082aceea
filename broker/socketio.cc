#include "broker/socketio.h"

#include <algorithm>

#include "broker/random.h"
#include "storage/logging.h"

namespace ferry::broker::sio {

namespace psio = ferry::protocol::sio;
namespace pjson = ferry::protocol::json;
using ojson = nlohmann::ordered_json;

namespace {
constexpr log::logger logger("sio");

disconnect_reason from_engine(eio::close_reason r) noexcept {
  switch (r) {
    case eio::close_reason::transport_close: return disconnect_reason::transport_close;
    case eio::close_reason::transport_error: return disconnect_reason::transport_error;
    case eio::close_reason::ping_timeout: return disconnect_reason::ping_timeout;
    case eio::close_reason::parse_error: return disconnect_reason::parse_error;
    case eio::close_reason::forced_close: return disconnect_reason::forced_close;
    case eio::close_reason::server_shutdown: return disconnect_reason::server_shutting_down;
    case eio::close_reason::slow_consumer: return disconnect_reason::slow_consumer;
    case eio::close_reason::payload_too_large: return disconnect_reason::payload_too_large;
  }
  return disconnect_reason::transport_close;
}

// "4" (Engine.IO message) followed by a Socket.IO packet.
frame_ptr message_frame(std::string&& text) { return make_frame(std::move(text), false); }

void replace_placeholders(ojson& v, const std::vector<std::string>& attachments) {
  if (v.is_object()) {
    auto it = v.find("_placeholder");
    if (it != v.end() && it->is_boolean() && it->get<bool>()) {
      auto num = v.find("num");
      if (num != v.end() && num->is_number_unsigned() && num->get<uint64_t>() < attachments.size()) {
        const std::string& bytes = attachments[num->get<size_t>()];
        v = ojson::binary(std::vector<uint8_t>(bytes.begin(), bytes.end()));
        return;
      }
    }
    for (auto& [k, e] : v.items()) replace_placeholders(e, attachments);
  } else if (v.is_array()) {
    for (auto& e : v) replace_placeholders(e, attachments);
  }
}

void extract_binary(ojson& v, std::vector<std::string>& out) {
  if (v.is_binary()) {
    const auto& b = v.get_binary();
    out.emplace_back(b.begin(), b.end());
    ojson placeholder = ojson::object();
    placeholder["_placeholder"] = true;
    placeholder["num"] = out.size() - 1;
    v = std::move(placeholder);
  } else if (v.is_object() || v.is_array()) {
    for (auto& e : v) extract_binary(e, out);
  }
}

}  // namespace

std::string_view to_string(disconnect_reason r) noexcept {
  switch (r) {
    case disconnect_reason::server_namespace_disconnect: return "server namespace disconnect";
    case disconnect_reason::client_namespace_disconnect: return "client namespace disconnect";
    case disconnect_reason::server_shutting_down: return "server shutting down";
    case disconnect_reason::ping_timeout: return "ping timeout";
    case disconnect_reason::transport_close: return "transport close";
    case disconnect_reason::transport_error: return "transport error";
    case disconnect_reason::parse_error: return "parse error";
    case disconnect_reason::forced_close: return "forced close";
    case disconnect_reason::forced_server_close: return "forced server close";
    case disconnect_reason::slow_consumer: return "slow consumer";
    case disconnect_reason::payload_too_large: return "payload too large";
  }
  return "unknown";
}

args args::from_json(const ojson& array) {
  args a;
  ojson copy = array.is_array() ? array : ojson::array({array});
  extract_binary(copy, a.binary);
  for (size_t i = 0; i < copy.size(); ++i) {
    if (i) a.json.push_back(',');
    a.json += copy[i].dump();
  }
  return a;
}

ojson message::to_json() const {
  std::string text;
  text.reserve(_args.size() + 2);
  text.push_back('[');
  text.append(_args);
  text.push_back(']');
  ojson v = ojson::parse(text, nullptr, false);
  if (v.is_discarded()) return ojson::array();
  replace_placeholders(v, _attachments);
  return v;
}

packet_frames encode_event(std::string_view nsp, std::string_view event, const args& a, std::optional<uint64_t> ack_id) {
  packet_frames f;
  std::string text;
  text.reserve(16 + nsp.size() + event.size() + a.json.size());
  text.push_back('4');
  psio::append_event(text, nsp, pjson::quoted(event), a.json, static_cast<uint32_t>(a.binary.size()), ack_id);
  f.text = message_frame(std::move(text));
  for (const auto& b : a.binary) f.binary.push_back(make_frame(b, true));
  return f;
}

// ---------------------------------------------------------------------------------
// client: one per Engine.IO session; demultiplexes namespaces.

class client final : public eio::session_handler, public std::enable_shared_from_this<client> {
 public:
  client(server& srv, eio::session_ptr conn)
      : _server(srv),
        _conn(std::move(conn)),
        _decoder({.max_attachments = srv.opts().max_attachments, .max_json_depth = srv.opts().max_json_depth}) {}

  void start() {
    _connect_timer = std::make_unique<asio::steady_timer>(_server.io());
    _connect_timer->expires_after(_server.opts().connect_timeout);
    _connect_timer->async_wait([weak = weak_from_this()](const asio::error_code& ec) {
      if (ec) return;
      auto self = weak.lock();
      if (self && self->_sockets.empty()) {
        logger.debug("client {}: no namespace joined within connect_timeout", self->_conn->id());
        self->close();
      }
    });
  }

  void on_eio_message(bool binary, std::string_view data) override {
    ++_server._stats.packets_in;
    protocol::errc err = protocol::errc::ok;
    auto st = binary ? _decoder.add_binary(data, err) : _decoder.add_text(data, err);
    if (st == psio::reassembler::status::need_binary) return;
    if (st == psio::reassembler::status::error) {
      logger.debug("client {}: undecodable packet: {}", _conn->id(), protocol::to_string(err));
      _conn->close(eio::close_reason::parse_error);
      return;
    }
    auto self = shared_from_this();  // handlers may close us
    on_packet(_decoder.current(), _decoder.attachments());
  }

  void on_eio_close(eio::close_reason reason) override {
    _closed = true;
    if (_connect_timer) _connect_timer->cancel();
    auto r = _close_reason ? *_close_reason : from_engine(reason);
    auto sockets = std::move(_sockets);
    _sockets.clear();
    for (auto& s : sockets) s->on_close(r);
    auto connecting = std::move(_connecting);
    _connecting.clear();
    _conn.reset();  // breaks the session <-> client cycle
  }

  void send(const packet_frames& f) {
    if (!_conn) return;
    _conn->send(f.text);
    for (const auto& b : f.binary) _conn->send(b);
  }
  void send_text(std::string&& text) {
    if (_conn) _conn->send(message_frame(std::move(text)));
  }
  [[nodiscard]] size_t buffered_bytes() const noexcept { return _conn ? _conn->buffered_bytes() : 0; }
  [[nodiscard]] const http_request& request() const noexcept {
    static const http_request empty;
    return _conn ? _conn->handshake_request() : empty;
  }
  [[nodiscard]] bool open() const noexcept { return !_closed && _conn && _conn->is_open(); }

  // Closes the Engine.IO connection; sockets see `reason`.
  void close(disconnect_reason reason = disconnect_reason::forced_server_close) {
    if (!_conn || _closed) return;
    _close_reason = reason;
    _conn->close(eio::close_reason::forced_close);
  }

  void connected(const socket_ptr& s) {
    std::erase(_connecting, s);
    _sockets.push_back(s);
    if (_connect_timer) {
      _connect_timer->cancel();
      _connect_timer.reset();
    }
  }
  void connect_failed(const socket_ptr& s) { std::erase(_connecting, s); }
  void removed(socket& s) {
    std::erase_if(_sockets, [&](const socket_ptr& p) { return p.get() == &s; });
  }

 private:
  socket_ptr find(std::string_view nsp) const {
    for (const auto& s : _sockets)
      if (s->_nsp.name() == nsp) return s;
    return nullptr;
  }

  void on_packet(const psio::packet& p, std::vector<std::string>& attachments) {
    if (p.type == psio::packet_type::connect) {
      connect(p.nsp, p.data.empty() ? std::string_view("{}") : p.data);
      return;
    }
    if (p.type == psio::packet_type::connect_error) {
      // Server-to-client only: the reference server closes the connection.
      logger.debug("client {}: CONNECT_ERROR from a client", _conn->id());
      close(disconnect_reason::parse_error);
      return;
    }
    if (auto s = find(p.nsp)) {
      s->on_packet(p, attachments);
      return;
    }
    // A packet for a namespace the client is not connected to: the reference server
    // closes the connection ("invalid state").
    logger.debug("client {}: packet for unconnected namespace {}", _conn->id(), p.nsp);
    close();
  }

  void connect(std::string_view nsp_name, std::string_view auth) {
    bool duplicate = false;
    for (const auto& s : _sockets) duplicate |= s->_nsp.name() == nsp_name;
    for (const auto& s : _connecting) duplicate |= s->_nsp.name() == nsp_name;
    if (duplicate) {  // a second CONNECT to the same namespace: the reference server closes
      logger.debug("client {}: duplicate CONNECT to {}", _conn->id(), nsp_name);
      close(disconnect_reason::parse_error);
      return;
    }
    namespace_* nsp = _server.find_namespace(nsp_name);
    std::string auth_copy(auth);
    if (!nsp && _server._allow_namespace && _server._allow_namespace(nsp_name, auth_copy)) {
      nsp = &_server.of(std::string(nsp_name));
      if (_server._on_namespace_created) _server._on_namespace_created(*nsp);
    }
    if (!nsp) {
      std::string text = "4";
      psio::append_header(text, psio::packet_type::connect_error, nsp_name, 0, std::nullopt);
      text += R"({"message":"Invalid namespace"})";
      ++_server._stats.connect_errors;
      send_text(std::move(text));
      return;
    }
    auto s = std::make_shared<socket>(*nsp, shared_from_this(), std::move(auth_copy));
    _connecting.push_back(s);
    nsp->add(s, [](bool) {});
  }

  server& _server;
  eio::session_ptr _conn;
  psio::reassembler _decoder;
  std::vector<socket_ptr> _sockets;     // connected, one per namespace
  std::vector<socket_ptr> _connecting;  // in middlewares or the connect hook
  std::unique_ptr<asio::steady_timer> _connect_timer;
  std::optional<disconnect_reason> _close_reason;
  bool _closed = false;
};

// ---------------------------------------------------------------------------------
// socket

socket::socket(namespace_& nsp, std::shared_ptr<client> owner, std::string auth)
    : _nsp(nsp), _client(std::move(owner)), _id(random_id()) {
  _handshake.auth = std::move(auth);
  _handshake.issued = std::chrono::system_clock::now();
}

socket::~socket() = default;

const http_request& socket::request() const noexcept { return _client->request(); }

bool socket::transport_open() const noexcept { return _client && _client->open(); }

void socket::close_connection() {
  if (_client) _client->close(disconnect_reason::forced_close);
}

void socket::on(std::string event, event_handler handler) { _handlers[std::move(event)] = std::move(handler); }

void socket::on_disconnect(disconnect_handler handler) { _disconnect_handlers.push_back(std::move(handler)); }

void socket::send(const packet_frames& frames) {
  if (_client) _client->send(frames);
}

size_t socket::buffered_bytes() const noexcept { return _client ? _client->buffered_bytes() : 0; }

void socket::emit(std::string_view event, const args& a) {
  if (!_connected && !_client) return;
  send(encode_event(_nsp.name(), event, a));
}

void socket::emit_with_ack(std::string_view event, const args& a, std::chrono::milliseconds timeout, ack_callback cb) {
  if (!_client || !_client->open() || _pending_acks.size() >= _nsp.srv().opts().max_pending_acks) {
    if (cb) cb(nullptr);
    return;
  }
  uint64_t id = _nsp.next_ack_id();
  pending_ack pa;
  pa.callback = std::move(cb);
  pa.timer = std::make_unique<asio::steady_timer>(_nsp.srv().io(), timeout);
  pa.timer->async_wait([weak = weak_from_this(), id](const asio::error_code& ec) {
    if (ec) return;
    auto self = weak.lock();
    if (!self) return;
    auto it = self->_pending_acks.find(id);
    if (it == self->_pending_acks.end()) return;
    auto callback = std::move(it->second.callback);
    self->_pending_acks.erase(it);
    if (callback) callback(nullptr);
  });
  _pending_acks.emplace(id, std::move(pa));
  send(encode_event(_nsp.name(), event, a, id));
}

void socket::send_ack(uint64_t id, const args& a) {
  if (!_client) return;
  std::string text = "4";
  psio::append_ack(text, _nsp.name(), id, a.json, static_cast<uint32_t>(a.binary.size()));
  packet_frames f;
  f.text = message_frame(std::move(text));
  for (const auto& b : a.binary) f.binary.push_back(make_frame(b, true));
  send(f);
}

void responder::send(const args& a) {
  if (!_wanted) return;
  _wanted = false;
  if (auto s = _socket.lock()) s->send_ack(_id, a);
}

void socket::join(std::string_view room) {
  std::string r(room);
  if (in(r)) return;
  _rooms.push_back(r);
  if (_connected) _nsp.join(*this, r);
}

void socket::leave(std::string_view room) {
  auto it = std::find(_rooms.begin(), _rooms.end(), room);
  if (it == _rooms.end()) return;
  std::string r = std::move(*it);
  _rooms.erase(it);
  if (_connected) _nsp.leave(*this, r);
}

bool socket::in(std::string_view room) const noexcept {
  return std::find(_rooms.begin(), _rooms.end(), room) != _rooms.end();
}

void socket::set_recovered(std::string previous_id) {
  _id = std::move(previous_id);
  _recovered = true;
}

void socket::disconnect(bool close_connection) {
  if (!_connected || !_client) return;
  auto self = shared_from_this();
  if (close_connection) {
    // Every socket of the connection leaves its namespace, then the connection closes.
    auto c = _client;
    std::string text = "4";
    psio::append_header(text, psio::packet_type::disconnect, _nsp.name(), 0, std::nullopt);
    c->send_text(std::move(text));
    on_close(disconnect_reason::server_namespace_disconnect);
    c->close(disconnect_reason::server_namespace_disconnect);
    return;
  }
  std::string text = "4";
  psio::append_header(text, psio::packet_type::disconnect, _nsp.name(), 0, std::nullopt);
  _client->send_text(std::move(text));
  on_close(disconnect_reason::server_namespace_disconnect);
}

void socket::fail_pending_acks() {
  auto pending = std::move(_pending_acks);
  _pending_acks.clear();
  for (auto& [id, pa] : pending) {
    if (pa.timer) pa.timer->cancel();
    if (pa.callback) pa.callback(nullptr);
  }
}

void socket::on_close(disconnect_reason reason) {
  if (!_connected) return;
  auto self = shared_from_this();
  _connected = false;
  ++_nsp.srv().counters_mut().disconnects[static_cast<size_t>(reason)];
  _nsp.remove(*this);
  fail_pending_acks();
  auto handlers = std::move(_disconnect_handlers);
  _disconnect_handlers.clear();
  for (auto& h : handlers) h(self, reason);
  if (_client) _client->removed(*this);
  _handlers.clear();  // handlers often capture the socket; break those cycles
}

void socket::on_packet(const psio::packet& p, std::vector<std::string>& attachments) {
  switch (p.type) {
    case psio::packet_type::event:
    case psio::packet_type::binary_event:
      on_event(p, attachments);
      break;
    case psio::packet_type::ack:
    case psio::packet_type::binary_ack:
      on_ack(p, attachments);
      break;
    case psio::packet_type::disconnect:
      on_close(disconnect_reason::client_namespace_disconnect);
      break;
    case psio::packet_type::connect:
    case psio::packet_type::connect_error:
      break;  // CONNECT is handled by the client; CONNECT_ERROR is server-to-client only
  }
}

void socket::on_event(const psio::packet& p, std::vector<std::string>& attachments) {
  if (p.data.empty()) return;  // an EVENT without payload names no event: ignored
  auto ev = psio::split_event(p);
  std::string unescaped;
  std::string_view name;
  if (ev.name.is_string()) {
    std::string_view body = ev.name.raw.substr(1, ev.name.raw.size() - 2);
    if (body.find('\\') == std::string_view::npos) {
      name = body;
    } else {
      unescaped = pjson::unescape(ev.name);
      name = unescaped;
    }
  } else {
    name = ev.name.raw;  // numeric event names are allowed by the protocol
  }
  const event_handler* h = nullptr;
  if (auto it = _handlers.find(name); it != _handlers.end()) h = &it->second;
  if (!h) h = _nsp.find_handler(name);
  if (!h) return;  // no listener: ignored, like the reference server
  message m(name, ev.args, attachments, p.compact, ev.first_arg);
  responder r = p.id ? responder(weak_from_this(), *p.id) : responder();
  auto self = shared_from_this();
  event_handler handler = *h;  // the handler may replace itself
  handler(self, m, r);
}

void socket::on_ack(const psio::packet& p, std::vector<std::string>& attachments) {
  if (!p.id) return;
  auto it = _pending_acks.find(*p.id);
  if (it == _pending_acks.end()) return;  // late or unknown ack: ignored
  auto callback = std::move(it->second.callback);
  if (it->second.timer) it->second.timer->cancel();
  _pending_acks.erase(it);
  message m({}, p.data.empty() ? std::string_view() : psio::array_contents(p.payload), attachments);
  if (callback) callback(&m);
}

// ---------------------------------------------------------------------------------
// broadcast

broadcast& broadcast::to(std::string room) & {
  _to.push_back(std::move(room));
  return *this;
}
broadcast&& broadcast::to(std::string room) && {
  _to.push_back(std::move(room));
  return std::move(*this);
}
broadcast& broadcast::except(std::string room) & {
  _except.push_back(std::move(room));
  return *this;
}
broadcast&& broadcast::except(std::string room) && {
  _except.push_back(std::move(room));
  return std::move(*this);
}

std::vector<socket*> broadcast::recipients() const {
  std::vector<socket*> out;
  auto excluded = [&](socket* s) {
    for (const auto& r : _except)
      if (s->id() == r || s->in(r)) return true;
    return false;
  };
  if (_to.empty()) {
    out.reserve(_nsp._sockets.size());
    for (auto& [id, s] : _nsp._sockets)
      if (!excluded(s)) out.push_back(s);
    return out;
  }
  std::unordered_set<socket*> seen;
  for (const auto& room : _to) {
    if (auto it = _nsp._rooms.find(room); it != _nsp._rooms.end()) {
      for (socket* s : it->second)
        if (!excluded(s) && seen.insert(s).second) out.push_back(s);
    }
    if (auto it = _nsp._sockets.find(room); it != _nsp._sockets.end()) {  // a socket id is a room
      if (!excluded(it->second) && seen.insert(it->second).second) out.push_back(it->second);
    }
  }
  return out;
}

size_t broadcast::send(const packet_frames& frames) {
  auto targets = recipients();
  for (socket* s : targets) s->send(frames);
  return targets.size();
}

size_t broadcast::emit(std::string_view event, const args& a) {
  return send(encode_event(_nsp.name(), event, a));
}

// ---------------------------------------------------------------------------------
// namespace

namespace_::namespace_(server& srv, std::string name) : _server(srv), _name(std::move(name)) {}

void namespace_::use(middleware m) { _middlewares.push_back(std::move(m)); }
void namespace_::on_connection(connection_handler h) { _connection_handlers.push_back(std::move(h)); }
void namespace_::on(std::string event, event_handler h) { _handlers[std::move(event)] = std::move(h); }

const event_handler* namespace_::find_handler(std::string_view event) const {
  auto it = _handlers.find(event);
  return it == _handlers.end() ? nullptr : &it->second;
}

socket_ptr namespace_::find(std::string_view id) const {
  auto it = _sockets.find(std::string(id));
  return it == _sockets.end() ? nullptr : it->second->shared_from_this();
}

void namespace_::run_middlewares(const socket_ptr& s, size_t index,
                                 std::function<void(std::optional<connect_error>)> done) {
  if (index >= _middlewares.size()) {
    done(std::nullopt);
    return;
  }
  _middlewares[index](s, [this, s, index, done = std::move(done)](std::optional<connect_error> err) mutable {
    if (err) {
      done(std::move(err));
      return;
    }
    run_middlewares(s, index + 1, std::move(done));
  });
}

void namespace_::add(const socket_ptr& s, std::function<void(bool)> done) {
  auto refuse = [this, s](const connect_error& err) {
    ++_server.counters_mut().connect_errors;
    std::string text = "4";
    psio::append_header(text, psio::packet_type::connect_error, _name, 0, std::nullopt);
    text += "{\"message\":";
    pjson::append_quoted(text, err.message);
    if (!err.data_json.empty()) {
      text += ",\"data\":";
      text += err.data_json;
    }
    text.push_back('}');
    if (s->_client) {
      s->_client->send_text(std::move(text));
      s->_client->connect_failed(s);
    }
  };
  auto finish = [this, s, done, refuse](connect_outcome outcome) {
    if (!s->_client || !s->_client->open()) {
      done(false);
      return;
    }
    if (outcome.error) {
      refuse(*outcome.error);
      done(false);
      return;
    }
    // A recovered session may still have a stale socket (its old transport has not
    // timed out yet): evict it first (socket.io#4880).
    if (auto it = _sockets.find(s->_id); it != _sockets.end()) {
      socket_ptr stale = it->second->shared_from_this();
      if (stale->_client) stale->_client->close(disconnect_reason::transport_close);
      if (_sockets.contains(s->_id)) stale->on_close(disconnect_reason::transport_close);
    }
    s->_connected = true;
    _sockets.emplace(s->_id, s.get());
    for (const auto& r : s->_rooms) join(*s, r);
    s->_client->connected(s);
    ++_server.counters_mut().connects;
    std::string text = "4";
    psio::append_header(text, psio::packet_type::connect, _name, 0, std::nullopt);
    text += "{\"sid\":";
    pjson::append_quoted(text, s->_id);
    if (!outcome.pid.empty()) {
      text += ",\"pid\":";
      pjson::append_quoted(text, outcome.pid);
    }
    text.push_back('}');
    s->_client->send_text(std::move(text));
    for (auto& h : _connection_handlers) {
      if (!s->_connected) break;
      h(s);
    }
    done(true);
  };
  run_middlewares(s, 0, [this, s, done, refuse, finish](std::optional<connect_error> err) {
    if (!s->_client || !s->_client->open()) {
      done(false);
      return;
    }
    if (err) {
      refuse(*err);
      done(false);
      return;
    }
    if (_connect_hook) {
      _connect_hook(s, finish);
    } else {
      finish({});
    }
  });
}

void namespace_::remove(socket& s) {
  for (const auto& r : s._rooms) leave(s, r);
  auto it = _sockets.find(s._id);
  if (it != _sockets.end() && it->second == &s) _sockets.erase(it);
}

void namespace_::join(socket& s, const std::string& room) { _rooms[room].insert(&s); }

void namespace_::leave(socket& s, const std::string& room) {
  auto it = _rooms.find(room);
  if (it == _rooms.end()) return;
  it->second.erase(&s);
  if (it->second.empty()) _rooms.erase(it);
}

// ---------------------------------------------------------------------------------
// server

server::server(asio::io_context& io, http_server& http, options opts, eio::options engine)
    : _io(io),
      _opts(std::move(opts)),
      _engine(io, [&] {
        engine.path = _opts.path;
        return engine;
      }(), [this](const eio::session_ptr& s) { on_engine_session(s); }) {
  http.route(_opts.path, [this](const std::shared_ptr<http_exchange>& ex) { _engine.handle_http(ex); });
  http.route_upgrade(
      _opts.path, [this](const http_request& req, http_response& reject) { return _engine.validate_upgrade(req, reject); },
      [this](std::shared_ptr<ws_connection> ws) { _engine.handle_upgrade(std::move(ws)); });
  of("/");
}

server::~server() { close_all(); }

namespace_& server::of(const std::string& name) {
  auto it = _namespaces.find(name);
  if (it != _namespaces.end()) return *it->second;
  auto nsp = std::make_unique<namespace_>(*this, name);
  auto& ref = *nsp;
  _namespaces.emplace(name, std::move(nsp));
  return ref;
}

namespace_* server::find_namespace(std::string_view name) noexcept {
  auto it = _namespaces.find(std::string(name));
  return it == _namespaces.end() ? nullptr : it->second.get();
}

void server::allow_namespaces(std::function<bool(std::string_view, const std::string&)> allow,
                              std::function<void(namespace_&)> on_created) {
  _allow_namespace = std::move(allow);
  _on_namespace_created = std::move(on_created);
}

void server::on_engine_session(const eio::session_ptr& s) {
  auto c = std::make_shared<client>(*this, s);
  s->set_handler(c);
  c->start();
}

void server::close_all() { _engine.close_all(eio::close_reason::server_shutdown); }

}  // namespace ferry::broker::sio
