#include "broker/engineio.h"

#include <asio/post.hpp>

#include "broker/random.h"
#include "protocol/base64.h"
#include "protocol/engineio.h"
#include "storage/logging.h"

namespace ferry::broker::eio {
namespace {

constexpr log::logger logger("eio");
namespace p = ferry::protocol::eio;

// Control packets shared by every session.
const frame_ptr& ping_frame() {
  static const frame_ptr f = make_frame("2", false);
  return f;
}
const frame_ptr& probe_reply_frame() {
  static const frame_ptr f = make_frame("3probe", false);
  return f;
}

http_response text_response(int status, std::string body, std::string_view content_type) {
  http_response r;
  r.status = status;
  r.headers.emplace_back("Content-Type", std::string(content_type));
  if (status == 200) r.headers.emplace_back("Cache-Control", "no-store");
  r.body = std::move(body);
  return r;
}

}  // namespace

std::string_view to_string(close_reason r) noexcept {
  switch (r) {
    case close_reason::transport_close: return "transport close";
    case close_reason::transport_error: return "transport error";
    case close_reason::ping_timeout: return "ping timeout";
    case close_reason::parse_error: return "parse error";
    case close_reason::forced_close: return "forced close";
    case close_reason::server_shutdown: return "server shutting down";
    case close_reason::slow_consumer: return "slow consumer";
    case close_reason::payload_too_large: return "payload too large";
  }
  return "unknown";
}

// Forwards one WebSocket's events to its session, remembering whether it is the probe
// of an upgrade in progress or the session's transport.
class session::ws_binding final : public ws_listener {
 public:
  ws_binding(std::weak_ptr<session> s, bool probe) : _session(std::move(s)), _probe(probe) {}
  void on_ws_message(bool binary, std::string_view payload) override {
    if (auto s = _session.lock()) s->on_ws_message(_probe, binary, payload);
  }
  void on_ws_close() override {
    if (auto s = _session.lock()) s->on_ws_close(_probe);
  }
  void promote() noexcept { _probe = false; }

 private:
  std::weak_ptr<session> _session;
  bool _probe;
};

session::session(server& srv, std::string id, transport_kind kind, http_request handshake)
    : _server(srv), _id(std::move(id)), _kind(kind), _handshake(std::move(handshake)), _ping_timer(srv.io()) {
  _handshake.body.clear();
  _handshake.body.shrink_to_fit();
}

session::~session() = default;

size_t session::buffered_bytes() const noexcept {
  size_t n = _write_buffer_bytes;
  if (_ws) n += _ws->buffered_bytes();
  return n;
}

void session::send(const frame_ptr& frame) {
  if (_state != state::open) return;
  if (_kind == transport_kind::websocket) {
    _ws->send(frame);
    if (_ws->buffered_bytes() > _server._opts.max_buffered_bytes) terminate(close_reason::slow_consumer);
    return;
  }
  _write_buffer_bytes += frame->payload().size();
  _write_buffer.push_back(frame);
  if (_write_buffer_bytes > _server._opts.max_buffered_bytes) {
    terminate(close_reason::slow_consumer);
    return;
  }
  if (_poll) schedule_flush();
}

void session::send_control(const frame_ptr& frame) {
  if (_kind == transport_kind::websocket) {
    _ws->send(frame);
    return;
  }
  _write_buffer_bytes += frame->payload().size();
  _write_buffer.push_back(frame);
  if (_poll) schedule_flush();
}

void session::schedule_flush() {
  if (_flush_scheduled) return;
  _flush_scheduled = true;
  // Flush after the current handler so packets queued together leave in one response.
  asio::post(_server.io(), [self = shared_from_this()] {
    self->_flush_scheduled = false;
    if (self->_state == state::open && self->_poll && !self->_write_buffer.empty()) self->flush_poll(false);
  });
}

void session::flush_poll(bool closing) {
  if (!_poll) return;
  std::string body;
  for (const auto& f : _write_buffer) p::append_payload_packet(body, f->binary(), f->payload());
  if (closing) p::append_payload_packet(body, false, "1");
  if (body.empty()) body = "6";  // nothing to say: a noop ends the request cleanly
  _write_buffer.clear();
  _write_buffer_bytes = 0;
  auto poll = std::move(_poll);
  _poll.reset();
  http_response resp = text_response(200, std::move(body), "text/plain; charset=UTF-8");
  _server.add_cors_headers(poll->request(), resp);
  poll->respond(std::move(resp));
}

void session::close(close_reason reason) { finish_close(reason, true); }

void session::terminate(close_reason reason) { finish_close(reason, false); }

void session::finish_close(close_reason reason, bool graceful) {
  if (_state == state::closed) return;
  _state = state::closed;
  _ping_timer.cancel();
  if (_upgrade_timer) _upgrade_timer->cancel();
  if (_probe) {
    _probe->close(1000, "");
    _probe.reset();
  }
  bool drain = false;
  if (_kind == transport_kind::polling) {
    if (_poll) {
      if (!graceful) {
        _write_buffer.clear();
        _write_buffer_bytes = 0;
      }
      flush_poll(true);  // a waiting GET gets what is queued plus the close packet
    } else if (graceful) {
      // Closed by the server between polls: keep the queue for the next GET (like the
      // reference server), so a final DISCONNECT still reaches the client.
      drain = true;
      _draining = true;
      _ping_timer.expires_after(_server._opts.ping_interval + _server._opts.ping_timeout);
      _ping_timer.async_wait([weak = weak_from_this()](const asio::error_code& ec) {
        if (ec) return;
        if (auto s = weak.lock()) s->_server._sessions.erase(s->_id);
      });
    }
  } else if (_ws) {
    _ws->close(1000, "");
  }
  if (!drain) {
    _write_buffer.clear();
    _write_buffer_bytes = 0;
  }
  auto self = shared_from_this();  // keep alive while the server and the handler let go
  _server.on_session_closed(*this, reason, drain);
  if (auto h = std::move(_handler)) h->on_eio_close(reason);
}

void session::schedule_ping() {
  _awaiting_pong = false;
  _ping_timer.expires_after(_server._opts.ping_interval);
  _ping_timer.async_wait([weak = weak_from_this()](const asio::error_code& ec) {
    if (ec == asio::error::operation_aborted) return;
    if (auto s = weak.lock()) s->on_ping_timer(ec);
  });
}

void session::on_ping_timer(const asio::error_code& ec) {
  if (ec || _state != state::open) return;
  if (_awaiting_pong) {
    terminate(close_reason::ping_timeout);
    return;
  }
  send_control(ping_frame());
  _awaiting_pong = true;
  _ping_timer.expires_after(_server._opts.ping_timeout);
  _ping_timer.async_wait([weak = weak_from_this()](const asio::error_code& e) {
    if (e == asio::error::operation_aborted) return;
    if (auto s = weak.lock()) s->on_ping_timer(e);
  });
}

void session::on_packet(char type, bool binary, std::string_view data) {
  switch (static_cast<p::packet_type>(type)) {
    case p::packet_type::message:
      if (_handler) _handler->on_eio_message(binary, data);
      break;
    case p::packet_type::pong:
      if (_awaiting_pong) {
        _ping_timer.cancel();
        schedule_ping();
      }
      break;
    case p::packet_type::close:
      // The client is leaving: a waiting GET ends with a noop, not a close packet
      // (the reference server does the same).
      if (_poll) flush_poll(false);
      terminate(close_reason::transport_close);
      break;
    case p::packet_type::ping:
      // In v4 only the server pings; the reference server closes on "invalid heartbeat direction".
      terminate(close_reason::transport_error);
      break;
    case p::packet_type::open:
    case p::packet_type::upgrade:
    case p::packet_type::noop:
      break;  // ignored outside of an upgrade, like the reference server
  }
}

void session::on_poll(const std::shared_ptr<http_exchange>& ex) {
  if (_state != state::open) {
    ex->respond(_server.error_response(ex->request(), server::eio_error::unknown_sid));
    return;
  }
  if (_poll) {
    // Two concurrent GETs: the spec says the session is closed.
    logger.debug("session {}: overlapping poll", _id);
    http_response r = _server.error_response(ex->request(), server::eio_error::bad_request);
    ex->respond(std::move(r));
    terminate(close_reason::transport_error);
    return;
  }
  _poll = ex;
  std::weak_ptr<session> weak = weak_from_this();
  ex->watch_disconnect([weak] {
    if (auto s = weak.lock()) {
      s->_poll.reset();
      logger.debug("session {}: poll request cancelled by the client", s->_id);
      s->terminate(close_reason::transport_error);
    }
  });
  if (!_write_buffer.empty()) {
    schedule_flush();
  } else if (_upgrading && _probe_answered) {
    release_poll_later();
  }
}

// While an upgrade is under way a waiting GET is answered with a noop after 100 ms (the
// reference server's check interval), so the client can pause polling and finish the
// upgrade; if the upgrade completes first, the GET gets the close packet instead.
void session::release_poll_later() {
  if (!_noop_timer) _noop_timer = std::make_unique<asio::steady_timer>(_server.io());
  _noop_timer->expires_after(std::chrono::milliseconds(100));
  _noop_timer->async_wait([weak = weak_from_this()](const asio::error_code& ec) {
    if (ec) return;
    auto s = weak.lock();
    if (s && s->_state == state::open && s->_upgrading && s->_poll) s->flush_poll(false);
  });
}

void session::on_post(const std::shared_ptr<http_exchange>& ex) {
  const http_request& req = ex->request();
  if (req.body.size() > _server._opts.max_payload) {
    http_response r = text_response(413, "", "text/html");
    _server.add_cors_headers(req, r);
    ex->respond(std::move(r));
    terminate(close_reason::payload_too_large);
    return;
  }
  p::payload payload;
  if (payload.decode(req.body) != protocol::errc::ok) {
    http_response r = _server.error_response(req, server::eio_error::bad_request);
    ex->respond(std::move(r));
    terminate(close_reason::parse_error);
    return;
  }
  http_response ok = text_response(200, "ok", "text/html");
  _server.add_cors_headers(req, ok);
  ex->respond(std::move(ok));
  auto self = shared_from_this();
  for (const auto& pk : payload.packets()) {
    if (_state != state::open) break;
    on_packet(static_cast<char>(pk.type), pk.binary, pk.data);
  }
}

void session::attach_websocket(std::shared_ptr<ws_connection> ws, bool probe) {
  auto binding = std::make_shared<ws_binding>(weak_from_this(), probe);
  ws->set_listener(binding);
  if (probe) {
    _probe = std::move(ws);
    _probe_binding = std::move(binding);
    _upgrading = true;
    _probe_answered = false;
    if (!_upgrade_timer) _upgrade_timer = std::make_unique<asio::steady_timer>(_server.io());
    _upgrade_timer->expires_after(_server._opts.upgrade_timeout);
    _upgrade_timer->async_wait([weak = weak_from_this()](const asio::error_code& ec) {
      if (ec) return;
      if (auto s = weak.lock()) {
        logger.debug("session {}: upgrade timed out", s->_id);
        s->abort_upgrade();
      }
    });
  } else {
    _ws = std::move(ws);
    _ws_binding = std::move(binding);
  }
}

void session::abort_upgrade() {
  if (_upgrade_timer) _upgrade_timer->cancel();
  _noop_timer.reset();
  _upgrading = false;
  _probe_answered = false;
  if (_probe) _probe->close(1000, "");
  _probe.reset();
  _probe_binding.reset();
}

void session::finish_upgrade() {
  if (_upgrade_timer) _upgrade_timer->cancel();
  _noop_timer.reset();
  _upgrading = false;
  _probe_answered = false;
  if (_poll) {
    // The old transport is discarded: a GET still waiting gets its close packet (as the
    // reference server does); queued packets go out over the WebSocket below.
    auto poll = std::move(_poll);
    _poll.reset();
    http_response r = text_response(200, "1", "text/plain; charset=UTF-8");
    _server.add_cors_headers(poll->request(), r);
    poll->respond(std::move(r));
  }
  _kind = transport_kind::websocket;
  _ws = std::move(_probe);
  _ws_binding = std::move(_probe_binding);
  _ws_binding->promote();
  ++_server._stats.upgrades;
  // What queued up for the next poll goes out over the WebSocket now.
  auto pending = std::move(_write_buffer);
  _write_buffer.clear();
  _write_buffer_bytes = 0;
  for (const auto& f : pending) _ws->send(f);
}

void session::on_ws_message(bool probe, bool binary, std::string_view payload) {
  if (_state != state::open) return;
  if (probe) {
    if (binary) {
      abort_upgrade();
      return;
    }
    if (payload == "2probe") {
      _probe->send(probe_reply_frame());
      _probe_answered = true;
      if (_poll && _write_buffer.empty()) release_poll_later();  // a noop so the client pauses polling
    } else if (payload == "5" && _probe_answered) {
      finish_upgrade();
    } else {
      abort_upgrade();  // anything else on a probe: drop the probe, keep the session
    }
    return;
  }
  if (binary) {
    on_packet(static_cast<char>(p::packet_type::message), true, payload);
    return;
  }
  if (!payload.empty() && payload[0] == 'b') {
    // Binary as "b<base64>" in a text frame (clients with forceBase64).
    std::string bytes;
    if (!protocol::base64::decode(payload.substr(1), bytes)) {
      logger.debug("session {}: invalid base64 in a binary packet", _id);
      terminate(close_reason::parse_error);
      return;
    }
    on_packet(static_cast<char>(p::packet_type::message), true, bytes);
    return;
  }
  auto pk = p::decode_text(payload);
  if (!pk) {
    logger.debug("session {}: undecodable packet: {}", _id, protocol::to_string(pk.error()));
    terminate(close_reason::parse_error);
    return;
  }
  on_packet(static_cast<char>(pk->type), false, pk->data);
}

void session::on_ws_close(bool probe) {
  if (probe) {
    _probe.reset();
    abort_upgrade();
    return;
  }
  _ws.reset();
  _ws_binding.reset();
  terminate(close_reason::transport_close);
}

// ---------------------------------------------------------------------------------

server::server(asio::io_context& io, options opts, session_callback on_session)
    : _io(io), _opts(std::move(opts)), _on_session(std::move(on_session)) {}

server::~server() {
  close_all(close_reason::server_shutdown);
  for (auto& [id, s] : _sessions) s->_ping_timer.cancel();  // draining sessions must not outlive us
  _sessions.clear();
}

std::string server::new_id() {
  for (;;) {
    std::string id = random_id();
    if (!_sessions.contains(id)) return id;
  }
}

void server::add_cors_headers(const http_request& req, http_response& resp) const {
  if (_opts.cors_origins.empty()) return;
  std::string_view origin = req.header("Origin");
  bool any = false, listed = false;
  for (const auto& o : _opts.cors_origins) {
    if (o == "*") any = true;
    else if (!origin.empty() && o == origin) listed = true;
  }
  if (any && !_opts.cors_credentials) {
    resp.headers.emplace_back("Access-Control-Allow-Origin", "*");
  } else if ((any || listed) && !origin.empty()) {
    resp.headers.emplace_back("Access-Control-Allow-Origin", std::string(origin));
    resp.headers.emplace_back("Vary", "Origin");
    if (_opts.cors_credentials) resp.headers.emplace_back("Access-Control-Allow-Credentials", "true");
  }
}

http_response server::error_response(const http_request& req, eio_error e) {
  static constexpr std::string_view messages[] = {
      "Transport unknown", "Session ID unknown", "Bad handshake method",
      "Bad request",       "Forbidden",          "Unsupported protocol version",
  };
  ++_stats.http_rejected;
  auto code = static_cast<int>(e);
  http_response r = text_response(e == eio_error::forbidden ? 403 : 400,
                                  fmt::format(R"({{"code":{},"message":"{}"}})", code, messages[code]),
                                  "application/json");
  add_cors_headers(req, r);
  return r;
}

void server::handle_http(const std::shared_ptr<http_exchange>& ex) {
  const http_request& req = ex->request();
  if (req.method == "OPTIONS" && !_opts.cors_origins.empty()) {  // CORS preflight
    http_response r;
    r.status = 204;
    add_cors_headers(req, r);
    r.headers.emplace_back("Access-Control-Allow-Methods", "GET,HEAD,PUT,PATCH,POST,DELETE");
    std::string_view asked = req.header("Access-Control-Request-Headers");
    if (!asked.empty()) r.headers.emplace_back("Access-Control-Allow-Headers", std::string(asked));
    r.headers.emplace_back("Vary", "Access-Control-Request-Headers");
    ex->respond(std::move(r));
    return;
  }
  // Checked in the reference server's order: transport, sid, handshake method, protocol version.
  std::string eio, transport, sid;
  bool has_transport = req.query_param("transport", transport);
  bool websocket = has_transport && transport == "websocket" && _opts.allow_websocket;
  if (!has_transport || !((transport == "polling" && _opts.allow_polling) || websocket)) {
    ex->respond(error_response(req, eio_error::unknown_transport));
    return;
  }
  if (!req.query_param("sid", sid)) {
    if (req.method != "GET") {
      ex->respond(error_response(req, eio_error::bad_handshake_method));
      return;
    }
    if (websocket) {  // a WebSocket handshake without the upgrade
      ex->respond(error_response(req, eio_error::bad_request));
      return;
    }
    if (!req.query_param("EIO", eio) || eio != "4") {
      ex->respond(error_response(req, eio_error::unsupported_protocol_version));
      return;
    }
    handshake_polling(ex);
    return;
  }
  auto it = _sessions.find(sid);
  if (it == _sessions.end()) {
    ex->respond(error_response(req, eio_error::unknown_sid));
    return;
  }
  if (websocket) {
    ex->respond(error_response(req, eio_error::bad_request));
    return;
  }
  session_ptr s = it->second;
  if (s->_draining) {
    // A session the server closed between polls: hand over what was queued (a noop when
    // nothing was, as the reference server does) and the close packet, then forget it.
    if (req.method == "GET") {
      if (s->_write_buffer.empty()) s->_write_buffer.push_back(make_frame("6", false));
      s->_poll = ex;
      s->flush_poll(true);
    } else {
      ex->respond(error_response(req, eio_error::bad_request));
    }
    s->_ping_timer.cancel();
    _sessions.erase(sid);
    return;
  }
  if (s->_kind != session::transport_kind::polling) {
    ex->respond(error_response(req, eio_error::bad_request));
    return;
  }
  if (req.method == "GET") s->on_poll(ex);
  else if (req.method == "POST") s->on_post(ex);
  else ex->respond(error_response(req, eio_error::bad_request));
}

void server::handshake_polling(const std::shared_ptr<http_exchange>& ex) {
  auto s = std::make_shared<session>(*this, new_id(), session::transport_kind::polling, ex->request());
  _sessions.emplace(s->id(), s);
  ++_stats.sessions_opened;
  http_response r = text_response(200,
                                  p::encode_open({.sid = s->id(),
                                                  .upgrade_to_websocket = _opts.allow_websocket && _opts.allow_upgrades,
                                                  .ping_interval_ms = static_cast<uint32_t>(_opts.ping_interval.count()),
                                                  .ping_timeout_ms = static_cast<uint32_t>(_opts.ping_timeout.count()),
                                                  .max_payload = _opts.max_payload}),
                                  "text/plain; charset=UTF-8");
  add_cors_headers(ex->request(), r);
  ex->respond(std::move(r));
  s->schedule_ping();
  _on_session(s);
}

bool server::validate_upgrade(const http_request& req, http_response& reject) {
  std::string eio, transport, sid;
  if (!req.query_param("transport", transport) || transport != "websocket" || !_opts.allow_websocket) {
    reject = error_response(req, eio_error::unknown_transport);
    return false;
  }
  if (!req.query_param("sid", sid) && (!req.query_param("EIO", eio) || eio != "4")) {
    reject = error_response(req, eio_error::unsupported_protocol_version);
    return false;
  }
  if (!sid.empty()) {
    auto it = _sessions.find(sid);
    if (it == _sessions.end()) {
      reject = error_response(req, eio_error::unknown_sid);
      return false;
    }
    // A known session that cannot be upgraded (already upgraded, or an upgrade in
    // progress) gets its WebSocket accepted and closed at once in handle_upgrade,
    // like the reference server; only unknown sessions are refused here.
  }
  return true;
}

void server::handle_upgrade(std::shared_ptr<ws_connection> ws) {
  std::string sid;
  if (ws->request().query_param("sid", sid)) {
    auto it = _sessions.find(sid);
    // Not upgradable (or closed since validation): accept-then-close, as the reference server does.
    if (it == _sessions.end() || !_opts.allow_upgrades || it->second->_kind != session::transport_kind::polling ||
        it->second->_upgrading) {
      ws->close(1000, "");
      return;
    }
    it->second->attach_websocket(std::move(ws), true);
    return;
  }
  auto s = std::make_shared<session>(*this, new_id(), session::transport_kind::websocket, ws->take_request());
  _sessions.emplace(s->id(), s);
  ++_stats.sessions_opened;
  s->attach_websocket(ws, false);
  ws->send(make_frame(p::encode_open({.sid = s->id(),
                                      .upgrade_to_websocket = false,
                                      .ping_interval_ms = static_cast<uint32_t>(_opts.ping_interval.count()),
                                      .ping_timeout_ms = static_cast<uint32_t>(_opts.ping_timeout.count()),
                                      .max_payload = _opts.max_payload}),
                      false));
  s->schedule_ping();
  _on_session(s);
}

void server::on_session_closed(session& s, close_reason reason, bool drain) {
  ++_stats.closed[static_cast<size_t>(reason)];
  switch (reason) {
    case close_reason::parse_error:
    case close_reason::payload_too_large:
    case close_reason::slow_consumer:
      logger.warn("session {} ({}) closed: {}", s.id(), s.handshake_request().remote, to_string(reason));
      break;
    default:
      logger.debug("session {} closed: {}", s.id(), to_string(reason));
  }
  if (!drain) _sessions.erase(s.id());
}

void server::close_all(close_reason reason) {
  std::vector<session_ptr> all;
  all.reserve(_sessions.size());
  for (auto& [id, s] : _sessions) all.push_back(s);
  for (auto& s : all) s->close(reason);
}

}  // namespace ferry::broker::eio
