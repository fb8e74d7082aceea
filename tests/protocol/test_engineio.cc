// Tests for protocol/engineio.h: Engine.IO v4 packets (WebSocket frames) and HTTP
// long-polling payloads (packets joined by 0x1e, binary as "b<base64>").
#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include "protocol/base64.h"
#include "protocol/engineio.h"
#include "protocol/json.h"
#include "support.h"

namespace eio = ferry::protocol::eio;
namespace json = ferry::protocol::json;
using ferry::protocol::errc;
using ferry::protocol::test::exact_buffer;
using ferry::protocol::test::random_source;
using namespace std::string_literals;

namespace {

// What a payload is expected to decode to; data is owned here.
struct expected_packet {
  eio::packet_type type;
  bool binary;
  std::string data;
};

void check_packets(const std::vector<eio::packet>& got, const std::vector<expected_packet>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    CAPTURE(i);
    CHECK(got[i].type == want[i].type);
    CHECK(got[i].binary == want[i].binary);
    CHECK(got[i].data == want[i].data);
  }
}

std::string encode_payload(const std::vector<expected_packet>& packets) {
  std::string body;
  for (const auto& p : packets) {
    if (p.binary) {
      eio::append_payload_packet(body, true, p.data);
    } else {
      std::string text;
      eio::append_text_packet(text, p.type, p.data);
      eio::append_payload_packet(body, false, text);
    }
  }
  return body;
}

const eio::packet_type all_types[] = {eio::packet_type::open,    eio::packet_type::close, eio::packet_type::ping,
                                      eio::packet_type::pong,    eio::packet_type::message, eio::packet_type::upgrade,
                                      eio::packet_type::noop};

}  // namespace

TEST_CASE("packet types have the digits of the v4 spec") {
  CHECK(static_cast<char>(eio::packet_type::open) == '0');
  CHECK(static_cast<char>(eio::packet_type::close) == '1');
  CHECK(static_cast<char>(eio::packet_type::ping) == '2');
  CHECK(static_cast<char>(eio::packet_type::pong) == '3');
  CHECK(static_cast<char>(eio::packet_type::message) == '4');
  CHECK(static_cast<char>(eio::packet_type::upgrade) == '5');
  CHECK(static_cast<char>(eio::packet_type::noop) == '6');
  CHECK(eio::record_separator == '\x1e');
}

TEST_CASE("decode_text decodes every packet type with and without data") {
  struct row {
    std::string frame;
    eio::packet_type type;
    std::string data;
  };
  const std::vector<row> rows = {
      {R"(0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000})",
       eio::packet_type::open,
       R"({"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000})"},
      {"0", eio::packet_type::open, ""},
      {"1", eio::packet_type::close, ""},
      {"2", eio::packet_type::ping, ""},
      {"2probe", eio::packet_type::ping, "probe"},
      {"3", eio::packet_type::pong, ""},
      {"3probe", eio::packet_type::pong, "probe"},
      {"4", eio::packet_type::message, ""},
      {"4hello", eio::packet_type::message, "hello"},
      {R"(42["foo"])", eio::packet_type::message, R"(2["foo"])"},
      {"4\xe2\x82\xac \x1e\0"s, eio::packet_type::message, "\xe2\x82\xac \x1e\0"s},  // data is opaque bytes
      {"5", eio::packet_type::upgrade, ""},
      {"6", eio::packet_type::noop, ""},
  };
  for (const auto& r : rows) {
    CAPTURE(r.frame);
    exact_buffer in(r.frame);
    auto p = eio::decode_text(in.view());
    REQUIRE(p.ok());
    CHECK(p->type == r.type);
    CHECK_FALSE(p->binary);
    CHECK(p->data == r.data);
    CHECK(p->data.data() == in.view().data() + 1);  // a view, not a copy
  }
}

TEST_CASE("decode_text rejects an empty frame and unknown packet types") {
  auto empty = eio::decode_text(exact_buffer("").view());
  REQUIRE_FALSE(empty.ok());
  CHECK(empty.error() == errc::empty_packet);

  // 'b' only means "base64 binary" inside a polling payload; in a WebSocket text frame it
  // is as unknown as any other byte.
  for (std::string frame : {"7"s, "8"s, "9"s, "/"s, "b"s, "bAQID"s, "x"s, " 4"s, "\x1e"s, "\0"s, "\xff"s, "-1"s}) {
    CAPTURE(frame);
    auto p = eio::decode_text(exact_buffer(frame).view());
    REQUIRE_FALSE(p.ok());
    CHECK(p.error() == errc::unknown_packet_type);
  }
}

TEST_CASE("decode_text succeeds for every prefix that keeps the type digit, and views the same bytes") {
  // Engine.IO text packets are framed by the transport, so every non-empty prefix of a valid
  // frame is itself a valid packet of the same type with truncated data.
  std::string frame = R"(42["chat",{"text":"h\u00e9llo"}])";
  CHECK(eio::decode_text(exact_buffer(frame.substr(0, 0)).view()).error() == errc::empty_packet);
  for (size_t n = 1; n <= frame.size(); ++n) {
    exact_buffer in(frame.substr(0, n));
    auto p = eio::decode_text(in.view());
    REQUIRE(p.ok());
    CHECK(p->type == eio::packet_type::message);
    CHECK(p->data == frame.substr(1, n - 1));
  }
}

TEST_CASE("decode_binary makes a binary message of the whole frame") {
  std::string bytes = "\x00\x01\xff"s;
  auto p = eio::decode_binary(bytes);
  CHECK(p.type == eio::packet_type::message);
  CHECK(p.binary);
  CHECK(p.data == bytes);
  CHECK(eio::decode_binary("").data.empty());
}

TEST_CASE("payload decodes the examples of the v4 spec") {
  eio::payload pl;
  exact_buffer body("4hello\x1e" "2\x1e" "4world");  // text packets view into the body
  REQUIRE(pl.decode(body.view()) == errc::ok);
  check_packets(pl.packets(), {{eio::packet_type::message, false, "hello"},
                               {eio::packet_type::ping, false, ""},
                               {eio::packet_type::message, false, "world"}});

  exact_buffer binary_body("4hello\x1e" "bAQIDBA==");
  REQUIRE(pl.decode(binary_body.view()) == errc::ok);
  check_packets(pl.packets(), {{eio::packet_type::message, false, "hello"},
                               {eio::packet_type::message, true, "\x01\x02\x03\x04"s}});
}

TEST_CASE("payload decodes a single packet and packets of every type") {
  eio::payload pl;
  REQUIRE(pl.decode("4hello") == errc::ok);
  check_packets(pl.packets(), {{eio::packet_type::message, false, "hello"}});

  std::string body;
  std::vector<expected_packet> want;
  for (auto t : all_types) {
    want.push_back({t, false, std::string("data-") + static_cast<char>(t)});
    want.push_back({t, false, ""});
  }
  body = encode_payload(want);
  exact_buffer in(body);
  REQUIRE(pl.decode(in.view()) == errc::ok);
  check_packets(pl.packets(), want);
}

TEST_CASE("payload decodes several binary parts and keeps every view valid") {
  // Binary parts are decoded into storage owned by the payload. Mix short parts (that live
  // inside std::string's small buffer) with long ones, so a reallocation that moved them
  // would leave dangling views (ASan reports it).
  std::vector<expected_packet> want;
  random_source rnd(0xe10'0001);
  for (int i = 0; i < 40; ++i) {
    if (i % 3 == 0) {
      want.push_back({eio::packet_type::message, false, "text " + std::to_string(i)});
    } else {
      want.push_back({eio::packet_type::message, true, rnd.bytes(i % 2 == 0 ? rnd.between(0, 8) : rnd.between(30, 300))});
    }
  }
  std::string body = encode_payload(want);
  exact_buffer in(body);
  eio::payload pl;
  REQUIRE(pl.decode(in.view()) == errc::ok);
  check_packets(pl.packets(), want);
}

TEST_CASE("payload decodes an empty binary part as an empty binary message") {
  eio::payload pl;
  exact_buffer body("b\x1e" "4x\x1e" "b");
  REQUIRE(pl.decode(body.view()) == errc::ok);
  check_packets(pl.packets(), {{eio::packet_type::message, true, ""},
                               {eio::packet_type::message, false, "x"},
                               {eio::packet_type::message, true, ""}});
}

TEST_CASE("payload rejects bodies with an empty, unknown or non-base64 part and is left empty") {
  struct row {
    std::string_view name;
    std::string body;
    errc error;
  };
  const std::vector<row> rows = {
      {"empty body", "", errc::empty_packet},
      {"leading separator", "\x1e" "4a", errc::empty_packet},
      {"trailing separator", "4a\x1e", errc::empty_packet},
      {"two separators in a row", "4a\x1e\x1e" "4b", errc::empty_packet},
      {"only a separator", "\x1e", errc::empty_packet},
      {"unknown type first", "7\x1e" "4a", errc::unknown_packet_type},
      {"unknown type in the middle", "4a\x1e" "x\x1e" "4b", errc::unknown_packet_type},
      {"unknown type last", "4a\x1e" "9", errc::unknown_packet_type},
      {"capital B is not binary", "BAQID", errc::unknown_packet_type},
      {"base64 without padding", "bAQIDBA", errc::invalid_base64},
      {"URL-safe base64", "b-_-_", errc::invalid_base64},
      {"base64 with a space", "bAQ IDB==", errc::invalid_base64},
      {"bad base64 after good packets", "4a\x1e" "bAQIDBA==\x1e" "b!!!!", errc::invalid_base64},
      {"separator inside base64", "bAQ\x1e" "IDBA==", errc::invalid_base64},
  };
  for (const auto& r : rows) {
    CAPTURE(r.name);
    eio::payload pl;
    REQUIRE(pl.decode("4previous") == errc::ok);
    CHECK(pl.decode(exact_buffer(r.body).view()) == r.error);
    CHECK(pl.packets().empty());
  }
}

TEST_CASE("payload can be reused: each decode replaces the previous packets") {
  eio::payload pl;
  REQUIRE(pl.decode("4a\x1e" "4b\x1e" "bAQ==") == errc::ok);
  CHECK(pl.packets().size() == 3);
  REQUIRE(pl.decode("2") == errc::ok);
  check_packets(pl.packets(), {{eio::packet_type::ping, false, ""}});
}

TEST_CASE("append_text_packet and append_payload_packet build what the reference encodePayload sends") {
  std::string frame;
  eio::append_text_packet(frame, eio::packet_type::ping);
  CHECK(frame == "2");
  frame.clear();
  eio::append_text_packet(frame, eio::packet_type::message, "hello");
  CHECK(frame == "4hello");

  std::string body;
  eio::append_payload_packet(body, false, "4hello");
  CHECK(body == "4hello");
  eio::append_payload_packet(body, true, "\x01\x02\x03\x04"s);
  CHECK(body == "4hello\x1e" "bAQIDBA==");
  eio::append_payload_packet(body, false, "2");
  CHECK(body == "4hello\x1e" "bAQIDBA==\x1e" "2");

  std::string only_binary;
  eio::append_payload_packet(only_binary, true, "");
  CHECK(only_binary == "b");
}

TEST_CASE("payload round-trips random sequences of text and binary packets") {
  random_source rnd(0xe10'0002);
  for (int round = 0; round < 300; ++round) {
    std::vector<expected_packet> want;
    size_t n = rnd.between(1, 12);
    for (size_t i = 0; i < n; ++i) {
      if (rnd.chance(30)) {
        want.push_back({eio::packet_type::message, true, rnd.bytes(rnd.between(0, 64))});
      } else {
        auto type = all_types[rnd.between(0, 6)];
        std::string data = rnd.utf8_string(16);
        std::erase(data, eio::record_separator);  // text packets cannot contain the separator
        want.push_back({type, false, data});
      }
    }
    std::string body = encode_payload(want);
    exact_buffer in(body);
    eio::payload pl;
    REQUIRE(pl.decode(in.view()) == errc::ok);
    check_packets(pl.packets(), want);
  }
}

TEST_CASE("payload decode of every prefix of a body never over-reads and yields only a truncation") {
  // A polling body is framed by HTTP, not by itself: a prefix can be a valid payload. What
  // must hold is that a prefix decodes to the leading packets of the full body, the last of
  // them possibly truncated, and never to anything else.
  const std::vector<expected_packet> want = {
      {eio::packet_type::open, false, R"({"sid":"abc"})"},
      {eio::packet_type::message, true, "\x01\x02\x03\x04\x05"s},
      {eio::packet_type::message, false, R"(2["ev",1])"},
      {eio::packet_type::ping, false, ""},
      {eio::packet_type::message, true, ""},
      {eio::packet_type::message, true, "xyz"},
  };
  std::string body = encode_payload(want);
  for (size_t n = 0; n <= body.size(); ++n) {
    CAPTURE(n);
    exact_buffer in(std::string_view(body).substr(0, n));
    eio::payload pl;
    errc e = pl.decode(in.view());
    if (n == body.size()) {
      REQUIRE(e == errc::ok);
      check_packets(pl.packets(), want);
      continue;
    }
    if (e != errc::ok) {
      CHECK(pl.packets().empty());
      continue;
    }
    const auto& got = pl.packets();
    REQUIRE(!got.empty());
    REQUIRE(got.size() <= want.size());
    for (size_t i = 0; i + 1 < got.size(); ++i) {
      CHECK(got[i].type == want[i].type);
      CHECK(got[i].binary == want[i].binary);
      CHECK(got[i].data == want[i].data);
    }
    const auto& last = got.back();
    const auto& full = want[got.size() - 1];
    CHECK(last.type == full.type);
    CHECK(last.binary == full.binary);
    CHECK(std::string_view(full.data).substr(0, last.data.size()) == last.data);
  }
}

TEST_CASE("a polling body split at random points decodes the same once the accumulator has it all") {
  random_source rnd(0xe10'0003);
  for (int round = 0; round < 200; ++round) {
    std::vector<expected_packet> want;
    size_t n = rnd.between(1, 8);
    for (size_t i = 0; i < n; ++i) {
      if (rnd.chance(40)) want.push_back({eio::packet_type::message, true, rnd.bytes(rnd.between(0, 40))});
      else want.push_back({eio::packet_type::message, false, json::quoted(rnd.utf8_string(10))});
    }
    std::string body = encode_payload(want);
    ferry::protocol::test::http_body_accumulator acc(body.size());
    size_t at = 0;
    for (size_t chunk : rnd.chunk_sizes(body.size(), 7)) {
      CHECK_FALSE(acc.complete());
      REQUIRE(acc.feed(std::string_view(body).substr(at, chunk)));
      at += chunk;
    }
    REQUIRE(acc.complete());
    CHECK_FALSE(acc.feed("x"));  // more than Content-Length is a framing error
    exact_buffer in(acc.body());
    eio::payload pl;
    REQUIRE(pl.decode(in.view()) == errc::ok);
    check_packets(pl.packets(), want);
  }
}

TEST_CASE("packets in concatenated length-prefixed frames decode the same however the stream is chunked") {
  random_source rnd(0xe10'0004);
  for (int round = 0; round < 100; ++round) {
    std::vector<expected_packet> want;
    std::string stream;
    size_t n = rnd.between(1, 10);
    for (size_t i = 0; i < n; ++i) {
      if (rnd.chance(30)) {
        // sizes across the 1-, 3- and 9-byte header forms
        size_t size = rnd.chance(20) ? rnd.between(126, 70000) : rnd.between(0, 125);
        want.push_back({eio::packet_type::message, true, rnd.bytes(size)});
        ferry::protocol::test::append_stream_frame(stream, true, want.back().data);
      } else {
        want.push_back({all_types[rnd.between(0, 6)], false, rnd.utf8_string(20)});
        std::string frame;
        eio::append_text_packet(frame, want.back().type, want.back().data);
        ferry::protocol::test::append_stream_frame(stream, false, frame);
      }
    }
    ferry::protocol::test::frame_accumulator acc;
    std::vector<ferry::protocol::test::stream_frame> frames;
    size_t at = 0;
    for (size_t chunk : rnd.chunk_sizes(stream.size(), rnd.chance(50) ? 1 : 5000)) {
      acc.feed(std::string_view(stream).substr(at, chunk), frames);
      at += chunk;
    }
    CHECK(acc.pending_bytes() == 0);
    REQUIRE(frames.size() == want.size());
    for (size_t i = 0; i < frames.size(); ++i) {
      CAPTURE(i);
      exact_buffer in(frames[i].bytes);
      eio::packet p;
      if (frames[i].binary) {
        p = eio::decode_binary(in.view());
      } else {
        auto r = eio::decode_text(in.view());
        REQUIRE(r.ok());
        p = *r;
      }
      CHECK(p.type == want[i].type);
      CHECK(p.binary == want[i].binary);
      CHECK(p.data == want[i].data);
    }
  }
}

TEST_CASE("encode_open writes the handshake with the reference server's key order") {
  eio::handshake h;
  h.sid = "lv_VI97HAXpY6yYWAAAC";
  h.upgrade_to_websocket = true;
  CHECK(eio::encode_open(h) ==
        R"(0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000})");

  h.upgrade_to_websocket = false;
  h.ping_interval_ms = 300;
  h.ping_timeout_ms = 200;
  h.max_payload = 1ull << 40;
  CHECK(eio::encode_open(h) ==
        R"(0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":1099511627776})");
}

TEST_CASE("encode_open produces an open packet whose data is valid compact JSON even for odd sids") {
  eio::handshake h;
  h.sid = "a\"b\\c\n";
  std::string open = eio::encode_open(h);
  auto p = eio::decode_text(open);
  REQUIRE(p.ok());
  CHECK(p->type == eio::packet_type::open);
  auto v = json::parse(p->data);
  REQUIRE(v.ok());
  CHECK(json::is_compact(p->data));
  json::value sid;
  REQUIRE(json::find_member(*v, "sid", sid));
  CHECK(json::unescape(sid) == h.sid);
  json::value interval;
  REQUIRE(json::find_member(*v, "pingInterval", interval));
  uint64_t ms = 0;
  REQUIRE(json::as_uint64(interval, ms));
  CHECK(ms == 25000);
}
