// Tests for ferryctl's HTTP/1.1 response parser (tools/ferryctl/http_client.h): framing
// by Content-Length, chunked transfer coding and connection close; interim responses;
// limits; malformed input. Every valid case is also fed byte by byte and in random
// chunks, since the network splits responses anywhere.
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "tools/ferryctl/http_client.h"

using namespace ferry::ferryctl::http;
using state = response_parser::state;

namespace {

// Feeds `wire` in pieces of the given sizes (cycled); then finish() if `close`.
state feed_split(response_parser& p, std::string_view wire, const std::vector<size_t>& pieces, bool close) {
  state s = state::need_more;
  size_t i = 0, k = 0;
  while (i < wire.size() && s == state::need_more) {
    size_t n = std::min(pieces[k++ % pieces.size()], wire.size() - i);
    s = p.feed(wire.substr(i, n));
    i += n;
  }
  if (s == state::need_more && close) s = p.finish();
  return s;
}

struct valid_case {
  std::string_view name;
  std::string wire;
  bool close;  // the server closes after it
  int status;
  std::string body;
};

const std::vector<valid_case>& valid_cases() {
  static const std::vector<valid_case> cases = {
      {"content-length", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}",
       false, 200, "{\"ok\":true}"},
      {"empty body", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, 200, ""},
      {"error status keeps the body", "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}", false, 404, "{}"},
      {"chunked",
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5\r\npedia\r\nE\r\n "
       "in\r\n\r\nchunks.\r\n0\r\n\r\n",
       false, 200, "Wikipedia in\r\n\r\nchunks."},
      {"chunked with extensions, upper-case hex and trailers",
       "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, Chunked\r\n\r\nA;name=value\r\n0123456789\r\n0\r\nX-Trailer: "
       "1\r\n\r\n",
       false, 200, "0123456789"},
      {"chunked beats a Content-Length",
       "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n", false, 200,
       "ab"},
      {"close-delimited", "HTTP/1.0 200 OK\r\nServer: x\r\n\r\nall until close", true, 200, "all until close"},
      {"bare LF line endings", "HTTP/1.1 200 OK\nContent-Length: 3\n\nabc", false, 200, "abc"},
      {"interim 100 Continue is skipped",
       "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx", false, 201, "x"},
      {"204 has no body", "HTTP/1.1 204 No Content\r\n\r\n", false, 204, ""},
      {"status line without a reason", "HTTP/1.1 503\r\nContent-Length: 1\r\n\r\n!", false, 503, "!"},
      {"repeated identical Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
       false, 200, "ok"},
  };
  return cases;
}

}  // namespace

TEST_CASE("the response parser decodes Content-Length, chunked and close-delimited responses") {
  for (const auto& c : valid_cases()) {
    CAPTURE(c.name);
    response_parser p;
    state s = p.feed(c.wire);
    if (c.close && s == state::need_more) s = p.finish();
    REQUIRE(s == state::done);
    CHECK(p.get().status == c.status);
    CHECK(p.get().body == c.body);
  }
}

TEST_CASE("the response parser gives the same result for any split of the input") {
  std::mt19937 rng(20261126);
  for (const auto& c : valid_cases()) {
    CAPTURE(c.name);
    std::vector<std::vector<size_t>> splits = {{1}, {2}, {3, 1}, {7}};
    for (int i = 0; i < 20; ++i) {
      std::vector<size_t> pieces;
      for (int k = 0; k < 8; ++k) pieces.push_back(1 + rng() % 16);
      splits.push_back(pieces);
    }
    for (const auto& pieces : splits) {
      response_parser p;
      REQUIRE(feed_split(p, c.wire, pieces, c.close) == state::done);
      CHECK(p.get().status == c.status);
      CHECK(p.get().body == c.body);
    }
  }
}

TEST_CASE("headers are kept in order and looked up case-insensitively") {
  response_parser p;
  REQUIRE(
      p.feed("HTTP/1.1 200 OK\r\nContent-Type:  application/json \r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 0\r\n\r\n") ==
      state::done);
  const response& r = p.get();
  CHECK(r.reason == "OK");
  REQUIRE(r.headers.size() == 4);
  CHECK(r.header_value("content-type") == "application/json");
  CHECK(r.header_value("X-A") == "1");
  CHECK(r.header_value("missing").empty());
}

TEST_CASE("bytes after a complete response are ignored") {
  response_parser p;
  CHECK(p.feed("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA") == state::done);
  CHECK(p.get().body == "ok");
  CHECK(p.feed("more") == state::done);
}

TEST_CASE("a response cut short by the peer closing is connection_closed") {
  const std::vector<std::string_view> cut = {
      "",
      "HTTP/1.1 200 OK\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n",
  };
  for (auto wire : cut) {
    CAPTURE(wire);
    response_parser p;
    CHECK(p.feed(wire) == state::need_more);
    CHECK(p.finish() == state::error);
    CHECK(p.error() == errc::connection_closed);
    CHECK_FALSE(p.detail().empty());
  }
}

TEST_CASE("malformed responses are rejected, not guessed at") {
  const std::vector<std::string_view> bad = {
      "SSH-2.0-OpenSSH_9.2\r\n",
      "HTTP/2 200\r\n\r\n",
      "HTTP/1.1 2000 OK\r\n\r\n",
      "HTTP/1.1 20x OK\r\n\r\n",
      "HTTP/1.1 099 Low\r\n\r\n",
      "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
      "HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
      "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n",
      "HTTP/1.1 101 Switching Protocols\r\n\r\n",
  };
  for (auto wire : bad) {
    CAPTURE(wire);
    response_parser p;
    CHECK(p.feed(wire) == state::error);
    CHECK((p.error() == errc::malformed_response || p.error() == errc::too_large));
  }
}

TEST_CASE("limits: an oversize head or body fails with too_large before it is buffered") {
  parser_limits small;
  small.max_head_bytes = 64;
  small.max_body_bytes = 8;
  {
    response_parser p(small);
    CHECK(p.feed("HTTP/1.1 200 OK\r\nX-Long: " + std::string(100, 'a')) == state::error);
    CHECK(p.error() == errc::too_large);
  }
  {
    response_parser p(small);
    CHECK(p.feed("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n") == state::error);
    CHECK(p.error() == errc::too_large);
  }
  {
    response_parser p(small);
    CHECK(p.feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n5\r\n") == state::error);
    CHECK(p.error() == errc::too_large);
  }
  {
    response_parser p(small);
    CHECK(p.feed("HTTP/1.1 200 OK\r\n\r\n123456789") == state::error);
    CHECK(p.error() == errc::too_large);
  }
  {
    response_parser p(small);
    CHECK(p.feed("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n12345678") == state::done);
  }
}

TEST_CASE("a response to HEAD has no body whatever Content-Length says") {
  response_parser p(parser_limits{}, true);
  CHECK(p.feed("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n") == state::done);
  CHECK(p.get().body.empty());
}
