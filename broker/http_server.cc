#include "broker/http_server.h"

namespace ferry::broker {

http_server::http_server(asio::io_context& io, transport_options options) : _io(io), _options(std::move(options)) {}

http_server::~http_server() = default;

bool http_server::matches(const std::string& route, const std::string& path) noexcept {
  if (!route.empty() && route.back() == '/') {
    // "/socket.io/" also matches "/socket.io" (the reference server accepts both)
    return path.compare(0, route.size(), route) == 0 || path == std::string_view(route).substr(0, route.size() - 1);
  }
  return path == route;
}

void http_server::route(std::string path, http_handler handler) {
  _routes.push_back({std::move(path), std::move(handler)});
}

void http_server::route_upgrade(std::string path, upgrade_validator validate, upgrade_handler open) {
  _upgrades.push_back({std::move(path), std::move(validate), std::move(open)});
}

namespace {
// websocketpp's parser is lenient; answer what Node's HTTP parser refuses with 400 too.
bool well_formed(const http_request& req) {
  if (req.version != "HTTP/1.1" && req.version != "HTTP/1.0") return false;
  for (unsigned char c : req.path)
    if (c < 0x21 || c == 0x7f) return false;
  for (unsigned char c : req.query)
    if (c < 0x21 || c == 0x7f) return false;
  return true;
}
}  // namespace

void http_server::start() {
  transport_handlers h;
  h.on_http = [this](std::shared_ptr<http_exchange> ex) {
    const http_request& req = ex->request();
    if (!well_formed(req)) {
      http_response bad;
      bad.status = 400;
      bad.headers.emplace_back("Content-Type", "text/plain");
      bad.body = "bad request";
      ex->respond(std::move(bad));
      return;
    }
    for (auto& r : _routes) {
      if (matches(r.path, req.path)) {
        r.handler(ex);
        return;
      }
    }
    http_response resp;
    resp.status = 404;
    resp.headers.emplace_back("Content-Type", "application/json");
    resp.body = R"({"ok":false,"error":{"code":"not_found","message":"no such endpoint"}})";
    ex->respond(std::move(resp));
  };
  h.on_ws_validate = [this](const http_request& req, http_response& reject) {
    if (!well_formed(req)) {
      reject.status = 400;
      reject.body = "bad request";
      return false;
    }
    for (auto& u : _upgrades)
      if (matches(u.path, req.path)) return u.validate(req, reject);
    reject.status = 404;
    reject.body = "no WebSocket endpoint at this path";
    return false;
  };
  h.on_ws_open = [this](std::shared_ptr<ws_connection> ws) {
    for (auto& u : _upgrades) {
      if (matches(u.path, ws->request().path)) {
        u.open(std::move(ws));
        return;
      }
    }
    ws->close(1008, "no endpoint");
  };
  _transport = transport::create(_io, _options, std::move(h));
}

uint16_t http_server::port() const noexcept { return _transport ? _transport->port() : 0; }

size_t http_server::connection_count() const noexcept { return _transport ? _transport->connection_count() : 0; }

void http_server::stop_accepting() {
  if (_transport) _transport->stop_accepting();
}

}  // namespace ferry::broker
