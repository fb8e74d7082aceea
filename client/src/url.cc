#include "client/src/url.h"

#include <cctype>
#include <charconv>

namespace ferry::client::detail {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool host_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' || c == '~' || c == '%';
}

bool visible(std::string_view s) {
  for (unsigned char c : s)
    if (c <= 0x20 || c == 0x7f) return false;
  return true;
}

}  // namespace

result<server_url> parse_server_url(std::string_view url) {
  auto bad = [&](std::string_view why) {
    return result<server_url>(errc::invalid_url, "'" + std::string(url) + "': " + std::string(why));
  };
  if (url.empty()) return bad("empty URL");
  if (!visible(url)) return bad("contains spaces or control characters");
  size_t sep = url.find("://");
  if (sep == std::string_view::npos) return bad("expected http://host:port or ws://host:port");
  std::string scheme = lower(url.substr(0, sep));
  if (scheme == "https" || scheme == "wss")
    return bad("TLS (https/wss) is not supported by this build of ferry-client; use http:// or ws://");
  if (scheme != "http" && scheme != "ws") return bad("unsupported scheme '" + scheme + "' (use http:// or ws://)");
  std::string_view rest = url.substr(sep + 3);
  if (auto hash = rest.find('#'); hash != std::string_view::npos) rest = rest.substr(0, hash);
  size_t end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, end);
  std::string_view tail = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  if (authority.find('@') != std::string_view::npos) return bad("user info in the URL is not supported");

  server_url out;
  std::string_view port_text;
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("unterminated IPv6 address");
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return bad("unexpected characters after the IPv6 address");
      port_text = after.substr(1);
      if (port_text.empty()) return bad("empty port");
    }
    if (out.host.empty()) return bad("empty host");
    for (char c : out.host)
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') return bad("invalid IPv6 address");
  } else {
    size_t colon = authority.rfind(':');
    std::string_view host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return bad("empty port");
    }
    if (host.empty()) return bad("missing host");
    for (char c : host)
      if (!host_char(c)) return bad("invalid character in host");
    out.host = std::string(host);
  }
  if (!port_text.empty()) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), v);
    if (ec != std::errc() || p != port_text.data() + port_text.size() || v == 0 || v > 65535)
      return bad("port must be a number from 1 to 65535");
    out.port = static_cast<uint16_t>(v);
  }
  size_t q = tail.find('?');
  std::string_view path = tail.substr(0, q);
  if (q != std::string_view::npos) out.query = std::string(tail.substr(q + 1));
  out.nsp = path.empty() ? "/" : std::string(path);
  return out;
}

std::string websocket_uri(const server_url& u, std::string_view path) {
  std::string uri = "ws://";
  bool v6 = u.host.find(':') != std::string::npos;
  if (v6) uri += '[';
  uri += u.host;
  if (v6) uri += ']';
  uri += ':';
  uri += std::to_string(u.port);
  if (path.empty() || path[0] != '/') uri += '/';
  uri += path;
  if (uri.back() != '/') uri += '/';
  uri += "?EIO=4&transport=websocket";
  if (!u.query.empty()) {
    uri += '&';
    uri += u.query;
  }
  return uri;
}

}  // namespace ferry::client::detail
