// Tests for protocol/base64.h: standard alphabet, padding required, strict decoding
// (the "b<base64>" binary packets of Engine.IO long-polling payloads).
#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include "protocol/base64.h"
#include "support.h"

namespace base64 = ferry::protocol::base64;
using ferry::protocol::test::exact_buffer;
using ferry::protocol::test::random_source;
using namespace std::string_literals;

TEST_CASE("encode and decode match the RFC 4648 test vectors") {
  struct row {
    std::string_view bytes, text;
  };
  const std::vector<row> rows = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.bytes);
    CHECK(base64::encode(r.bytes) == r.text);
    std::string out;
    REQUIRE(base64::decode(exact_buffer(r.text).view(), out));
    CHECK(out == r.bytes);
  }
}

TEST_CASE("decode handles the Engine.IO spec example and both alphabet ends") {
  std::string out;
  REQUIRE(base64::decode("AQIDBA==", out));  // v4-current.md "HTTP long-polling"
  CHECK(out == "\x01\x02\x03\x04"s);
  REQUIRE(base64::decode("+/+/", out));
  CHECK(out == "\xfb\xff\xbf"s);
  REQUIRE(base64::decode("AAAA", out));
  CHECK(out == "\0\0\0"s);
  CHECK(base64::encode("\xff\xff\xff"s) == "////");
  CHECK(base64::encode("\xfb\xef\xbe"s) == "++++");
}

TEST_CASE("encode then decode gives back every byte value") {
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  std::string text = base64::encode(all);
  CHECK(text.size() == (256 + 2) / 3 * 4);
  std::string out;
  REQUIRE(base64::decode(text, out));
  CHECK(out == all);
}

TEST_CASE("encode then decode round-trips random bytes of every length up to 100") {
  random_source rnd(0xba5e'0001);
  for (size_t n = 0; n <= 100; ++n) {
    for (int k = 0; k < 5; ++k) {
      std::string bytes = rnd.bytes(n);
      std::string text = base64::encode(bytes);
      CHECK(text.size() == (n + 2) / 3 * 4);
      CHECK(text.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") ==
            std::string::npos);
      std::string out;
      REQUIRE(base64::decode(exact_buffer(text).view(), out));
      CHECK(out == bytes);
    }
  }
}

TEST_CASE("append_encoded appends after existing content") {
  std::string out = "b";
  base64::append_encoded(out, "\x01\x02\x03\x04"s);
  CHECK(out == "bAQIDBA==");
}

TEST_CASE("decode replaces the previous content of the output") {
  std::string out = "stale";
  REQUIRE(base64::decode("Zm8=", out));
  CHECK(out == "fo");
  REQUIRE(base64::decode("", out));
  CHECK(out.empty());
}

TEST_CASE("decode rejects malformed base64") {
  struct row {
    std::string_view name;
    std::string text;
  };
  const std::vector<row> rows = {
      {"length not a multiple of 4", "Zm9"},
      {"missing padding", "Zg"},
      {"one character", "Z"},
      {"too much padding", "Z==="},
      {"only padding", "===="},
      {"padding in the first two positions", "=Zm9"},
      {"padding in the second position", "Z=m9"},
      {"data after padding", "Zg=a"},
      {"padding in an earlier quantum", "Zg==Zm9v"},
      {"padding then more quanta", "Zm8=Zm8="},
      {"URL-safe minus", "Zm-v"},
      {"URL-safe underscore", "Zm_v"},
      {"space", "Zm9 "},
      {"newline between quanta", "Zm9v\nZm9v"},
      {"trailing CRLF", "Zm9v\r\n"},
      {"NUL byte", "Zm9\0"s},
      {"high byte", "Zm9\xc3"},
      {"dot", "Zm9."},
  };
  for (const auto& r : rows) {
    CAPTURE(r.name);
    std::string out;
    CHECK_FALSE(base64::decode(exact_buffer(r.text).view(), out));
  }
}

TEST_CASE("decode of every proper prefix of an encoding either fails or yields a prefix of the bytes") {
  // base64 is only self-delimiting per 4-character quantum: a prefix that ends on a quantum
  // boundary before the padded tail is valid and decodes to the matching leading bytes.
  random_source rnd(0xba5e'0002);
  for (int k = 0; k < 50; ++k) {
    std::string bytes = rnd.bytes(rnd.between(1, 40));
    std::string text = base64::encode(bytes);
    for (size_t n = 0; n < text.size(); ++n) {
      CAPTURE(n);
      std::string out;
      bool ok = base64::decode(exact_buffer(std::string_view(text).substr(0, n)).view(), out);
      CHECK(ok == (n % 4 == 0));
      if (ok) CHECK(out == bytes.substr(0, n / 4 * 3));
    }
  }
}
