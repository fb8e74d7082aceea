// http_server.h - one listening port shared by every endpoint: routes plain HTTP
// requests and WebSocket upgrades by path to the component that owns the path
// (an Engine.IO server at /socket.io/, the HTTP API at /v1/, /healthz, /metrics).
//
// Threading: io thread only.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "broker/transport.h"

namespace ferry::broker {

class http_server {
 public:
  using http_handler = std::function<void(const std::shared_ptr<http_exchange>&)>;
  using upgrade_validator = std::function<bool(const http_request&, http_response&)>;
  using upgrade_handler = std::function<void(std::shared_ptr<ws_connection>)>;

  http_server(asio::io_context& io, transport_options options);
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  // Requests whose path equals `path`, or starts with it when it ends in '/'.
  // The first matching route wins, in registration order.
  void route(std::string path, http_handler handler);
  void route_upgrade(std::string path, upgrade_validator validate, upgrade_handler open);

  // Starts listening (throws std::runtime_error if the address cannot be bound).
  void start();
  [[nodiscard]] uint16_t port() const noexcept;
  [[nodiscard]] size_t connection_count() const noexcept;
  void stop_accepting();

 private:
  struct http_route {
    std::string path;
    http_handler handler;
  };
  struct upgrade_route {
    std::string path;
    upgrade_validator validate;
    upgrade_handler open;
  };
  [[nodiscard]] static bool matches(const std::string& route, const std::string& path) noexcept;

  asio::io_context& _io;
  transport_options _options;
  std::vector<http_route> _routes;
  std::vector<upgrade_route> _upgrades;
  std::unique_ptr<transport> _transport;
};

}  // namespace ferry::broker
