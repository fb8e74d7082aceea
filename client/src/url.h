// url.h - the server URLs the client accepts, and the Engine.IO WebSocket URI built from
// them (engine.io-protocol v4-current.md, "Transports" > "WebSocket": GET <path>?EIO=4&transport=websocket).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ferry/client/error.h"

namespace ferry::client::detail {

struct server_url {
  std::string host;  // name or address; IPv6 without brackets
  uint16_t port = 80;
  std::string nsp;    // the URL's path as a namespace: "/" when empty
  std::string query;  // without '?', passed on in the handshake
};

// Accepts http://, ws:// (and, to say clearly that they are unsupported, rejects https://
// and wss://): scheme://host[:port][/namespace][?query][#fragment].
[[nodiscard]] result<server_url> parse_server_url(std::string_view url);

// ws://host:port<path>?EIO=4&transport=websocket[&query]. `path` is normalised to start
// and end with '/' (the reference server's default is "/socket.io/").
[[nodiscard]] std::string websocket_uri(const server_url& u, std::string_view path);

}  // namespace ferry::client::detail
