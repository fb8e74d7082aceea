// ws_transport_wspp.cc - the websocketpp implementation of ws_transport.h.
//
// The only client translation unit that includes websocketpp; meson compiles it alone as
// C++17 (client/meson.build). The host's io_context may run on several threads, so the
// config keeps websocketpp's multithreading support: each connection has its own strand
// and a mutex, which makes send() and close() callable from our strand.
//
// Lifetime: a connection holds references into its endpoint (the random generator used
// for frame masks), so every connection keeps its endpoint alive through its
// connection_base. The endpoint does not own its connections, so this is not a cycle:
// the pair is freed when the last asio handler of the connection completes.
#include <algorithm>
#include <mutex>

#include <websocketpp/client.hpp>
#include <websocketpp/config/asio_no_tls_client.hpp>

#include "client/src/ws_transport.h"

namespace ferry::client::detail {
namespace {

// Per-connection state websocketpp stores inside each connection (config::connection_base).
struct connection_state {
  std::shared_ptr<void> endpoint_keepalive;
};

struct client_config : public websocketpp::config::asio_client {
  using type = client_config;
  using base = websocketpp::config::asio_client;
  using concurrency_type = base::concurrency_type;
  using request_type = base::request_type;
  using response_type = base::response_type;
  using message_type = base::message_type;
  using con_msg_manager_type = base::con_msg_manager_type;
  using endpoint_msg_manager_type = base::endpoint_msg_manager_type;
  using alog_type = base::alog_type;
  using elog_type = base::elog_type;
  using rng_type = base::rng_type;

  struct transport_config : public base::transport_config {
    using concurrency_type = type::concurrency_type;
    using alog_type = type::alog_type;
    using elog_type = type::elog_type;
    using request_type = type::request_type;
    using response_type = type::response_type;
    using socket_type = websocketpp::transport::asio::basic_socket::endpoint;
  };
  using transport_type = websocketpp::transport::asio::endpoint<transport_config>;
  using connection_base = connection_state;

  static const websocketpp::log::level elog_level = websocketpp::log::elevel::none;
  static const websocketpp::log::level alog_level = websocketpp::log::alevel::none;
};

using endpoint_type = websocketpp::client<client_config>;
using connection_ptr = endpoint_type::connection_ptr;
using message_ptr = endpoint_type::message_ptr;

// Why a connection attempt failed, as precisely as websocketpp knows it.
std::string failure_reason(const connection_ptr& con) {
  std::string reason;
  auto tec = con->get_transport_ec();
  if (tec) reason = tec.message();
  auto ec = con->get_ec();
  int status = static_cast<int>(con->get_response_code());
  if (status != 0 && status != 101) {
    if (!reason.empty()) reason += "; ";
    reason += "HTTP " + std::to_string(status);
    const std::string& msg = con->get_response_msg();
    if (!msg.empty()) reason += " " + msg;
    std::string body = con->get_response().get_body();
    if (!body.empty()) reason += ": " + body.substr(0, 200);
  } else if (ec && (reason.empty() || ec.message() != "Underlying Transport Error")) {
    if (!reason.empty()) reason += "; ";
    reason += ec.message();
  }
  if (reason.empty()) reason = "connection failed";
  return reason;
}

class wspp_connection final : public ws_connection {
 public:
  explicit wspp_connection(ws_handlers h) : _handlers(std::make_shared<const ws_handlers>(std::move(h))) {}
  ~wspp_connection() override { terminate(); }

  bool send(bool binary, const std::string& payload, std::string& error) override {
    connection_ptr con = current();
    if (!con) {
      error = "not connected";
      return false;
    }
    websocketpp::lib::error_code ec =
        con->send(payload, binary ? websocketpp::frame::opcode::binary : websocketpp::frame::opcode::text);
    if (ec) {
      error = ec.message();
      return false;
    }
    return true;
  }

  void close(uint16_t code, const std::string& reason) override {
    connection_ptr con = current();
    if (!con) return;
    websocketpp::lib::error_code ec;
    con->close(code, reason, ec);
    if (ec) terminate();  // not open (yet): abort instead
  }

  void terminate() override {
    connection_ptr con;
    {
      std::lock_guard<std::mutex> lock(_mutex);
      _handlers.reset();
      con = std::move(_con);
      _con.reset();
    }
    if (!con) return;
    // terminate() is not thread-safe in websocketpp: run it on the connection's strand.
    auto strand = con->get_strand();
    auto run = [con] {
      if (con->get_state() == websocketpp::session::state::closed) return;
      websocketpp::lib::error_code ec;
      con->terminate(ec);
    };
    if (strand) {
      strand->post(run);
    } else {
      run();
    }
  }

  size_t buffered_bytes() const override {
    connection_ptr con = current();
    return con ? con->get_buffered_amount() : 0;
  }

  void attach(connection_ptr con) {
    std::lock_guard<std::mutex> lock(_mutex);
    _con = std::move(con);
  }

  // websocketpp side, on the connection's strand. Handlers are called outside the lock:
  // the application may terminate or drop us from inside them.
  void fire_open() {
    auto h = handlers();
    if (h && h->on_open) h->on_open();
  }
  void fire_message(const message_ptr& msg) {
    auto h = handlers();
    if (!h || !h->on_message) return;
    bool binary = msg->get_opcode() == websocketpp::frame::opcode::binary;
    h->on_message(binary, std::move(msg->get_raw_payload()));
  }
  void fire_fail() {
    auto [h, con] = release();
    if (!h || !h->on_fail) return;
    h->on_fail(con ? failure_reason(con) : std::string("connection failed"));
  }
  void fire_close() {
    auto [h, con] = release();
    if (!h || !h->on_close) return;
    uint16_t code = 1006;
    std::string reason;
    if (con) {
      code = con->get_remote_close_code();
      reason = con->get_remote_close_reason();
      if (code == websocketpp::close::status::no_status || code == 0) {
        code = con->get_local_close_code();
        if (reason.empty()) reason = con->get_local_close_reason();
      }
      if (reason.empty() && con->get_ec()) reason = con->get_ec().message();
    }
    h->on_close(code, std::move(reason));
  }

 private:
  connection_ptr current() const {
    std::lock_guard<std::mutex> lock(_mutex);
    return _con;
  }
  std::shared_ptr<const ws_handlers> handlers() const {
    std::lock_guard<std::mutex> lock(_mutex);
    return _handlers;
  }
  std::pair<std::shared_ptr<const ws_handlers>, connection_ptr> release() {
    std::lock_guard<std::mutex> lock(_mutex);
    auto h = std::move(_handlers);
    _handlers.reset();
    auto c = std::move(_con);
    _con.reset();
    return {std::move(h), std::move(c)};
  }

  mutable std::mutex _mutex;
  std::shared_ptr<const ws_handlers> _handlers;
  connection_ptr _con;
};

}  // namespace

std::shared_ptr<ws_connection> ws_connect(asio::io_context& io, const ws_options& options, ws_handlers handlers,
                                          std::string& error) {
  auto ep = std::make_shared<endpoint_type>();
  ep->clear_access_channels(websocketpp::log::alevel::all);
  ep->clear_error_channels(websocketpp::log::elevel::all);
  websocketpp::lib::error_code ec;
  ep->init_asio(&io, ec);
  if (ec) {
    error = "cannot initialise the WebSocket endpoint: " + ec.message();
    return nullptr;
  }
  ep->set_user_agent("ferry-client");
  ep->set_open_handshake_timeout(static_cast<long>(std::max<int64_t>(1, options.open_timeout.count())));
  ep->set_close_handshake_timeout(1000);
  ep->set_max_message_size(options.max_message_bytes);

  auto adapter = std::make_shared<wspp_connection>(std::move(handlers));
  std::weak_ptr<wspp_connection> weak = adapter;
  // Handlers are copied into each connection by get_connection(): set them first.
  ep->set_open_handler([weak](websocketpp::connection_hdl) {
    if (auto a = weak.lock()) a->fire_open();
  });
  ep->set_fail_handler([weak](websocketpp::connection_hdl) {
    if (auto a = weak.lock()) a->fire_fail();
  });
  ep->set_close_handler([weak](websocketpp::connection_hdl) {
    if (auto a = weak.lock()) a->fire_close();
  });
  ep->set_message_handler([weak](websocketpp::connection_hdl, message_ptr msg) {
    if (auto a = weak.lock()) a->fire_message(msg);
  });
  ep->set_socket_init_handler([](websocketpp::connection_hdl, asio::ip::tcp::socket& s) {
    asio::error_code ignored;
    s.set_option(asio::ip::tcp::no_delay(true), ignored);
  });

  connection_ptr con = ep->get_connection(options.uri, ec);
  if (ec || !con) {
    error = "invalid WebSocket URI '" + options.uri + "': " + (ec ? ec.message() : std::string("rejected"));
    return nullptr;
  }
  for (const auto& [k, v] : options.headers) con->append_header(k, v);
  con->endpoint_keepalive = ep;
  adapter->attach(con);
  ep->connect(con);
  return adapter;
}

}  // namespace ferry::client::detail
