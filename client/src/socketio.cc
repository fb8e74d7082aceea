// The public Socket.IO handles (ferry/client/socketio.h) over sio_impl.
#include <cmath>

#include <fmt/format.h>
#include <asio/io_context.hpp>

#include "client/src/sio_impl.h"
#include "ferry/client/runner.h"
#include "ferry/client/socketio.h"
#include "protocol/json.h"

namespace ferry::client::sio {

namespace pjson = ferry::protocol::json;

// ---- args

void args::sep() {
  if (!_json.empty()) _json.push_back(',');
}

args& args::json(std::string_view raw_json) {
  sep();
  _json.append(raw_json);
  return *this;
}

args& args::string(std::string_view text) {
  sep();
  pjson::append_quoted(_json, text);
  return *this;
}

args& args::number(int64_t v) {
  sep();
  fmt::format_to(std::back_inserter(_json), "{}", v);
  return *this;
}

args& args::number(double v) {
  sep();
  if (std::isfinite(v)) {
    fmt::format_to(std::back_inserter(_json), "{}", v);
  } else {
    _json += "null";  // as JSON.stringify does
  }
  return *this;
}

args& args::boolean(bool v) {
  sep();
  _json += v ? "true" : "false";
  return *this;
}

args& args::null() {
  sep();
  _json += "null";
  return *this;
}

std::string args::placeholder(std::string bytes) {
  std::string p = fmt::format(R"({{"_placeholder":true,"num":{}}})", _binaries.size());
  _binaries.push_back(std::move(bytes));
  return p;
}

args& args::binary(std::string bytes) {
  std::string p = placeholder(std::move(bytes));
  sep();
  _json += p;
  return *this;
}

// ---- message

namespace {
const std::vector<std::string> no_attachments;
}

std::string_view message::event() const noexcept {
  return _d ? std::string_view(_d->event) : std::string_view();
}
std::string_view message::args_json() const noexcept {
  return _d ? _d->args_json : std::string_view();
}
size_t message::size() const noexcept {
  return _d ? _d->args.size() : 0;
}
std::string_view message::arg(size_t i) const noexcept {
  return _d && i < _d->args.size() ? _d->args[i] : std::string_view();
}

std::optional<std::string> message::string_arg(size_t i) const {
  std::string_view raw = arg(i);
  if (raw.empty() || raw.front() != '"') return std::nullopt;
  auto v = pjson::parse(raw);
  if (!v || !v->is_string()) return std::nullopt;
  return pjson::unescape(*v);
}

std::optional<std::string_view> message::binary_arg(size_t i) const noexcept {
  std::string_view raw = arg(i);
  if (raw.empty() || raw.front() != '{') return std::nullopt;
  auto n = detail::placeholder_index(raw);
  if (!n || *n >= _d->attachments.size()) return std::nullopt;
  return std::string_view(_d->attachments[*n]);
}

const std::vector<std::string>& message::attachments() const noexcept {
  return _d ? _d->attachments : no_attachments;
}

bool message::wants_ack() const noexcept {
  return _d && _d->ack_id.has_value();
}

void message::ack(const args& reply) const {
  if (!_d || !_d->ack_id) return;
  if (_d->acked.exchange(true)) return;
  if (auto s = _d->socket.lock()) s->send_ack(*_d->ack_id, _d->connection, reply);
}

std::string_view to_string(disconnect_reason r) noexcept {
  switch (r) {
    case disconnect_reason::io_server_disconnect:
      return "io server disconnect";
    case disconnect_reason::io_client_disconnect:
      return "io client disconnect";
    case disconnect_reason::ping_timeout:
      return "ping timeout";
    case disconnect_reason::transport_close:
      return "transport close";
    case disconnect_reason::transport_error:
      return "transport error";
    case disconnect_reason::parse_error:
      return "parse error";
  }
  return "unknown";
}

// ---- socket

namespace {
const std::string empty_nsp;
}

const std::string& socket::nsp() const noexcept {
  return _impl ? _impl->nsp() : empty_nsp;
}
void socket::connect() {
  if (_impl) _impl->connect();
}
void socket::disconnect() {
  if (_impl) _impl->disconnect();
}
bool socket::connected() const noexcept {
  return _impl && _impl->connected();
}
connect_info socket::info() const {
  return _impl ? _impl->info() : connect_info{};
}
void socket::on(std::string event, event_handler handler) {
  if (_impl) _impl->on(std::move(event), std::move(handler));
}
void socket::off(const std::string& event) {
  if (_impl) _impl->off(event);
}
void socket::on_any(any_handler handler) {
  if (_impl) _impl->on_any(std::move(handler));
}
void socket::on_connect(std::function<void(const connect_info&)> handler) {
  if (_impl) _impl->on_connect(std::move(handler));
}
void socket::on_disconnect(std::function<void(disconnect_reason, const std::string&)> handler) {
  if (_impl) _impl->on_disconnect(std::move(handler));
}
void socket::on_connect_error(std::function<void(const error&)> handler) {
  if (_impl) _impl->on_connect_error(std::move(handler));
}

result<void> socket::emit(std::string_view event, const args& a) {
  if (!_impl) return {errc::closed, "empty socket handle"};
  return _impl->emit(event, a);
}

void socket::emit_with_ack(std::string_view event, const args& a, ack_callback cb, std::chrono::milliseconds timeout) {
  if (!_impl) {
    if (cb) cb(error{errc::closed, "empty socket handle"});
    return;
  }
  _impl->emit_with_ack(event, a, std::move(cb), timeout);
}

std::future<result<message>> socket::emit_with_ack(std::string_view event, const args& a,
                                                   std::chrono::milliseconds timeout) {
  auto p = std::make_shared<std::promise<result<message>>>();
  auto f = p->get_future();
  emit_with_ack(
      event, a, [p](result<message> r) { p->set_value(std::move(r)); }, timeout);
  return f;
}

// ---- client

namespace {

detail::server_url checked_url(const client_options& o) {
  auto u = detail::parse_server_url(o.url);
  if (!u) throw config_error(u.err().code, "ferry-client: invalid URL " + u.err().message);
  if (o.connect_timeout.count() <= 0)
    throw config_error(errc::invalid_argument, "ferry-client: connect_timeout must be > 0");
  if (o.reconnect.initial_delay.count() < 0 || o.reconnect.max_delay.count() < 0)
    throw config_error(errc::invalid_argument, "ferry-client: reconnect delays must be >= 0");
  if (o.max_message_bytes == 0)
    throw config_error(errc::invalid_argument, "ferry-client: max_message_bytes must be > 0");
  return *u;
}

void check_auth(const socket_options& o) {
  auto v = pjson::parse(o.auth);
  if (!v || !v->is_object())
    throw config_error(errc::invalid_argument, "ferry-client: socket auth must be a JSON object");
}

}  // namespace

client::client(asio::io_context& io, client_options options) {
  auto url = checked_url(options);
  _impl = std::make_shared<detail::manager_impl>(io, std::move(options), std::move(url));
}

client::client(runner& r, client_options options) : client(r.io(), std::move(options)) {
  _keepalive = r.keepalive();
}

client::~client() {
  if (_impl) {
    _impl->silence();  // no event handler starts once the handle is gone
    _impl->close();
  }
}

client::client(client&& o) noexcept = default;

client& client::operator=(client&& o) noexcept {
  if (this != &o) {
    if (_impl) {
      _impl->silence();
      _impl->close();
    }
    _impl = std::move(o._impl);
    _keepalive = std::move(o._keepalive);
  }
  return *this;
}

sio::socket client::socket(std::string nsp, socket_options options) {
  if (!_impl) throw config_error(errc::closed, "ferry-client: moved-from client");
  check_auth(options);
  auto s = _impl->socket(std::move(nsp), std::move(options));
  if (_impl->options().auto_connect) s->connect();
  return sio::socket(std::move(s), _keepalive);
}

void client::open() {
  if (_impl) _impl->open();
}
void client::close() {
  if (_impl) _impl->close();
}
void client::on_error(std::function<void(const error&)> handler) {
  if (_impl) _impl->on_error(std::move(handler));
}
void client::on_reconnect_attempt(std::function<void(uint32_t)> handler) {
  if (_impl) _impl->on_reconnect_attempt(std::move(handler));
}
bool client::open_now() const noexcept {
  return _impl && _impl->is_open();
}

}  // namespace ferry::client::sio
