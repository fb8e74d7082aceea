// transport_wspp.cc - the websocketpp implementation of transport.h.
//
// The only translation unit that includes websocketpp: it costs ~30 s and ~1 GB to
// compile and does not build as C++20 with GCC 12, so meson builds this file alone as
// C++17 (broker/meson.build). Everything runs on one io_context thread, so the
// websocketpp config uses concurrency::none (no locks, no strands).
#include <sys/socket.h>

#include <cerrno>
#include <stdexcept>

#include <websocketpp/concurrency/none.hpp>
#include <websocketpp/config/asio_no_tls.hpp>
#include <websocketpp/server.hpp>

#include "broker/transport.h"

namespace ferry::broker {
namespace {

class ws_adapter;

// State websocketpp keeps inside every connection object (config::connection_base).
struct connection_state {
  std::shared_ptr<size_t> live_connections;  // the transport's counter, decremented on destruction
  std::weak_ptr<ws_adapter> adapter;   // set once a WebSocket is open
  http_request upgrade_request;        // captured by the validate handler for the open handler

  connection_state() = default;
  connection_state(const connection_state&) = delete;
  connection_state& operator=(const connection_state&) = delete;
  ~connection_state() {
    if (live_connections) --*live_connections;  // shared: connections may outlive the transport
  }
};

struct ferry_config : public websocketpp::config::asio {
  using type = ferry_config;
  using base = websocketpp::config::asio;
  using concurrency_type = websocketpp::concurrency::none;
  using request_type = base::request_type;
  using response_type = base::response_type;
  using message_type = base::message_type;
  using con_msg_manager_type = base::con_msg_manager_type;
  using endpoint_msg_manager_type = base::endpoint_msg_manager_type;
  using alog_type = websocketpp::log::basic<concurrency_type, websocketpp::log::alevel>;
  using elog_type = websocketpp::log::basic<concurrency_type, websocketpp::log::elevel>;
  using rng_type = base::rng_type;

  struct transport_config : public base::transport_config {
    using concurrency_type = type::concurrency_type;
    using alog_type = type::alog_type;
    using elog_type = type::elog_type;
    using request_type = type::request_type;
    using response_type = type::response_type;
    using socket_type = websocketpp::transport::asio::basic_socket::endpoint;
    static const bool enable_multithreading = false;
  };
  using transport_type = websocketpp::transport::asio::endpoint<transport_config>;
  using connection_base = connection_state;

  static const bool enable_multithreading = false;
  // 1 KiB instead of 16: the buffer lives inside every connection object, idle or not
  // (P5: memory per idle connection); larger messages just take more reads.
  static const size_t connection_read_buffer_size = 1024;
  static const websocketpp::log::level elog_level = websocketpp::log::elevel::none;
  static const websocketpp::log::level alog_level = websocketpp::log::alevel::none;
};

using server_type = websocketpp::server<ferry_config>;
using connection_ptr = server_type::connection_ptr;
using message_type = ferry_config::message_type;
namespace wsframe = websocketpp::frame;

// A prepared (header + unmasked payload) websocketpp message. Server frames are never
// masked, so one prepared message can be queued on any number of connections.
class wspp_frame final : public outbound_frame {
 public:
  wspp_frame(std::string payload, bool binary)
      : _msg(nullptr, binary ? wsframe::opcode::binary : wsframe::opcode::text, 0), _binary(binary) {
    _msg.get_raw_payload() = std::move(payload);
    const auto size = _msg.get_payload().size();
    _msg.set_header(wsframe::prepare_header(
        wsframe::basic_header(binary ? wsframe::opcode::binary : wsframe::opcode::text, size, true, false),
        wsframe::extended_header(size)));
    _msg.set_prepared(true);
  }
  std::string_view payload() const noexcept override { return _msg.get_payload(); }
  bool binary() const noexcept override { return _binary; }
  // websocketpp wants a mutable message; it does not modify prepared ones.
  message_type* message() const noexcept { return const_cast<message_type*>(&_msg); }

 private:
  message_type _msg;
  bool _binary;
};

http_request capture_request(const connection_ptr& con) {
  http_request r;
  const auto& req = con->get_request();
  r.method = req.get_method();
  r.version = req.get_version();
  const std::string& uri = req.get_uri();
  auto q = uri.find('?');
  r.path = uri.substr(0, q);
  if (q != std::string::npos) r.query = uri.substr(q + 1);
  for (const auto& [k, v] : req.get_headers()) r.headers.emplace_back(k, v);
  r.body = req.get_body();
  asio::error_code ec;
  auto ep = con->get_raw_socket().remote_endpoint(ec);
  if (!ec) r.remote = ep.address().to_string() + ":" + std::to_string(ep.port());
  return r;
}

void apply_response(const connection_ptr& con, http_response&& resp) {
  con->set_status(static_cast<websocketpp::http::status_code::value>(resp.status));
  for (auto& [k, v] : resp.headers) con->replace_header(k, v);
  // websocketpp answers one request per connection and then closes it; say so.
  con->replace_header("Connection", "close");
  con->set_body(std::move(resp.body));
}

class http_adapter final : public http_exchange, public std::enable_shared_from_this<http_adapter> {
 public:
  http_adapter(connection_ptr con, http_request req) : _con(std::move(con)), _req(std::move(req)) {}
  ~http_adapter() override {
    if (!_responded && _con) respond({500, {}, ""});
  }

  const http_request& request() const noexcept override { return _req; }
  bool responded() const noexcept override { return _responded; }

  void respond(http_response response) override {
    if (_responded || !_con) return;
    _responded = true;
    apply_response(_con, std::move(response));
    websocketpp::lib::error_code ec;
    _con->send_http_response(ec);  // fails only if the connection is already gone
    _con.reset();
  }

  void watch_disconnect(std::function<void()> on_gone) override {
    if (_responded || !_con) return;
    _on_gone = std::move(on_gone);
    arm_watch();
  }

 private:
  // While the response is deferred websocketpp does not read the socket, so a client
  // that leaves goes unnoticed. Wait for readability ourselves and peek: EOF or an
  // error means the client is gone.
  void arm_watch() {
    std::weak_ptr<http_adapter> weak = weak_from_this();
    _con->get_raw_socket().async_wait(asio::socket_base::wait_read, [weak](const asio::error_code& ec) {
      if (ec) return;  // operation_aborted: the socket was closed after we answered
      auto self = weak.lock();
      if (!self || self->_responded || !self->_con) return;
      char byte;
      auto fd = self->_con->get_raw_socket().native_handle();
      ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        auto gone = std::move(self->_on_gone);
        self->_responded = true;  // nobody is listening any more
        self->_con->terminate(websocketpp::lib::error_code());
        self->_con.reset();
        if (gone) gone();
      } else if (n < 0) {
        self->arm_watch();  // spurious wake-up
      }
      // n > 0: the client pipelined another request; stop watching rather than spin.
    });
  }

  connection_ptr _con;
  http_request _req;
  bool _responded = false;
  std::function<void()> _on_gone;
};

class ws_adapter final : public ws_connection, public std::enable_shared_from_this<ws_adapter> {
 public:
  ws_adapter(connection_ptr con, http_request req) : _con(std::move(con)), _req(std::move(req)) {}

  const http_request& request() const noexcept override { return _req; }
  http_request take_request() noexcept override { return std::move(_req); }
  void set_listener(std::weak_ptr<ws_listener> listener) override { _listener = std::move(listener); }

  void send(const frame_ptr& frame) override {
    if (!_con) return;
    auto f = std::static_pointer_cast<const wspp_frame>(frame);
    message_type::ptr msg(f, f->message());  // aliasing: shares ownership of the frame
    (void)_con->send(msg);  // fails only when the connection is closing; the close handler follows
  }

  size_t buffered_bytes() const noexcept override { return _con ? _con->get_buffered_amount() : 0; }

  void close(uint16_t code, std::string_view reason) override {
    if (!_con) return;
    websocketpp::lib::error_code ec;
    _con->close(code, std::string(reason), ec);
    if (ec) _con->terminate(ec);
  }

  bool open() const noexcept override { return _con && _con->get_state() == websocketpp::session::state::open; }

  void deliver_message(bool binary, std::string_view payload) {
    if (auto l = _listener.lock()) l->on_ws_message(binary, payload);
  }
  void deliver_close() {
    _con.reset();
    if (auto l = _listener.lock()) l->on_ws_close();
  }

 private:
  connection_ptr _con;
  http_request _req;
  std::weak_ptr<ws_listener> _listener;
};

class wspp_transport final : public transport {
 public:
  wspp_transport(asio::io_context& io, transport_options options, transport_handlers handlers)
      : _options(std::move(options)), _handlers(std::move(handlers)) {
    _server.init_asio(&io);
    _server.set_reuse_addr(true);
    _server.set_listen_backlog(_options.listen_backlog);
    _server.set_user_agent("");  // no Server header, like the reference server
    _server.set_max_message_size(_options.max_message_bytes);
    _server.set_max_http_body_size(_options.max_http_body_bytes);
    _server.set_open_handshake_timeout(static_cast<long>(_options.handshake_timeout.count()));
    _server.set_close_handshake_timeout(1000);
    _server.clear_access_channels(websocketpp::log::alevel::all);
    _server.clear_error_channels(websocketpp::log::elevel::all);

    _server.set_socket_init_handler([this](websocketpp::connection_hdl hdl, asio::ip::tcp::socket& s) {
      auto con = _server.get_con_from_hdl(hdl);
      con->live_connections = _live;
      ++*_live;
      asio::error_code ec;
      s.set_option(asio::ip::tcp::no_delay(true), ec);
      if (*_live > _options.max_connections) s.close(ec);  // over the limit: the read fails at once
    });
    _server.set_http_handler([this](websocketpp::connection_hdl hdl) {
      auto con = _server.get_con_from_hdl(hdl);
      con->defer_http_response();
      auto ex = std::make_shared<http_adapter>(con, capture_request(con));
      _handlers.on_http(std::move(ex));
    });
    _server.set_validate_handler([this](websocketpp::connection_hdl hdl) {
      auto con = _server.get_con_from_hdl(hdl);
      http_request req = capture_request(con);
      http_response reject;
      if (_handlers.on_ws_validate(req, reject)) {
        con->upgrade_request = std::move(req);
        return true;
      }
      apply_response(con, std::move(reject));
      return false;
    });
    _server.set_open_handler([this](websocketpp::connection_hdl hdl) {
      auto con = _server.get_con_from_hdl(hdl);
      auto ws = std::make_shared<ws_adapter>(con, std::move(con->upgrade_request));
      con->upgrade_request = {};
      con->adapter = ws;
      _handlers.on_ws_open(std::move(ws));
    });
    _server.set_message_handler([this](websocketpp::connection_hdl hdl, server_type::message_ptr msg) {
      auto con = _server.get_con_from_hdl(hdl);
      if (auto ws = con->adapter.lock())
        ws->deliver_message(msg->get_opcode() == wsframe::opcode::binary, msg->get_payload());
    });
    _server.set_close_handler([this](websocketpp::connection_hdl hdl) { on_closed(hdl); });
    _server.set_fail_handler([this](websocketpp::connection_hdl hdl) { on_closed(hdl); });

    asio::error_code ec;
    auto address = asio::ip::make_address(_options.host, ec);
    if (ec) throw std::runtime_error("invalid listen address '" + _options.host + "': " + ec.message());
    _server.listen(asio::ip::tcp::endpoint(address, _options.port), ec);
    if (ec) throw std::runtime_error("cannot listen on " + _options.host + ":" + std::to_string(_options.port) + ": " +
                                     ec.message());
    _server.start_accept(ec);
    if (ec) throw std::runtime_error("cannot accept: " + ec.message());
    _port = _server.get_local_endpoint(ec).port();
  }

  ~wspp_transport() override {
    websocketpp::lib::error_code ec;
    if (_server.is_listening()) _server.stop_listening(ec);
  }

  uint16_t port() const noexcept override { return _port; }
  size_t connection_count() const noexcept override { return *_live; }

  void stop_accepting() override {
    websocketpp::lib::error_code ec;
    if (_server.is_listening()) _server.stop_listening(ec);
  }

 private:
  void on_closed(websocketpp::connection_hdl hdl) {
    auto con = _server.get_con_from_hdl(hdl);
    if (auto ws = con->adapter.lock()) {
      con->adapter.reset();
      ws->deliver_close();
    }
  }

  transport_options _options;
  transport_handlers _handlers;
  server_type _server;
  std::shared_ptr<size_t> _live = std::make_shared<size_t>(0);
  uint16_t _port = 0;
};

}  // namespace

frame_ptr make_frame(std::string payload, bool binary) {
  return std::make_shared<const wspp_frame>(std::move(payload), binary);
}

std::unique_ptr<transport> transport::create(asio::io_context& io, transport_options options,
                                             transport_handlers handlers) {
  return std::make_unique<wspp_transport>(io, std::move(options), std::move(handlers));
}

}  // namespace ferry::broker
