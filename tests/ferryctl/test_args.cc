// Tests for ferryctl's argument validation (tools/ferryctl/args.h) and URL handling
// (tools/ferryctl/http_client.h parse_url / percent_encode): everything that decides
// "usage error, exit 1" before the broker or the data directory is touched.
#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include "tools/ferryctl/args.h"
#include "tools/ferryctl/http_client.h"

using namespace ferry::ferryctl;

TEST_CASE("--from accepts earliest, latest, an offset and time: with ISO-8601 or epoch ms") {
  std::string why;
  auto f = parse_from("earliest", why);
  REQUIRE(f);
  CHECK(f->what == from_spec::kind::earliest);
  f = parse_from("latest", why);
  REQUIRE(f);
  CHECK(f->what == from_spec::kind::latest);
  f = parse_from("6a8d4a6c-0000000000000042", why);
  REQUIRE(f);
  CHECK(f->what == from_spec::kind::offset);
  CHECK(f->off.epoch == 0x6a8d4a6c);
  CHECK(f->off.seq == 0x42);
  f = parse_from("time:2026-11-26T10:00:00Z", why);
  REQUIRE(f);
  CHECK(f->what == from_spec::kind::time);
  CHECK(f->time_ms == 1795687200000);
  f = parse_from("time:2026-11-26T12:00:00.250+02:00", why);
  REQUIRE(f);
  CHECK(f->time_ms == 1795687200250);
  f = parse_from("time:1795687200000", why);
  REQUIRE(f);
  CHECK(f->time_ms == 1795687200000);
}

TEST_CASE("--from rejects anything else with a reason naming the accepted forms") {
  for (std::string_view bad :
       {"", "Earliest", "now", "42", "6a8d4a6c-42", "6A8D4A6C-0000000000000042", "6a8d4a6c_0000000000000042",
        "time:", "time:yesterday", "time:2026-11-26T10:00:00", "time:2026-02-30T00:00:00Z", "time:-5"}) {
    CAPTURE(bad);
    std::string why;
    CHECK_FALSE(parse_from(bad, why));
    CHECK_FALSE(why.empty());
  }
  std::string why;
  (void)parse_from("bogus", why);
  CHECK(why.find("earliest") != std::string::npos);
  (void)parse_from("time:2026-11-26T10:00:00", why);
  CHECK(why.find("time zone") != std::string::npos);
}

TEST_CASE("--to of replay is an offset; --to of positions set also takes earliest and latest") {
  std::string why;
  auto o = parse_offset_arg("00000001-00000000000000ff", why);
  REQUIRE(o);
  CHECK(o->seq == 255);
  CHECK_FALSE(parse_offset_arg("latest", why));
  CHECK(why.find("not an offset") != std::string::npos);
  CHECK(valid_position_target("earliest", why));
  CHECK(valid_position_target("latest", why));
  CHECK(valid_position_target("00000001-0000000000000001", why));
  CHECK_FALSE(valid_position_target("first", why));
  CHECK_FALSE(valid_position_target("", why));
}

TEST_CASE("a publish line becomes a compact object with defaults from the flags") {
  publish_defaults d{"orders", "created"};
  std::string why;
  auto o = publish_object_from_line(R"({"data": {"n": 1, "s": "a b"}, "id": "o-1"})", d, why);
  REQUIRE(o);
  CHECK(*o == R"({"topic":"orders","event":"created","id":"o-1","data":{"n":1,"s":"a b"}})");
  o = publish_object_from_line(R"({"topic":"other","event":"x","data":[1,2]})", d, why);
  REQUIRE(o);
  CHECK(*o == R"({"topic":"other","event":"x","data":[1,2]})");
  // No event and no default: left to the broker ("message").
  o = publish_object_from_line(R"({"topic":"t"})", publish_defaults{}, why);
  REQUIRE(o);
  CHECK(*o == R"({"topic":"t"})");
  // Strings are re-quoted exactly like JSON.stringify.
  o = publish_object_from_line(R"({"topic":"t\u00e9\"q","data":null})", publish_defaults{}, why);
  REQUIRE(o);
  CHECK(*o == "{\"topic\":\"t\xc3\xa9\\\"q\",\"data\":null}");
  // Blank lines are skipped.
  o = publish_object_from_line("   \r", d, why);
  REQUIRE(o);
  CHECK(o->empty());
}

TEST_CASE("a bad publish line is refused with a reason") {
  publish_defaults none;
  struct row {
    std::string_view line, reason;
  };
  const std::vector<row> rows = {
      {R"({"data":1})", "no topic"},
      {R"([1,2])", "JSON object"},
      {R"("text")", "JSON object"},
      {R"({"topic":"t","data":})", "not valid JSON"},
      {R"({"topic":"t"} trailing)", "not valid JSON"},
      {R"({"topic":"t","payload":1})", "unknown key \"payload\""},
      {R"({"topic":1})", "\"topic\" must be a string"},
      {R"({"topic":"t","id":7})", "\"id\" must be a string"},
      {R"({"topic":"t","event":null})", "\"event\" must be a string"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.line);
    std::string why;
    CHECK_FALSE(publish_object_from_line(r.line, none, why));
    CHECK(why.find(r.reason) != std::string::npos);
  }
}

TEST_CASE("publish flags: --data must be JSON, --topic is required") {
  std::string why;
  auto o = publish_object_from_flags("t", "e", "i", R"( { "a" : [ 1 , 2 ] } )", why);
  REQUIRE(o);
  CHECK(*o == R"({"topic":"t","event":"e","id":"i","data":{"a":[1,2]}})");
  o = publish_object_from_flags("t", "", "", "", why);
  REQUIRE(o);
  CHECK(*o == R"({"topic":"t"})");
  CHECK_FALSE(publish_object_from_flags("t", "", "", "hello", why));
  CHECK(why.find("not valid JSON") != std::string::npos);
  CHECK_FALSE(publish_object_from_flags("", "", "", "1", why));
  CHECK(why.find("--topic") != std::string::npos);
}

TEST_CASE("--url accepts http://host[:port][/base] and rejects other URLs with a reason") {
  using ferry::ferryctl::http::parse_url;
  auto u = parse_url("http://127.0.0.1:7070");
  REQUIRE(u);
  CHECK(u->host == "127.0.0.1");
  CHECK(u->port == 7070);
  CHECK(u->base_path.empty());
  CHECK(u->text() == "http://127.0.0.1:7070");
  u = parse_url("HTTP://localhost/ferry/");
  REQUIRE(u);
  CHECK(u->host == "localhost");
  CHECK(u->port == 80);
  CHECK(u->base_path == "/ferry");
  u = parse_url("http://[::1]:8080");
  REQUIRE(u);
  CHECK(u->host == "::1");
  CHECK(u->port == 8080);
  CHECK(u->authority() == "[::1]:8080");

  struct row {
    std::string_view url, reason;
  };
  const std::vector<row> rows = {
      {"", "expected http://"},
      {"127.0.0.1:7070", "expected http://"},
      {"ftp://127.0.0.1", "expected http://"},
      {"https://127.0.0.1", "https:// is not supported"},
      {"http://", "missing host"},
      {"http://:7070", "missing host"},
      {"http://127.0.0.1:", "empty port"},
      {"http://127.0.0.1:0", "out of range"},
      {"http://127.0.0.1:65536", "out of range"},
      {"http://127.0.0.1:123456", "out of range"},
      {"http://127.0.0.1:7o70", "not a number"},
      {"http://user:pw@127.0.0.1", "user information"},
      {"http://127.0.0.1/?x=1", "query"},
      {"http://127.0.0.1 :80", "whitespace"},
      {"http://[::1", "unterminated"},
      {"http://[zz]:80", "invalid IPv6"},
      {"http://a_b!c", "invalid character"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.url);
    std::string why;
    auto bad = parse_url(r.url, &why);
    REQUIRE_FALSE(bad);
    CHECK(bad.error() == ferry::ferryctl::http::errc::bad_url);
    CHECK(why.find(r.reason) != std::string::npos);
  }
}

TEST_CASE("percent_encode keeps only unreserved characters, so any topic name is one path segment") {
  using ferry::ferryctl::http::percent_encode;
  CHECK(percent_encode("orders") == "orders");
  CHECK(percent_encode("a-b_c.d~e") == "a-b_c.d~e");
  CHECK(percent_encode("$dlq.lazy") == "%24dlq.lazy");
  CHECK(percent_encode("a/b c?&=#+%") == "a%2Fb%20c%3F%26%3D%23%2B%25");
  CHECK(percent_encode("\xc3\xa9") == "%C3%A9");
}
