#include "tools/ferryctl/http_client.h"

#include <netdb.h>
#include <strings.h>
#include <sys/socket.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>

namespace ferry::ferryctl::http {

std::string_view to_string(errc e) noexcept {
  switch (e) {
    case errc::ok:
      return "ok";
    case errc::bad_url:
      return "bad URL";
    case errc::resolve_failed:
      return "host name does not resolve";
    case errc::connection_refused:
      return "connection refused";
    case errc::unreachable:
      return "host unreachable";
    case errc::connect_timeout:
      return "connect timed out";
    case errc::timeout:
      return "no complete response before the timeout";
    case errc::connection_closed:
      return "connection closed before a complete response";
    case errc::malformed_response:
      return "malformed HTTP response";
    case errc::too_large:
      return "response too large";
    case errc::io_error:
      return "I/O error";
    case errc::cancelled:
      return "cancelled";
  }
  return "?";
}

// ---- URLs ----------------------------------------------------------------------------

std::string url::text() const {
  bool v6 = host.find(':') != std::string::npos;
  return fmt::format("http://{}{}{}:{}{}", v6 ? "[" : "", host, v6 ? "]" : "", port, base_path);
}

std::string url::authority() const {
  bool v6 = host.find(':') != std::string::npos;
  return fmt::format("{}{}{}:{}", v6 ? "[" : "", host, v6 ? "]" : "", port);
}

namespace {

bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

result<url> bad_url(std::string* why, std::string reason) {
  if (why) *why = std::move(reason);
  return errc::bad_url;
}

}  // namespace

result<url> parse_url(std::string_view text, std::string* why) {
  constexpr std::string_view scheme = "http://";
  if (text.size() >= 8 && ::strncasecmp(text.data(), "https://", 8) == 0)
    return bad_url(why, "https:// is not supported; use http:// (put a TLS proxy in front of ferryctl if needed)");
  if (text.size() < scheme.size() || ::strncasecmp(text.data(), scheme.data(), scheme.size()) != 0)
    return bad_url(why, "expected http://HOST[:PORT][/PATH]");
  std::string_view rest = text.substr(scheme.size());
  for (char c : rest) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      return bad_url(why, "whitespace or control character in URL");
  }
  if (rest.find_first_of("?#") != std::string_view::npos)
    return bad_url(why, "a query or fragment is not allowed in the URL");
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos)
    return bad_url(why, "user information in the URL is not supported");
  url u;
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad_url(why, "unterminated IPv6 literal");
    u.host = std::string(authority.substr(1, close - 1));
    asio::error_code ec;
    (void)asio::ip::make_address_v6(u.host, ec);
    if (ec) return bad_url(why, "invalid IPv6 literal");
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad_url(why, "unexpected characters after the IPv6 literal");
      port_text = after.substr(1);
      if (port_text.empty()) return bad_url(why, "empty port");
    }
  } else {
    size_t colon = authority.find(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return bad_url(why, "empty port");
    }
    for (char c : u.host) {
      if (!is_unreserved(static_cast<unsigned char>(c)))
        return bad_url(why, fmt::format("invalid character '{}' in host", c));
    }
  }
  if (u.host.empty()) return bad_url(why, "missing host");
  if (!port_text.empty()) {
    uint32_t port = 0;
    if (port_text.size() > 5) return bad_url(why, "port out of range (1-65535)");
    for (char c : port_text) {
      if (c < '0' || c > '9') return bad_url(why, "port is not a number");
      port = port * 10 + static_cast<uint32_t>(c - '0');
    }
    if (port == 0 || port > 65535) return bad_url(why, "port out of range (1-65535)");
    u.port = static_cast<uint16_t>(port);
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  u.base_path = std::string(path);
  return u;
}

std::string percent_encode(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (is_unreserved(c)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

std::string_view response::header_value(std::string_view name) const noexcept {
  for (const auto& h : headers)
    if (h.name.size() == name.size() && ::strncasecmp(h.name.data(), name.data(), name.size()) == 0) return h.value;
  return {};
}

// ---- response parser -------------------------------------------------------------------

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

bool is_token_char(unsigned char c) {
  return is_unreserved(c) || std::string_view("!#$%&'*+^`|").find(static_cast<char>(c)) != std::string_view::npos;
}

}  // namespace

response_parser::response_parser(parser_limits limits, bool head_request)
    : _limits(limits), _head_request(head_request) {}

response_parser::state response_parser::fail(errc e, std::string detail) {
  _state = state::error;
  _error = e;
  _detail = std::move(detail);
  return _state;
}

response_parser::state response_parser::feed(std::string_view bytes) {
  if (_state != state::need_more) return _state;
  _buf.append(bytes);
  state s = advance();
  // Drop consumed input so a long body is not kept twice.
  if (_pos > 0 && (_pos == _buf.size() || _pos > (64 << 10))) {
    _buf.erase(0, _pos);
    _pos = 0;
  }
  return s;
}

response_parser::state response_parser::finish() {
  if (_state != state::need_more) return _state;
  if (_phase == phase::body_close) {
    _phase = phase::complete;
    return _state = state::done;
  }
  if (_phase == phase::status_line && _pos == _buf.size() && _head_bytes == 0)
    return fail(errc::connection_closed, "the server closed the connection without a response");
  return fail(errc::connection_closed, "the server closed the connection before the response was complete");
}

bool response_parser::take_line(std::string_view& line) {
  size_t nl = _buf.find('\n', _pos);
  if (nl == std::string::npos) return false;
  line = std::string_view(_buf).substr(_pos, nl - _pos);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  _pos = nl + 1;
  return true;
}

response_parser::state response_parser::on_headers_complete() {
  int st = _response.status;
  if (st >= 100 && st < 200) {
    if (st == 101) return fail(errc::malformed_response, "unexpected 101 Switching Protocols");
    // Interim response (100 Continue, 103 Early Hints): the real one follows.
    _response = response{};
    _phase = phase::status_line;
    return state::need_more;
  }
  if (_head_request || st == 204 || st == 304) {
    _phase = phase::complete;
    return state::done;
  }
  std::string_view te = _response.header_value("Transfer-Encoding");
  if (!te.empty()) {
    // The last transfer coding decides the framing (RFC 9112 section 6.3 item 4).
    size_t comma = te.rfind(',');
    std::string_view last = trim(comma == std::string_view::npos ? te : te.substr(comma + 1));
    _phase = iequals(last, "chunked") ? phase::chunk_size : phase::body_close;
    return state::need_more;
  }
  std::optional<uint64_t> length;
  for (const auto& h : _response.headers) {
    if (!iequals(h.name, "Content-Length")) continue;
    std::string_view v = trim(h.value);
    if (v.empty() || v.size() > 19) return fail(errc::malformed_response, "invalid Content-Length");
    uint64_t n = 0;
    for (char c : v) {
      if (c < '0' || c > '9') return fail(errc::malformed_response, "invalid Content-Length");
      n = n * 10 + static_cast<uint64_t>(c - '0');
    }
    if (length && *length != n) return fail(errc::malformed_response, "conflicting Content-Length headers");
    length = n;
  }
  if (length) {
    if (*length > _limits.max_body_bytes) {
      return fail(errc::too_large,
                  fmt::format("response body of {} bytes exceeds the limit of {}", *length, _limits.max_body_bytes));
    }
    _remaining = *length;
    _response.body.reserve(static_cast<size_t>(*length));
    _phase = _remaining == 0 ? phase::complete : phase::body_length;
    return _phase == phase::complete ? state::done : state::need_more;
  }
  _phase = phase::body_close;
  return state::need_more;
}

response_parser::state response_parser::advance() {
  for (;;) {
    std::string_view line;
    switch (_phase) {
      case phase::status_line:
      case phase::headers:
      case phase::trailers: {
        if (!take_line(line)) {
          if (_head_bytes + (_buf.size() - _pos) > _limits.max_head_bytes)
            return fail(errc::too_large, "response head too large");
          return _state = state::need_more;
        }
        _head_bytes += line.size() + 1;
        if (_head_bytes > _limits.max_head_bytes) return fail(errc::too_large, "response head too large");
        if (_phase == phase::status_line) {
          // HTTP-version SP status-code [SP reason-phrase]
          if (line.empty()) continue;  // tolerate stray empty lines before the status line
          if (line.size() < 12 || !line.starts_with("HTTP/1.") || line[7] < '0' || line[7] > '9' || line[8] != ' ')
            return fail(errc::malformed_response, "not an HTTP/1.x response");
          std::string_view code = line.substr(9, 3);
          if (!std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
              (line.size() > 12 && line[12] != ' '))
            return fail(errc::malformed_response, "invalid status code");
          _response.status = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
          if (_response.status < 100 || _response.status > 599)
            return fail(errc::malformed_response, "invalid status code");
          _response.reason = line.size() > 13 ? std::string(line.substr(13)) : std::string();
          _phase = phase::headers;
        } else if (_phase == phase::headers) {
          if (line.empty()) {
            state s = on_headers_complete();
            if (s != state::need_more) return _state = s;
            continue;
          }
          size_t colon = line.find(':');
          if (colon == std::string_view::npos || colon == 0)
            return fail(errc::malformed_response, "invalid header line");
          std::string_view name = line.substr(0, colon);
          for (char c : name) {
            if (!is_token_char(static_cast<unsigned char>(c)))
              return fail(errc::malformed_response, "invalid header name");
          }
          _response.headers.push_back({std::string(name), std::string(trim(line.substr(colon + 1)))});
        } else {  // trailers: ignored
          if (line.empty()) {
            _phase = phase::complete;
            return _state = state::done;
          }
        }
        break;
      }
      case phase::body_length:
      case phase::chunk_data: {
        size_t avail = _buf.size() - _pos;
        if (avail == 0) return _state = state::need_more;
        size_t n = static_cast<size_t>(std::min<uint64_t>(avail, _remaining));
        _response.body.append(_buf, _pos, n);
        _pos += n;
        _remaining -= n;
        if (_remaining > 0) return _state = state::need_more;
        if (_phase == phase::body_length) {
          _phase = phase::complete;
          return _state = state::done;
        }
        _phase = phase::chunk_data_end;
        break;
      }
      case phase::body_close: {
        size_t avail = _buf.size() - _pos;
        if (_response.body.size() + avail > _limits.max_body_bytes) {
          return fail(errc::too_large,
                      fmt::format("response body exceeds the limit of {} bytes", _limits.max_body_bytes));
        }
        _response.body.append(_buf, _pos, avail);
        _pos += avail;
        return _state = state::need_more;
      }
      case phase::chunk_size: {
        if (!take_line(line)) {
          if (_buf.size() - _pos > 4096) return fail(errc::malformed_response, "chunk size line too long");
          return _state = state::need_more;
        }
        // chunk-size [ chunk-ext ]  (RFC 9112 section 7.1)
        std::string_view size_text = trim(line.substr(0, line.find(';')));
        if (size_text.empty() || size_text.size() > 15) return fail(errc::malformed_response, "invalid chunk size");
        uint64_t size = 0;
        for (char c : size_text) {
          int d = (c >= '0' && c <= '9')   ? c - '0'
                  : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                  : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                           : -1;
          if (d < 0) return fail(errc::malformed_response, "invalid chunk size");
          size = size * 16 + static_cast<uint64_t>(d);
        }
        if (size == 0) {
          _phase = phase::trailers;
          break;
        }
        if (_response.body.size() + size > _limits.max_body_bytes) {
          return fail(errc::too_large,
                      fmt::format("response body exceeds the limit of {} bytes", _limits.max_body_bytes));
        }
        _remaining = size;
        _phase = phase::chunk_data;
        break;
      }
      case phase::chunk_data_end: {
        if (!take_line(line)) {
          if (_buf.size() - _pos > 2) return fail(errc::malformed_response, "chunk data longer than its size");
          return _state = state::need_more;
        }
        if (!line.empty()) return fail(errc::malformed_response, "chunk data longer than its size");
        _phase = phase::chunk_size;
        break;
      }
      case phase::complete:
        return _state = state::done;
    }
  }
}

// ---- blocking client ---------------------------------------------------------------------

namespace {

using clock_type = std::chrono::steady_clock;
using tcp = asio::ip::tcp;

// Name resolution on a detached thread, so that a stuck resolver can be abandoned at
// the deadline instead of blocking (asio's resolver joins its thread on destruction).
struct resolve_state {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  int rc = 0;
  std::vector<tcp::endpoint> endpoints;
};

errc map_connect_error(const asio::error_code& ec) {
  if (ec == asio::error::connection_refused) return errc::connection_refused;
  if (ec == asio::error::host_unreachable || ec == asio::error::network_unreachable) return errc::unreachable;
  if (ec == asio::error::timed_out) return errc::connect_timeout;
  return errc::io_error;
}

}  // namespace

client::client(url server, client_options options) : _server(std::move(server)), _options(std::move(options)) {}

result<response> client::get(std::string_view target) {
  return request("GET", target, {}, {});
}

result<response> client::post(std::string_view target, std::string_view body, std::string_view content_type) {
  return request("POST", target, body, content_type);
}

result<response> client::request(std::string_view method, std::string_view target, std::string_view body,
                                 std::string_view content_type) {
  _detail.clear();
  auto cancelled = [this] { return _options.cancel && _options.cancel->load(); };
  auto fail = [this](errc e, std::string detail) -> result<response> {
    _detail = std::move(detail);
    return e;
  };
  const auto connect_deadline = clock_type::now() + _options.connect_timeout;

  // 1. Endpoints: IP literals directly, names through getaddrinfo.
  std::vector<tcp::endpoint> endpoints;
  asio::error_code aec;
  auto literal = asio::ip::make_address(_server.host, aec);
  if (!aec) {
    endpoints.emplace_back(literal, _server.port);
  } else {
    auto st = std::make_shared<resolve_state>();
    std::thread([st, host = _server.host, port = std::to_string(_server.port)] {
      addrinfo hints{};
      hints.ai_family = AF_UNSPEC;
      hints.ai_socktype = SOCK_STREAM;
      hints.ai_flags = AI_NUMERICSERV;
      addrinfo* res = nullptr;
      int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
      std::vector<tcp::endpoint> eps;
      for (addrinfo* p = res; rc == 0 && p; p = p->ai_next) {
        tcp::endpoint ep;
        if (p->ai_addrlen <= ep.capacity()) {
          std::memcpy(ep.data(), p->ai_addr, p->ai_addrlen);
          ep.resize(p->ai_addrlen);
          eps.push_back(ep);
        }
      }
      if (res) ::freeaddrinfo(res);
      std::lock_guard lk(st->mu);
      st->rc = rc;
      st->endpoints = std::move(eps);
      st->done = true;
      st->cv.notify_all();
    }).detach();
    std::unique_lock lk(st->mu);
    while (!st->done) {
      if (cancelled()) return fail(errc::cancelled, "interrupted");
      if (clock_type::now() >= connect_deadline) {
        return fail(errc::connect_timeout,
                    fmt::format("resolving {} took longer than {} ms", _server.host, _options.connect_timeout.count()));
      }
      st->cv.wait_for(lk, std::chrono::milliseconds(20));
    }
    if (st->rc != 0 || st->endpoints.empty()) {
      return fail(errc::resolve_failed,
                  fmt::format("cannot resolve {}: {}", _server.host, st->rc ? ::gai_strerror(st->rc) : "no addresses"));
    }
    endpoints = std::move(st->endpoints);
  }

  asio::io_context io(1);
  tcp::socket socket(io);
  auto abort_io = [&] {
    asio::error_code ignored;
    socket.close(ignored);
    io.restart();
    io.run();  // lets the cancelled handlers run (they only set flags)
  };
  // Runs the io_context until `done`, the deadline or cancellation.
  auto wait = [&](const bool& done, clock_type::time_point deadline, errc on_timeout) -> errc {
    while (!done) {
      if (cancelled()) {
        abort_io();
        return errc::cancelled;
      }
      auto now = clock_type::now();
      if (now >= deadline) {
        abort_io();
        return on_timeout;
      }
      io.restart();
      io.run_one_for(std::min<clock_type::duration>(deadline - now, std::chrono::milliseconds(20)));
    }
    return errc::ok;
  };

  // 2. TCP connect (each endpoint in turn, within the one connect deadline).
  bool connected = false;
  asio::error_code connect_ec;
  asio::async_connect(socket, endpoints, [&](const asio::error_code& ec, const tcp::endpoint&) {
    connect_ec = ec;
    connected = true;
  });
  if (errc e = wait(connected, connect_deadline, errc::connect_timeout); e != errc::ok) {
    return fail(e, e == errc::cancelled ? "interrupted"
                                        : fmt::format("no TCP connection to {} within {} ms", _server.authority(),
                                                      _options.connect_timeout.count()));
  }
  if (connect_ec)
    return fail(map_connect_error(connect_ec), fmt::format("{}: {}", _server.authority(), connect_ec.message()));

  // 3. Request.
  const auto deadline = clock_type::now() + _options.request_timeout;
  std::string head = fmt::format(
      "{} {}{} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\nAccept: application/json\r\nConnection: close\r\n", method,
      _server.base_path, target.empty() ? std::string_view("/") : target, _server.authority(), _options.user_agent);
  if (method == "POST" || !body.empty()) {
    if (!content_type.empty()) head += fmt::format("Content-Type: {}\r\n", content_type);
    head += fmt::format("Content-Length: {}\r\n", body.size());
  }
  head += "\r\n";
  bool written = false;
  asio::error_code write_ec;
  std::vector<asio::const_buffer> out{asio::buffer(head), asio::buffer(body.data(), body.size())};
  asio::async_write(socket, out, [&](const asio::error_code& ec, size_t) {
    write_ec = ec;
    written = true;
  });
  if (errc e = wait(written, deadline, errc::timeout); e != errc::ok) {
    return fail(e, e == errc::cancelled
                       ? "interrupted"
                       : fmt::format("sending the request took longer than {} ms", _options.request_timeout.count()));
  }
  // A write error (the server closed early) still lets us read a response it may have sent.

  // 4. Response.
  response_parser parser(_options.limits, method == "HEAD");
  std::vector<char> buf(64 << 10);
  for (;;) {
    bool got = false;
    asio::error_code read_ec;
    size_t n = 0;
    socket.async_read_some(asio::buffer(buf), [&](const asio::error_code& ec, size_t bytes) {
      read_ec = ec;
      n = bytes;
      got = true;
    });
    if (errc e = wait(got, deadline, errc::timeout); e != errc::ok) {
      return fail(e, e == errc::cancelled ? "interrupted"
                                          : fmt::format("{} did not answer within {} ms", _server.authority(),
                                                        _options.request_timeout.count()));
    }
    response_parser::state s = response_parser::state::need_more;
    if (n > 0) s = parser.feed({buf.data(), n});
    if (s == response_parser::state::need_more && read_ec) {
      if (read_ec == asio::error::eof || read_ec == asio::error::connection_reset) {
        s = parser.finish();
        if (s == response_parser::state::error && write_ec)
          return fail(errc::connection_closed, fmt::format("sending the request failed: {}", write_ec.message()));
      } else {
        return fail(errc::io_error, read_ec.message());
      }
    }
    if (s == response_parser::state::done) {
      asio::error_code ignored;
      socket.shutdown(tcp::socket::shutdown_both, ignored);
      socket.close(ignored);
      return std::move(parser.get());
    }
    if (s == response_parser::state::error) return fail(parser.error(), parser.detail());
  }
}

}  // namespace ferry::ferryctl::http
