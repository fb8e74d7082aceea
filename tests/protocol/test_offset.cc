// Tests for protocol/offset.h: the "<epoch:8>-<seq:16>" lowercase-hex offset strings and
// base64id session ids.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/offset.h"
#include "support.h"

using ferry::protocol::errc;
using ferry::protocol::offset;
using ferry::protocol::test::exact_buffer;
using ferry::protocol::test::random_source;
using namespace std::string_literals;

TEST_CASE("format_offset writes fixed-width lowercase hex") {
  CHECK(ferry::protocol::offset_string_size == 25);
  CHECK(ferry::protocol::format_offset({0, 0}) == "00000000-0000000000000000");
  CHECK(ferry::protocol::format_offset({1, 2}) == "00000001-0000000000000002");
  CHECK(ferry::protocol::format_offset({0xdeadbeef, 0x0123456789abcdefull}) == "deadbeef-0123456789abcdef");
  CHECK(ferry::protocol::format_offset({UINT32_MAX, UINT64_MAX}) == "ffffffff-ffffffffffffffff");
}

TEST_CASE("append_offset appends after existing content") {
  std::string out = R"(42["ev",{},")";
  ferry::protocol::append_offset(out, {0xa, 0xb});
  CHECK(out == R"(42["ev",{},"0000000a-000000000000000b)");
}

TEST_CASE("parse_offset reads back what format_offset wrote") {
  for (offset o : {offset{0, 0}, offset{1, 1}, offset{0xdeadbeef, 0x0123456789abcdefull}, offset{UINT32_MAX, UINT64_MAX},
                   offset{0x80000000u, 0x8000000000000000ull}}) {
    auto text = ferry::protocol::format_offset(o);
    CAPTURE(text);
    auto r = ferry::protocol::parse_offset(exact_buffer(text).view());
    REQUIRE(r.ok());
    CHECK(*r == o);
  }
}

TEST_CASE("parse_offset round-trips random offsets") {
  random_source rnd(0x0ff5e7);
  for (int i = 0; i < 10000; ++i) {
    offset o{static_cast<uint32_t>(rnd.between(0, UINT32_MAX)), rnd.between(0, UINT64_MAX)};
    auto text = ferry::protocol::format_offset(o);
    REQUIRE(text.size() == ferry::protocol::offset_string_size);
    auto r = ferry::protocol::parse_offset(exact_buffer(text).view());
    REQUIRE(r.ok());
    CHECK(*r == o);
  }
}

TEST_CASE("offset strings sort like the offsets they encode") {
  random_source rnd(0x0ff5e8);
  std::vector<offset> offsets;
  for (int i = 0; i < 2000; ++i) {
    // a narrow epoch range so that equal epochs (ordered by seq) are common
    offsets.push_back({static_cast<uint32_t>(rnd.between(0, 3)),
                       rnd.chance(50) ? rnd.between(0, 1000) : rnd.between(0, UINT64_MAX)});
  }
  for (size_t i = 0; i + 1 < offsets.size(); ++i) {
    const auto& a = offsets[i];
    const auto& b = offsets[i + 1];
    auto sa = ferry::protocol::format_offset(a);
    auto sb = ferry::protocol::format_offset(b);
    CAPTURE(sa);
    CAPTURE(sb);
    CHECK((a < b) == (sa < sb));
    CHECK((a == b) == (sa == sb));
  }
  CHECK(ferry::protocol::format_offset({1, 9}) < ferry::protocol::format_offset({1, 10}));
  CHECK(ferry::protocol::format_offset({1, 0xf}) < ferry::protocol::format_offset({1, 0x10}));
}

TEST_CASE("parse_offset rejects anything that is not exactly an offset string") {
  struct row {
    std::string_view name;
    std::string text;
  };
  const std::vector<row> rows = {
      {"empty", ""},
      {"one digit short", "00000001-000000000000002"},
      {"one digit long", "00000001-00000000000000002"},
      {"short epoch", "0000001-00000000000000002"},
      {"long epoch", "000000001-000000000000002"},
      {"uppercase hex", "DEADBEEF-0000000000000001"},
      {"uppercase hex in seq", "deadbeef-000000000000000A"},
      {"no dash", "00000001_0000000000000002"},
      {"dash at the end", "000000010000000000000002-"},
      {"two dashes", "00000001-00000000-0000002"},
      {"not hex", "0000000g-0000000000000002"},
      {"space", "00000001-000000000000000 "},
      {"leading plus", "+0000001-0000000000000002"},
      {"minus in seq", "00000001--000000000000002"},
      {"0x prefix", "0x000001-0000000000000002"},
      {"NUL byte", "00000001-000000000000000\0"s},
      {"trailing newline", "00000001-0000000000000002\n"},
      {"decimal number", "12345"},
      {"a JSON string", R"("00000001-0000000000000002")"},
      {"high bytes", "\xff\xff\xff\xff\xff\xff\xff\xff-0000000000000002"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.name);
    auto p = ferry::protocol::parse_offset(exact_buffer(r.text).view());
    REQUIRE_FALSE(p.ok());
    CHECK(p.error() == errc::invalid_offset);
  }
}

TEST_CASE("parse_offset rejects every proper prefix of a valid offset") {
  std::string text = ferry::protocol::format_offset({0x12345678, 0x9abcdef012345678ull});
  for (size_t n = 0; n < text.size(); ++n) {
    CAPTURE(n);
    auto p = ferry::protocol::parse_offset(exact_buffer(std::string_view(text).substr(0, n)).view());
    REQUIRE_FALSE(p.ok());
    CHECK(p.error() == errc::invalid_offset);
  }
}

TEST_CASE("parse_offset rejects any single-character corruption outside the hex alphabet") {
  std::string good = "0123abcd-456789ef01234567";
  REQUIRE(ferry::protocol::parse_offset(good).ok());
  for (size_t i = 0; i < good.size(); ++i) {
    for (int c = 0; c < 256; ++c) {
      std::string bad = good;
      bad[i] = static_cast<char>(c);
      bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
      bool should_parse = i == 8 ? c == '-' : hex;
      CAPTURE(i);
      CAPTURE(c);
      CHECK(ferry::protocol::parse_offset(bad).ok() == should_parse);
    }
  }
}

TEST_CASE("encode_id makes a 20-character URL-safe base64 id like the reference base64id") {
  unsigned char zeros[15] = {};
  CHECK(ferry::protocol::encode_id(zeros) == "AAAAAAAAAAAAAAAAAAAA");

  unsigned char ones[15];
  std::fill(std::begin(ones), std::end(ones), 0xff);
  CHECK(ferry::protocol::encode_id(ones) == "____________________");  // '/' becomes '_'

  unsigned char pluses[15];
  for (size_t i = 0; i < 15; i += 3) {  // 0xfb 0xef 0xbe encodes as "++++"
    pluses[i] = 0xfb;
    pluses[i + 1] = 0xef;
    pluses[i + 2] = 0xbe;
  }
  CHECK(ferry::protocol::encode_id(pluses) == "--------------------");  // '+' becomes '-'

  random_source rnd(0x1d);
  for (int i = 0; i < 1000; ++i) {
    unsigned char bytes[15];
    for (auto& b : bytes) b = static_cast<unsigned char>(rnd.between(0, 255));
    auto id = ferry::protocol::encode_id(bytes);
    CHECK(id.size() == 20);
    CHECK(id.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
          std::string::npos);
  }
}
