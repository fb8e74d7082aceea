// Tests for tools/ferryctl/iso8601.h: the timestamps `replay --from time:...` accepts.
#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include "tools/ferryctl/iso8601.h"

using ferry::ferryctl::format_iso8601_ms;
using ferry::ferryctl::parse_iso8601_ms;

TEST_CASE("iso8601 parses UTC date-times, fractions, offsets and plain dates to ms since the epoch") {
  struct row {
    std::string_view text;
    int64_t ms;
  };
  const std::vector<row> rows = {
      {"1970-01-01T00:00:00Z", 0},
      {"1970-01-01T00:00:00.001Z", 1},
      {"2026-11-26T10:00:00Z", 1795687200000},
      {"2026-11-26t10:00:00z", 1795687200000},
      {"2026-11-26 10:00:00Z", 1795687200000},
      {"2026-11-26T10:00Z", 1795687200000},          // seconds optional
      {"2026-11-26T12:00:00+02:00", 1795687200000},  // offset east of UTC
      {"2026-11-26T12:00:00+0200", 1795687200000},
      {"2026-11-26T12:00:00+02", 1795687200000},
      {"2026-11-26T05:30:00-04:30", 1795687200000},  // offset west of UTC
      {"2026-11-26T10:00:00.5Z", 1795687200500},
      {"2026-11-26T10:00:00,25Z", 1795687200250},         // ISO 8601 decimal comma
      {"2026-11-26T10:00:00.123456789Z", 1795687200123},  // truncated to ms
      {"2026-11-26T12:00:00.999+02:00", 1795687200999},
      {"2026-11-26", 1795651200000},               // a date alone is midnight UTC
      {"2024-02-29T00:00:00Z", 1709164800000},     // leap day
      {"2000-02-29T23:59:59.999Z", 951868799999},  // 400-year leap rule
      {"1969-12-31T23:59:59Z", -1000},
  };
  for (const auto& r : rows) {
    CAPTURE(r.text);
    auto ms = parse_iso8601_ms(r.text);
    REQUIRE(ms.has_value());
    CHECK(*ms == r.ms);
  }
}

TEST_CASE("iso8601 rejects malformed text, impossible dates and a missing time zone with a reason") {
  const std::vector<std::string_view> bad = {
      "",
      "2026",
      "2026-11",
      "26-11-2026",
      "2026/11/26",
      "2026-13-01",
      "2026-00-10",
      "2026-02-29",  // not a leap year
      "1900-02-29",  // century rule
      "2026-04-31",
      "2026-11-26T10:00:00",  // no zone: local time would be ambiguous
      "2026-11-26T24:00:00Z",
      "2026-11-26T10:60:00Z",
      "2026-11-26T10:00:60Z",  // leap seconds are not accepted
      "2026-11-26T10:00:00.Z",
      "2026-11-26T10Z",
      "2026-11-26T10:00:00+2:00",
      "2026-11-26T10:00:00+24:00",
      "2026-11-26T10:00:00+02:60",
      "2026-11-26T10:00:00Zjunk",
      "2026-11-26T10:00:00 Z",
      "2026-11-26X10:00:00Z",
      " 2026-11-26T10:00:00Z",
  };
  for (auto text : bad) {
    CAPTURE(text);
    std::string why;
    CHECK_FALSE(parse_iso8601_ms(text, &why).has_value());
    CHECK_FALSE(why.empty());
  }
  std::string why;
  (void)parse_iso8601_ms("2026-11-26T10:00:00", &why);
  CHECK(why.find("time zone") != std::string::npos);
}

TEST_CASE("format_iso8601_ms prints UTC with milliseconds and round-trips through the parser") {
  CHECK(format_iso8601_ms(0) == "1970-01-01T00:00:00.000Z");
  CHECK(format_iso8601_ms(1795687200123) == "2026-11-26T10:00:00.123Z");
  CHECK(format_iso8601_ms(-1) == "1969-12-31T23:59:59.999Z");
  for (int64_t ms : {int64_t{0}, int64_t{1}, int64_t{951868799999}, int64_t{1795687200500}, int64_t{-86400001},
                     int64_t{4102444800000}}) {
    CAPTURE(ms);
    auto back = parse_iso8601_ms(format_iso8601_ms(ms));
    REQUIRE(back.has_value());
    CHECK(*back == ms);
  }
}
