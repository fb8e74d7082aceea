#include "client/src/sio_impl.h"

#include <asio/bind_executor.hpp>
#include <asio/post.hpp>

#include "client/src/ids.h"
#include "protocol/engineio.h"
#include "protocol/json.h"

namespace ferry::client::detail {

namespace pjson = ferry::protocol::json;
namespace psio = ferry::protocol::sio;
namespace peio = ferry::protocol::eio;

// =================================================================================
// socket_impl

socket_impl::socket_impl(std::weak_ptr<manager_impl> manager, asio::io_context& io, strand_type strand, std::string nsp,
                         sio::socket_options options, logger log, std::shared_ptr<std::atomic<bool>> silenced)
    : _manager(std::move(manager)),
      _io(io),
      _strand(std::move(strand)),
      _nsp(std::move(nsp)),
      _silenced(std::move(silenced)),
      _opts(std::move(options)),
      _log(std::move(log)) {}

socket_impl::~socket_impl() = default;

sio::connect_info socket_impl::info() const {
  std::lock_guard lock(_info_mutex);
  return _info;
}

void socket_impl::connect() {
  asio::post(_strand, [self = shared_from_this()] { self->strand_connect(); });
}

void socket_impl::disconnect() {
  asio::post(_strand, [self = shared_from_this()] {
    self->strand_disconnect(errc::closed);
    if (auto m = self->_manager.lock()) m->socket_left();
  });
}

void socket_impl::on(std::string event, sio::event_handler h) {
  asio::post(_strand, [self = shared_from_this(), event = std::move(event), h = std::move(h)]() mutable {
    self->_handlers[std::move(event)] = std::move(h);
  });
}

void socket_impl::off(std::string event) {
  asio::post(_strand, [self = shared_from_this(), event = std::move(event)] { self->_handlers.erase(event); });
}

void socket_impl::on_any(sio::any_handler h) {
  asio::post(_strand, [self = shared_from_this(), h = std::move(h)]() mutable { self->_any = std::move(h); });
}

void socket_impl::on_connect(std::function<void(const sio::connect_info&)> h) {
  asio::post(_strand, [self = shared_from_this(), h = std::move(h)]() mutable { self->_on_connect = std::move(h); });
}

void socket_impl::on_disconnect(std::function<void(sio::disconnect_reason, const std::string&)> h) {
  asio::post(_strand, [self = shared_from_this(), h = std::move(h)]() mutable { self->_on_disconnect = std::move(h); });
}

void socket_impl::on_connect_error(std::function<void(const error&)> h) {
  asio::post(_strand,
             [self = shared_from_this(), h = std::move(h)]() mutable { self->_on_connect_error = std::move(h); });
}

result<void> socket_impl::emit(std::string_view event, const sio::args& a) {
  if (auto v = validate_emit(event, a.text(), a.binaries().size()); !v) return v;
  if (_queued.load() >= _opts.max_buffered_packets)
    return {errc::buffer_full,
            "socket " + _nsp + ": " + std::to_string(_opts.max_buffered_packets) + " packets queued"};
  ++_queued;
  asio::post(_strand,
             [self = shared_from_this(), r = emit_request{std::string(event), a.text(), a.binaries()}]() mutable {
               self->strand_emit(std::move(r), std::nullopt, std::chrono::milliseconds(0), true);
             });
  return {};
}

void socket_impl::emit_with_ack(std::string_view event, const sio::args& a, sio::ack_callback cb,
                                std::chrono::milliseconds timeout) {
  auto fail_later = [&](error e) {
    asio::post(_strand, [self = shared_from_this(), cb = std::move(cb), e = std::move(e)] {
      guarded(self->_log, "ack callback", [&] { cb(e); });
    });
  };
  if (auto v = validate_emit(event, a.text(), a.binaries().size()); !v) return fail_later(v.err());
  if (_queued.load() >= _opts.max_buffered_packets)
    return fail_later(
        {errc::buffer_full, "socket " + _nsp + ": " + std::to_string(_opts.max_buffered_packets) + " packets queued"});
  ++_queued;
  asio::post(_strand, [self = shared_from_this(), r = emit_request{std::string(event), a.text(), a.binaries()},
                       cb = std::move(cb),
                       timeout]() mutable { self->strand_emit(std::move(r), std::move(cb), timeout, true); });
}

void socket_impl::strand_emit(emit_request r, std::optional<sio::ack_callback> cb, std::chrono::milliseconds timeout,
                              bool counted) {
  outgoing o;
  o.binaries = std::move(r.binaries);
  o.counted = counted;
  std::optional<uint64_t> id;
  if (cb) {
    if (_acks.size() >= _opts.max_pending_acks) {
      if (counted) --_queued;
      error e{errc::too_many_pending,
              "socket " + _nsp + ": " + std::to_string(_opts.max_pending_acks) + " acks pending"};
      guarded(_log, "ack callback", [&] { (*cb)(e); });
      return;
    }
    id = _next_ack_id++;
    o.ack_id = id;
    pending_ack pa;
    pa.cb = std::move(*cb);
    if (timeout.count() <= 0) timeout = _opts.ack_timeout;
    if (timeout.count() > 0) {
      pa.timer = std::make_unique<asio::steady_timer>(_io, timeout);
      pa.timer->async_wait(
          asio::bind_executor(_strand, [weak = weak_from_this(), id = *id, timeout](const asio::error_code& ec) {
            if (ec) return;  // operation_aborted: answered or failed already
            auto self = weak.lock();
            if (!self) return;
            // Still queued (never sent): it must not be sent after its caller gave up.
            for (auto it = self->_send_buffer.begin(); it != self->_send_buffer.end(); ++it) {
              if (it->ack_id == id) {
                if (it->counted) --self->_queued;
                self->_send_buffer.erase(it);
                break;
              }
            }
            self->finish_ack(id, error{errc::timeout, "no ack within " + std::to_string(timeout.count()) + " ms"});
          }));
    }
    _acks.emplace(*id, std::move(pa));
  }
  o.text = encode_event(_nsp, r.event, r.args, static_cast<uint32_t>(o.binaries.size()), id);
  if (_connected) {
    (void)send_now(o);
    if (counted) --_queued;
  } else {
    _send_buffer.push_back(std::move(o));
  }
}

void socket_impl::send_ack(uint64_t ack_id, uint64_t connection, const sio::args& a) {
  if (auto v = validate_args(a.text(), a.binaries().size()); !v) {
    _log.warn("socket {}: ack {} not sent: {}", _nsp, ack_id, v.err().what());
    return;
  }
  asio::post(_strand, [self = shared_from_this(), ack_id, connection, text = a.text(), bins = a.binaries()]() mutable {
    if (connection != self->_connection) {
      // The server forgot that ack id with the old connection (and will redeliver).
      self->_log.debug("socket {}: ack {} of an earlier connection dropped", self->_nsp, ack_id);
      return;
    }
    outgoing o;
    o.text = encode_ack(self->_nsp, ack_id, text, static_cast<uint32_t>(bins.size()));
    o.binaries = std::move(bins);
    o.connection = connection;
    if (self->_connected) {
      (void)self->send_now(o);
    } else {
      self->_send_buffer.push_back(std::move(o));  // the CONNECT ack is still outstanding
    }
  });
}

bool socket_impl::send_now(const outgoing& o) {
  auto m = _manager.lock();
  return m && m->send_packet(o.text, o.binaries);
}

void socket_impl::flush_send_buffer() {
  auto buffer = std::move(_send_buffer);
  _send_buffer.clear();
  for (auto& o : buffer) {
    if (o.counted) --_queued;
    if (o.connection != 0 && o.connection != _connection) continue;  // an ack of an earlier connection
    (void)send_now(o);
  }
}

void socket_impl::strand_connect() {
  if (_active) return;
  _active = true;
  if (auto m = _manager.lock()) m->socket_wants_connect(*this);
}

void socket_impl::strand_disconnect(errc why) {
  bool was_connected = _connected;
  if (_connected) {
    if (auto m = _manager.lock()) (void)m->send_packet(encode_disconnect(_nsp), {});
  }
  _active = false;
  set_connected(false);
  error e{why, "socket " + _nsp + " disconnected by the application"};
  fail_acks(e, false);
  fail_buffer(e);
  _receive_buffer.clear();
  if (was_connected && _on_disconnect && !silenced()) {
    guarded(_log, "disconnect handler", [&] { _on_disconnect(sio::disconnect_reason::io_client_disconnect, ""); });
  }
}

void socket_impl::on_manager_closed() {
  strand_disconnect(errc::closed);
  _handlers.clear();
  _any = nullptr;
  _on_connect = nullptr;
  _on_disconnect = nullptr;
  _on_connect_error = nullptr;
}

void socket_impl::set_connected(bool c) {
  _connected = c;
  _connected_flag.store(c);
}

void socket_impl::on_transport_open() {
  if (!_active) return;
  ++_connection;
  _dispatch_early = false;
  _receive_buffer.clear();
  send_connect();
}

void socket_impl::send_connect() {
  std::string auth = _opts.auth;
  if (_opts.recovery && !_pid.empty()) auth = recovery_auth(auth, _pid, _last_offset);
  if (auto m = _manager.lock()) (void)m->send_packet(encode_connect(_nsp, auth), {});
}

void socket_impl::on_packet(const psio::packet& p, std::vector<std::string>& attachments) {
  switch (p.type) {
    case psio::packet_type::connect: {
      if (_connected || !_active) return;  // duplicate or unsolicited: ignore
      auto ack = parse_connect_ack(p);
      if (!ack) {
        error e = ack.err();
        _active = false;
        fail_acks(e, false);
        fail_buffer(e);
        if (_on_connect_error && !silenced()) guarded(_log, "connect_error handler", [&] { _on_connect_error(e); });
        if (auto m = _manager.lock()) m->socket_left();
        return;
      }
      _recovered = !ack->pid.empty() && ack->pid == _pid;
      if (!_recovered) _last_offset.clear();
      _pid = ack->pid;
      _sid = ack->sid;
      {
        std::lock_guard lock(_info_mutex);
        _info = {_sid, _pid, _recovered};
      }
      set_connected(true);
      _log.debug("socket {}: connected sid={} pid={} recovered={}", _nsp, _sid, _pid, _recovered);
      auto received = std::move(_receive_buffer);
      _receive_buffer.clear();
      for (auto& m : received) dispatch(m);
      flush_send_buffer();
      if (_on_connect && !silenced()) {
        sio::connect_info info{_sid, _pid, _recovered};
        guarded(_log, "connect handler", [&] { _on_connect(info); });
      }
      return;
    }
    case psio::packet_type::disconnect: {
      bool was = _connected;
      _active = false;
      set_connected(false);
      error e{errc::server_disconnect, "the server closed namespace " + _nsp};
      fail_acks(e, false);
      fail_buffer(e);
      _receive_buffer.clear();
      _log.info("socket {}: disconnected by the server", _nsp);
      if (was && _on_disconnect && !silenced())
        guarded(_log, "disconnect handler", [&] { _on_disconnect(sio::disconnect_reason::io_server_disconnect, ""); });
      if (auto m = _manager.lock()) m->socket_left();
      return;
    }
    case psio::packet_type::event:
    case psio::packet_type::binary_event:
      on_event_packet(p, attachments);
      return;
    case psio::packet_type::ack:
    case psio::packet_type::binary_ack:
      on_ack_packet(p, attachments);
      return;
    case psio::packet_type::connect_error: {
      error e{errc::connect_error, connect_error_text(p)};
      _active = false;
      set_connected(false);
      fail_acks(e, false);
      fail_buffer(e);
      _receive_buffer.clear();
      _log.warn("socket {}: CONNECT_ERROR: {}", _nsp, e.message);
      if (_on_connect_error && !silenced()) guarded(_log, "connect_error handler", [&] { _on_connect_error(e); });
      if (auto m = _manager.lock()) m->socket_left();
      return;
    }
  }
}

void socket_impl::on_event_packet(const psio::packet& p, std::vector<std::string>& attachments) {
  if (!_active) return;
  auto m = make_message_data(p, std::move(attachments));
  m->socket = weak_from_this();
  m->connection = _connection;
  if (_connected || _opts.dispatch_before_connect || _dispatch_early) {
    dispatch(m);
    return;
  }
  if (_receive_buffer.size() >= _opts.max_receive_buffer) {
    _log.warn("socket {}: {} events before the CONNECT ack; dispatching them without waiting for it", _nsp,
              _receive_buffer.size());
    _dispatch_early = true;
    auto received = std::move(_receive_buffer);
    _receive_buffer.clear();
    for (auto& x : received) dispatch(x);
    dispatch(m);
    return;
  }
  _receive_buffer.push_back(std::move(m));
}

void socket_impl::dispatch(const std::shared_ptr<message_data>& m) {
  if (silenced()) return;
  sio::message msg(m);
  if (auto it = _handlers.find(m->event); it != _handlers.end() && it->second) {
    auto h = it->second;  // the handler may replace itself
    guarded(_log, "event handler", [&] { h(msg); });
  }
  if (_any) {
    auto h = _any;
    guarded(_log, "on_any handler", [&] { h(m->event, msg); });
  }
  // Connection-state recovery (socket.ts emitEvent): remember the last argument of a
  // plain event when it is a string; packets with an ack id are not counted.
  if (!_pid.empty() && !m->ack_id && !m->args.empty()) {
    std::string_view last = m->args.back();
    if (last.size() >= 2 && last.front() == '"') {
      auto v = pjson::parse(last);
      if (v && v->is_string()) _last_offset = pjson::unescape(*v);
    }
  }
}

void socket_impl::on_ack_packet(const psio::packet& p, std::vector<std::string>& attachments) {
  if (!p.id) {
    _log.debug("socket {}: ack without an id ignored", _nsp);
    return;
  }
  auto it = _acks.find(*p.id);
  if (it == _acks.end()) {
    _log.debug("socket {}: ack {} for no pending emit (late or duplicate)", _nsp, *p.id);
    return;
  }
  auto m = make_message_data(p, std::move(attachments));
  m->socket = weak_from_this();
  m->connection = _connection;
  finish_ack(*p.id, sio::message(m));
}

void socket_impl::finish_ack(uint64_t id, result<sio::message> r) {
  auto it = _acks.find(id);
  if (it == _acks.end()) return;
  pending_ack pa = std::move(it->second);
  _acks.erase(it);
  if (pa.timer) pa.timer->cancel();
  if (pa.cb) guarded(_log, "ack callback", [&] { pa.cb(std::move(r)); });
}

void socket_impl::fail_acks(const error& e, bool keep_buffered) {
  std::vector<uint64_t> ids;
  for (const auto& [id, pa] : _acks) {
    if (keep_buffered) {
      bool buffered = false;
      for (const auto& o : _send_buffer)
        if (o.ack_id == id) buffered = true;
      if (buffered) continue;  // not sent yet: it goes out after the reconnect (socket.ts _clearAcks)
    }
    ids.push_back(id);
  }
  for (uint64_t id : ids) finish_ack(id, e);
}

void socket_impl::fail_buffer(const error& e) {
  auto buffer = std::move(_send_buffer);
  _send_buffer.clear();
  for (auto& o : buffer) {
    if (o.counted) --_queued;
    if (o.ack_id) finish_ack(*o.ack_id, e);
  }
}

void socket_impl::on_transport_close(sio::disconnect_reason reason, const std::string& detail) {
  _receive_buffer.clear();  // not handed out: recovery sends them again
  // Acks of an earlier connection are meaningless on the next one.
  std::erase_if(_send_buffer, [](const outgoing& o) { return o.connection != 0; });
  if (!_connected) return;
  set_connected(false);
  fail_acks({errc::disconnected,
             "connection lost: " + std::string(sio::to_string(reason)) + (detail.empty() ? "" : " (" + detail + ")")},
            true);
  if (_on_disconnect && !silenced()) guarded(_log, "disconnect handler", [&] { _on_disconnect(reason, detail); });
}

void socket_impl::on_attempt_failed(const error& e, bool final) {
  if (!_active || _connected) return;
  if (final) {
    _active = false;
    fail_acks(e, false);
    fail_buffer(e);
  }
  if (_on_connect_error && !silenced()) guarded(_log, "connect_error handler", [&] { _on_connect_error(e); });
}

// =================================================================================
// manager_impl

manager_impl::manager_impl(asio::io_context& io, sio::client_options options, server_url url)
    : _io(io),
      _strand(asio::make_strand(io)),
      _opts(std::move(options)),
      _url(std::move(url)),
      _uri(websocket_uri(_url, _opts.path)),
      _log(_opts.log, _opts.min_log_level, "ferry-client: "),
      _reassembler(psio::decode_limits{_opts.max_attachments, pjson::default_max_depth}),
      _backoff(_opts.reconnect.initial_delay, _opts.reconnect.max_delay, _opts.reconnect.jitter, random_seed()),
      _connect_timer(io),
      _ping_timer(io),
      _reconnect_timer(io) {}

manager_impl::~manager_impl() {
  if (_ws) _ws->terminate();
}

void manager_impl::open() {
  asio::post(_strand, [self = shared_from_this()] {
    self->_closed_for_good = false;
    self->strand_open();
  });
}

void manager_impl::close() {
  asio::post(_strand, [self = shared_from_this()] { self->strand_close(); });
}

void manager_impl::on_error(std::function<void(const error&)> h) {
  asio::post(_strand, [self = shared_from_this(), h = std::move(h)]() mutable { self->_on_error = std::move(h); });
}

void manager_impl::on_reconnect_attempt(std::function<void(uint32_t)> h) {
  asio::post(_strand,
             [self = shared_from_this(), h = std::move(h)]() mutable { self->_on_reconnect_attempt = std::move(h); });
}

std::shared_ptr<socket_impl> manager_impl::socket(std::string nsp, sio::socket_options options) {
  if (nsp.empty()) nsp = _url.nsp;
  if (nsp.empty() || nsp[0] != '/') nsp.insert(nsp.begin(), '/');
  std::lock_guard lock(_sockets_mutex);
  auto it = _sockets.find(nsp);
  if (it != _sockets.end()) return it->second;
  auto s = std::make_shared<socket_impl>(weak_from_this(), _io, _strand, nsp, std::move(options), _log, _silenced);
  _sockets.emplace(std::move(nsp), s);
  return s;
}

std::vector<std::shared_ptr<socket_impl>> manager_impl::sockets_snapshot() const {
  std::lock_guard lock(_sockets_mutex);
  std::vector<std::shared_ptr<socket_impl>> out;
  out.reserve(_sockets.size());
  for (const auto& [n, s] : _sockets) out.push_back(s);
  return out;
}

void manager_impl::strand_open() {
  if (_state != state::closed) return;
  start_attempt();
}

void manager_impl::strand_close() {
  _closed_for_good = true;
  _reconnect_timer.cancel();
  _connect_timer.cancel();
  _ping_timer.cancel();
  for (auto& s : sockets_snapshot()) s->on_manager_closed();
  drop_transport(true);
  _state = state::closed;
  _open_flag.store(false);
}

void manager_impl::socket_wants_connect(socket_impl& s) {
  switch (_state) {
    case state::open:
      s.on_transport_open();
      break;
    case state::closed:
      _closed_for_good = false;
      start_attempt();
      break;
    case state::opening:
    case state::reconnecting:
      break;  // CONNECT goes out when the connection opens
  }
}

void manager_impl::socket_left() {
  for (auto& s : sockets_snapshot())
    if (s->active()) return;
  // No namespace wants the connection any more (manager.ts _destroy -> _close).
  _reconnect_timer.cancel();
  _connect_timer.cancel();
  _ping_timer.cancel();
  drop_transport(true);
  if (_state != state::closed) _log.debug("no active namespace: connection closed");
  _state = state::closed;
  _open_flag.store(false);
}

void manager_impl::start_attempt() {
  _state = state::opening;
  uint64_t g = ++_gen;
  _reassembler.reset();
  std::weak_ptr<manager_impl> weak = weak_from_this();
  strand_type strand = _strand;
  ws_handlers h;
  h.on_open = [weak, strand, g] {
    asio::post(strand, [weak, g] {
      if (auto s = weak.lock()) s->on_ws_open(g);
    });
  };
  h.on_message = [weak, strand, g](bool binary, std::string payload) {
    asio::post(strand, [weak, g, binary, payload = std::move(payload)]() mutable {
      if (auto s = weak.lock()) s->on_ws_message(g, binary, std::move(payload));
    });
  };
  h.on_fail = [weak, strand, g](std::string reason) {
    asio::post(strand, [weak, g, reason = std::move(reason)]() mutable {
      if (auto s = weak.lock()) s->on_ws_fail(g, errc::connection_failed, std::move(reason));
    });
  };
  h.on_close = [weak, strand, g](uint16_t code, std::string reason) {
    asio::post(strand, [weak, g, code, reason = std::move(reason)]() mutable {
      if (auto s = weak.lock()) s->on_ws_close(g, code, std::move(reason));
    });
  };
  ws_options wo;
  wo.uri = _uri;
  wo.headers = _opts.headers;
  wo.max_message_bytes = _opts.max_message_bytes;
  wo.open_timeout = _opts.connect_timeout;
  std::string err;
  _log.debug("connecting to {}", _uri);
  _ws = _connector(_io, wo, std::move(h), err);
  if (!_ws) {
    asio::post(_strand, [weak, g, err = std::move(err)]() mutable {
      if (auto s = weak.lock()) s->on_ws_fail(g, errc::invalid_url, std::move(err));
    });
    return;
  }
  _connect_timer.expires_after(_opts.connect_timeout);
  _connect_timer.async_wait(asio::bind_executor(_strand, [weak, g](const asio::error_code& ec) {
    if (ec) return;
    auto s = weak.lock();
    if (!s || s->_gen != g || s->_state != state::opening) return;
    s->on_ws_fail(g, errc::connect_timeout,
                  "no Engine.IO handshake within " + std::to_string(s->_opts.connect_timeout.count()) + " ms");
  }));
}

void manager_impl::on_ws_open(uint64_t gen) {
  if (gen != _gen || _state != state::opening) return;
  _log.debug("WebSocket open to {}; waiting for the Engine.IO handshake", _uri);
}

void manager_impl::on_ws_fail(uint64_t gen, errc code, std::string reason) {
  if (gen != _gen || _state != state::opening) return;
  drop_transport(false);
  attempt_failed({code, _uri + ": " + reason});
}

void manager_impl::on_ws_close(uint64_t gen, uint16_t code, std::string reason) {
  if (gen != _gen) return;
  std::string detail = "WebSocket closed with code " + std::to_string(code) + (reason.empty() ? "" : ": " + reason);
  if (_state == state::opening) {
    _ws.reset();
    attempt_failed({errc::connection_failed, _uri + ": closed before the Engine.IO handshake (" + detail + ")"});
    return;
  }
  if (_state != state::open) return;
  _ws.reset();
  transport_closed(code == 1006 ? sio::disconnect_reason::transport_error : sio::disconnect_reason::transport_close,
                   detail);
}

void manager_impl::on_ws_message(uint64_t gen, bool binary, std::string payload) {
  if (gen != _gen) return;
  if (_state == state::opening) {
    auto p = binary ? protocol::result<peio::packet>(protocol::errc::unknown_packet_type) : peio::decode_text(payload);
    if (!p || p->type != peio::packet_type::open) {
      drop_transport(false);
      attempt_failed({errc::protocol_error, _uri + ": the first packet is not an Engine.IO open packet (is this a "
                                                   "Socket.IO v3/v4 server?)"});
      return;
    }
    on_engine_open(p->data);
    return;
  }
  if (_state != state::open) return;
  if (binary) {
    on_sio_binary(payload);
    return;
  }
  auto p = peio::decode_text(payload);
  if (!p) {
    protocol_failure("undecodable Engine.IO packet: " + std::string(protocol::to_string(p.error())));
    return;
  }
  switch (p->type) {
    case peio::packet_type::ping: {
      std::string pong = "3";
      pong.append(p->data);
      std::string err;
      if (_ws) (void)_ws->send(false, pong, err);
      reset_ping_timer();
      break;
    }
    case peio::packet_type::message:
      on_sio_text(p->data);
      break;
    case peio::packet_type::close:
      transport_closed(sio::disconnect_reason::transport_close, "the server sent an Engine.IO close packet");
      break;
    case peio::packet_type::pong:
    case peio::packet_type::noop:
    case peio::packet_type::upgrade:
    case peio::packet_type::open:
      break;
  }
}

void manager_impl::on_engine_open(std::string_view json) {
  auto hs = parse_handshake(json);
  if (!hs) {
    drop_transport(false);
    attempt_failed({hs.err().code, _uri + ": " + hs.err().message});
    return;
  }
  _hs = std::move(*hs);
  _state = state::open;
  _open_flag.store(true);
  _connect_timer.cancel();
  ++_opens;
  _backoff.reset();
  reset_ping_timer();
  _log.info("connected to {} (sid {}, pingInterval {} ms, pingTimeout {} ms, maxPayload {})", _uri, _hs.sid,
            _hs.ping_interval.count(), _hs.ping_timeout.count(), _hs.max_payload);
  for (auto& s : sockets_snapshot()) {
    if (_state != state::open) break;  // a handler closed us
    s->on_transport_open();
  }
}

void manager_impl::on_sio_text(std::string_view text) {
  protocol::errc err = protocol::errc::ok;
  auto st = _reassembler.add_text(text, err);
  if (st == psio::reassembler::status::error) {
    protocol_failure("undecodable Socket.IO packet: " + std::string(protocol::to_string(err)));
    return;
  }
  if (st == psio::reassembler::status::complete) route(_reassembler.current());
}

void manager_impl::on_sio_binary(std::string_view bytes) {
  protocol::errc err = protocol::errc::ok;
  auto st = _reassembler.add_binary(bytes, err);
  if (st == psio::reassembler::status::error) {
    protocol_failure("unexpected binary message: " + std::string(protocol::to_string(err)));
    return;
  }
  if (st == psio::reassembler::status::complete) route(_reassembler.current());
}

void manager_impl::route(const psio::packet& p) {
  std::shared_ptr<socket_impl> s;
  {
    std::lock_guard lock(_sockets_mutex);
    auto it = _sockets.find(std::string(p.nsp));
    if (it != _sockets.end()) s = it->second;
  }
  if (!s) {
    _log.debug("packet for namespace {} that has no socket: ignored", p.nsp);
    return;
  }
  auto self = shared_from_this();  // handlers may drop the client
  s->on_packet(p, _reassembler.attachments());
}

void manager_impl::protocol_failure(const std::string& detail) {
  error e{errc::protocol_error, _uri + ": " + detail};
  _log.error("{}; closing the connection", e.message);
  report(e);
  transport_closed(sio::disconnect_reason::parse_error, detail);
}

void manager_impl::transport_closed(sio::disconnect_reason reason, const std::string& detail) {
  if (_state != state::open) return;
  drop_transport(reason == sio::disconnect_reason::transport_close);
  _state = state::closed;
  _open_flag.store(false);
  _ping_timer.cancel();
  _reassembler.reset();
  _log.info("connection to {} closed: {}{}", _uri, sio::to_string(reason), detail.empty() ? "" : " (" + detail + ")");
  auto keep = shared_from_this();
  for (auto& s : sockets_snapshot()) s->on_transport_close(reason, detail);
  if (_closed_for_good || _state != state::closed) return;
  bool any_active = false;
  for (auto& s : sockets_snapshot()) any_active |= s->active();
  if (_opts.reconnect.enabled && any_active) schedule_reconnect();
}

void manager_impl::attempt_failed(const error& e) {
  _state = state::closed;
  _open_flag.store(false);
  _connect_timer.cancel();
  _log.warn("connection attempt failed: {}", e.what());
  report(e);
  if (_closed_for_good) return;
  bool can_retry = _opts.reconnect.enabled &&
                   (_opts.reconnect.max_attempts == 0 || _backoff.attempts() < _opts.reconnect.max_attempts);
  if (!can_retry) {
    error final_error = e;
    if (_opts.reconnect.enabled) {
      final_error = {errc::reconnect_failed, "gave up after " + std::to_string(_backoff.attempts()) +
                                                 " reconnection attempts; last error: " + e.what()};
      report(final_error);
    }
    for (auto& s : sockets_snapshot()) s->on_attempt_failed(final_error, true);
    return;
  }
  for (auto& s : sockets_snapshot()) s->on_attempt_failed(e, false);
  if (_state == state::closed && !_closed_for_good) schedule_reconnect();
}

void manager_impl::schedule_reconnect() {
  if (_opts.reconnect.max_attempts > 0 && _backoff.attempts() >= _opts.reconnect.max_attempts) {
    error e{errc::reconnect_failed,
            "gave up after " + std::to_string(_backoff.attempts()) + " reconnection attempts to " + _uri};
    report(e);
    for (auto& s : sockets_snapshot()) s->on_attempt_failed(e, true);
    return;
  }
  auto delay = _backoff.next();
  _state = state::reconnecting;
  _log.info("reconnecting to {} in {} ms (attempt {})", _uri, delay.count(), _backoff.attempts());
  _reconnect_timer.expires_after(delay);
  _reconnect_timer.async_wait(asio::bind_executor(_strand, [weak = weak_from_this()](const asio::error_code& ec) {
    if (ec) return;
    auto s = weak.lock();
    if (!s || s->_state != state::reconnecting) return;
    if (s->_on_reconnect_attempt && !s->silenced()) {
      uint32_t n = s->_backoff.attempts();
      guarded(s->_log, "reconnect_attempt handler", [&] { s->_on_reconnect_attempt(n); });
    }
    if (s->_state == state::reconnecting) s->start_attempt();
  }));
}

void manager_impl::reset_ping_timer() {
  _ping_timer.expires_after(_hs.ping_interval + _hs.ping_timeout);
  _ping_timer.async_wait(asio::bind_executor(_strand, [weak = weak_from_this(), g = _gen](const asio::error_code& ec) {
    if (ec) return;
    auto s = weak.lock();
    if (!s || s->_gen != g || s->_state != state::open) return;
    std::string detail = "no ping from the server within " +
                         std::to_string((s->_hs.ping_interval + s->_hs.ping_timeout).count()) + " ms";
    s->report({errc::ping_timeout, s->_uri + ": " + detail});
    s->transport_closed(sio::disconnect_reason::ping_timeout, detail);
  }));
}

void manager_impl::drop_transport(bool graceful) {
  ++_gen;  // late events of this WebSocket are ignored from now on
  if (!_ws) return;
  auto ws = std::move(_ws);
  _ws.reset();
  if (graceful) {
    ws->close(1000, "");
  } else {
    ws->terminate();
  }
}

void manager_impl::report(const error& e) {
  if (_on_error && !silenced()) guarded(_log, "error handler", [&] { _on_error(e); });
}

bool manager_impl::send_packet(const std::string& sio_text, const std::vector<std::string>& binaries) {
  if (_state != state::open || !_ws) return false;
  std::string frame;
  frame.reserve(sio_text.size() + 1);
  frame.push_back('4');
  frame.append(sio_text);
  std::string err;
  if (!_ws->send(false, frame, err)) {
    _log.debug("send failed: {}", err);
    return false;
  }
  for (const auto& b : binaries) {
    if (!_ws->send(true, b, err)) {
      _log.debug("send failed: {}", err);
      return false;
    }
  }
  return true;
}

}  // namespace ferry::client::detail
