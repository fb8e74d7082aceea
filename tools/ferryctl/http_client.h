// http_client.h - a small blocking HTTP/1.1 client for ferryctl's online mode.
//
// ferryctl talks to the broker's HTTP API (README "HTTP API"). The client library in
// client/ speaks Socket.IO over WebSocket, not plain HTTP, so ferryctl carries this one.
//
// Scope: http:// only (no TLS), GET and POST, one TCP connection per request
// ("Connection: close"), responses delimited by Content-Length, chunked transfer coding
// (RFC 9112 section 7.1) or connection close. Every wait is bounded: name resolution and
// the TCP handshake by connect_timeout, the rest of the exchange by request_timeout, and
// an optional cancel flag (SIGINT) is checked every few milliseconds. Nothing here throws
// on network or protocol errors: they come back as http::errc.
//
// Pieces:
//   parse_url        "http://host[:port][/base]" -> url (pure)
//   response_parser  incremental response parser: bytes in, response out (pure, no I/O)
//   client           blocking request/response over standalone Asio
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/result.h"

namespace ferry::ferryctl::http {

enum class errc : uint8_t {
  ok = 0,
  bad_url,             // not "http://host[:port][/path]"
  resolve_failed,      // the host name does not resolve
  connection_refused,  // nothing listens on that port (RST to the SYN)
  unreachable,         // no route to the host or network
  connect_timeout,     // no TCP connection within connect_timeout
  timeout,             // the response did not complete within request_timeout
  connection_closed,   // the peer closed the connection before a complete response
  malformed_response,  // the bytes are not an HTTP/1.x response
  too_large,           // response head or body beyond the configured maximum
  io_error,            // any other socket error
  cancelled,           // the cancel flag was raised (SIGINT)
};

[[nodiscard]] std::string_view to_string(errc e) noexcept;

template <class T>
using result = ferry::result<T, errc>;

struct url {
  std::string host;  // name, IPv4 literal, or IPv6 literal without brackets
  uint16_t port = 80;
  std::string base_path;  // "" or "/prefix" (no trailing slash): prepended to every target

  // "http://host:port/base" (IPv6 hosts in brackets).
  [[nodiscard]] std::string text() const;
  // Host header value: "host:port".
  [[nodiscard]] std::string authority() const;
};

// Parses an http:// URL. On failure `why` (if given) gets a one-line reason.
[[nodiscard]] result<url> parse_url(std::string_view text, std::string* why = nullptr);

// Percent-encodes everything except RFC 3986 unreserved characters (A-Z a-z 0-9 - . _ ~),
// for one path segment or one query value.
[[nodiscard]] std::string percent_encode(std::string_view text);

struct header {
  std::string name;
  std::string value;
};

struct response {
  int status = 0;
  std::string reason;
  std::vector<header> headers;
  std::string body;  // decoded (chunked framing removed)

  // The first header with that name (case-insensitive), "" if none.
  [[nodiscard]] std::string_view header_value(std::string_view name) const noexcept;
};

struct parser_limits {
  size_t max_head_bytes = 64 << 10;   // status line + headers (+ chunk trailers)
  size_t max_body_bytes = 256 << 20;  // decoded body
};

// Incremental HTTP/1.1 response parser (RFC 9112). Feed it the bytes as they arrive, in
// any split; it never reads past what it was given. Interim 1xx responses are skipped.
// Lines may end in CRLF or a bare LF (RFC 9112 section 2.2).
class response_parser {
 public:
  enum class state { need_more, done, error };

  explicit response_parser(parser_limits limits = {}, bool head_request = false);

  // Consumes `bytes`. Bytes after a complete response are ignored.
  state feed(std::string_view bytes);
  // The peer closed the connection: completes a close-delimited body, or fails with
  // connection_closed if the response was cut short.
  state finish();

  [[nodiscard]] state current() const noexcept { return _state; }
  [[nodiscard]] errc error() const noexcept { return _error; }
  // One line describing the error.
  [[nodiscard]] const std::string& detail() const noexcept { return _detail; }
  [[nodiscard]] response& get() noexcept { return _response; }

 private:
  enum class phase {
    status_line,
    headers,
    body_length,
    body_close,
    chunk_size,
    chunk_data,
    chunk_data_end,
    trailers,
    complete
  };
  state fail(errc e, std::string detail);
  state advance();
  // Takes one line (without its terminator) from _buf at _pos; false if incomplete.
  bool take_line(std::string_view& line);
  state on_headers_complete();

  parser_limits _limits;
  bool _head_request;
  state _state = state::need_more;
  errc _error = errc::ok;
  std::string _detail;
  phase _phase = phase::status_line;
  std::string _buf;  // unconsumed input starts at _pos
  size_t _pos = 0;
  size_t _head_bytes = 0;
  uint64_t _remaining = 0;  // of the fixed-length body or the current chunk
  response _response;
};

struct client_options {
  std::chrono::milliseconds connect_timeout{3000};   // resolve + TCP handshake
  std::chrono::milliseconds request_timeout{15000};  // sending the request and reading the response
  parser_limits limits;
  std::string user_agent = "ferryctl";
  // Checked every few ms while waiting; when it becomes true the request fails with
  // errc::cancelled. Must outlive the client.
  const std::atomic<bool>* cancel = nullptr;
};

// Blocking client for one server. Each call opens a connection, sends one request and
// reads one response; the object holds no connection between calls. Not thread-safe.
class client {
 public:
  client(url server, client_options options);

  // `target` is the origin-form path + query ("/v1/topics?namespace=%2F"); the URL's
  // base path is prepended.
  [[nodiscard]] result<response> get(std::string_view target);
  [[nodiscard]] result<response> post(std::string_view target, std::string_view body,
                                      std::string_view content_type = "application/json");
  [[nodiscard]] result<response> request(std::string_view method, std::string_view target, std::string_view body,
                                         std::string_view content_type);

  // One line describing the last failure (e.g. the OS error text); "" after success.
  [[nodiscard]] const std::string& last_error_detail() const noexcept { return _detail; }
  [[nodiscard]] const url& server() const noexcept { return _server; }

 private:
  url _server;
  client_options _options;
  std::string _detail;
};

}  // namespace ferry::ferryctl::http
