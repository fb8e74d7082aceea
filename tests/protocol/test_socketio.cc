// Tests for protocol/socketio.h: the Socket.IO v5 packet codec, payload validation as in
// socket.io-parser's isPayloadValid, and the binary attachment reassembler.
//
// The tables were cross-checked against socket.io-parser 4.2.7 (the decoder shipped with
// socket.io 4.x). Where Ferry differs it is stricter, never more lenient:
//  - BINARY_* without a payload are rejected (nothing for the attachments to belong to);
//  - an attachment count must be plain digits ("5-", "5+1-" and "5 1-" are rejected);
//  - ack ids above 2^53 are rejected (JavaScript would silently round them);
//  - a space is not an ack id (the reference reads "4 5" as CONNECT_ERROR id 5, and the
//    empty string as CONNECT, because Number(" ") and Number("") are 0);
//  - invalid UTF-8 and JSON nested deeper than decode_limits::max_json_depth are rejected;
//  - placeholder "num" must be a plain integer (the reference also takes 0.0 or 1e0).
// As in the reference, EVENT and ACK without a payload are accepted ("2", "3"; the server
// ignores such an event), and a binary packet announcing 0 attachments ("50-[...]") is
// rejected (4.2.7 requires 1..maxAttachments).
#include <doctest/doctest.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/engineio.h"
#include "protocol/json.h"
#include "protocol/socketio.h"
#include "support.h"

namespace sio = ferry::protocol::sio;
namespace eio = ferry::protocol::eio;
namespace json = ferry::protocol::json;
using ferry::protocol::errc;
using ferry::protocol::test::exact_buffer;
using ferry::protocol::test::random_source;
using namespace std::string_literals;
using status = sio::reassembler::status;

namespace {

struct valid_case {
  std::string text;
  sio::packet_type type;
  std::string_view nsp = "/";
  std::optional<uint64_t> id = std::nullopt;
  uint32_t attachments = 0;
  std::string_view data = {};
};

std::string placeholder(int num) { return R"({"_placeholder":true,"num":)" + std::to_string(num) + "}"; }

// Every packet type, namespaces with and without the comma, ack ids, attachments, numeric
// event names, whitespace inside the JSON. Examples from v5-current.md "Packet encoding".
const std::vector<valid_case> valid_packets = {
    {"0", sio::packet_type::connect},
    {"2", sio::packet_type::event},  // no payload: accepted like the reference, then ignored
    {"212", sio::packet_type::event, "/", 12},
    {"2/admin,", sio::packet_type::event, "/admin"},
    // without the comma the namespace runs to the end, leaving no payload (as in the reference)
    {R"(2/admin["a"])", sio::packet_type::event, R"(/admin["a"])"},
    {"3", sio::packet_type::ack},
    {"312", sio::packet_type::ack, "/", 12},
    {R"(0{"token":"123"})", sio::packet_type::connect, "/", {}, 0, R"({"token":"123"})"},
    {"0/admin,", sio::packet_type::connect, "/admin"},
    {"0/admin", sio::packet_type::connect, "/admin"},  // no comma: the namespace runs to the end
    {R"(0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"})", sio::packet_type::connect, "/admin", {}, 0,
     R"({"sid":"oSO0OpakMV_3jnilAAAA"})"},
    {R"(0{"pid":"p","offset":"00000001-0000000000000002"})", sio::packet_type::connect, "/", {}, 0,
     R"({"pid":"p","offset":"00000001-0000000000000002"})"},
    {R"(0/a/b-c_d.e,{})", sio::packet_type::connect, "/a/b-c_d.e", {}, 0, "{}"},
    {"1", sio::packet_type::disconnect},
    {"1/admin,", sio::packet_type::disconnect, "/admin"},
    {"1/admin", sio::packet_type::disconnect, "/admin"},
    {R"(2["foo"])", sio::packet_type::event, "/", {}, 0, R"(["foo"])"},
    {R"(2/admin,["bar"])", sio::packet_type::event, "/admin", {}, 0, R"(["bar"])"},
    {R"(212["foo"])", sio::packet_type::event, "/", 12, 0, R"(["foo"])"},
    {R"(20["foo"])", sio::packet_type::event, "/", 0, 0, R"(["foo"])"},
    {R"(2/test,1["a",1,{}])", sio::packet_type::event, "/test", 1, 0, R"(["a",1,{}])"},
    {R"(2/123,45["x"])", sio::packet_type::event, "/123", 45, 0, R"(["x"])"},
    {R"(29007199254740992["big"])", sio::packet_type::event, "/", uint64_t{1} << 53, 0, R"(["big"])"},
    {R"(2[1,"a",{}])", sio::packet_type::event, "/", {}, 0, R"([1,"a",{}])"},
    {R"(2[0])", sio::packet_type::event, "/", {}, 0, R"([0])"},
    {R"(2[-1.5e3,"x"])", sio::packet_type::event, "/", {}, 0, R"([-1.5e3,"x"])"},
    {R"(2["Connect"])", sio::packet_type::event, "/", {}, 0, R"(["Connect"])"},
    {R"(2["connect "])", sio::packet_type::event, "/", {}, 0, R"(["connect "])"},
    {R"(2["newlistener"])", sio::packet_type::event, "/", {}, 0, R"(["newlistener"])"},
    {R"(2["foo","connect"])", sio::packet_type::event, "/", {}, 0, R"(["foo","connect"])"},
    {R"(2[""])", sio::packet_type::event, "/", {}, 0, R"([""])"},
    {R"(2["\u00e9v\n"])", sio::packet_type::event, "/", {}, 0, R"(["\u00e9v\n"])"},
    {"2[ \"foo\" , 1 ,\n{ } ]", sio::packet_type::event, "/", {}, 0, "[ \"foo\" , 1 ,\n{ } ]"},
    {R"(2["foo"] )", sio::packet_type::event, "/", {}, 0, R"(["foo"] )"},
    {R"(2["publish",{"topic":"t","event":"e","data":[1,2,{"x":null}],"id":"abc"}])", sio::packet_type::event, "/", {},
     0, R"(["publish",{"topic":"t","event":"e","data":[1,2,{"x":null}],"id":"abc"}])"},
    {R"(3/admin,13["bar"])", sio::packet_type::ack, "/admin", 13, 0, R"(["bar"])"},
    {R"(3123["a",1,{}])", sio::packet_type::ack, "/", 123, 0, R"(["a",1,{}])"},
    {"30[]", sio::packet_type::ack, "/", 0, 0, "[]"},
    {R"(3["connect"])", sio::packet_type::ack, "/", {}, 0, R"(["connect"])"},  // names only matter in events
    {R"(37[{"ok":true,"offset":"00000001-0000000000000002","duplicate":false}])", sio::packet_type::ack, "/", 7, 0,
     R"([{"ok":true,"offset":"00000001-0000000000000002","duplicate":false}])"},
    {R"(4{"message":"Not authorized"})", sio::packet_type::connect_error, "/", {}, 0, R"({"message":"Not authorized"})"},
    {R"(4"Unauthorized")", sio::packet_type::connect_error, "/", {}, 0, R"("Unauthorized")"},
    {"4", sio::packet_type::connect_error},
    {R"(4/admin,{"message":"x","data":{"a":1}})", sio::packet_type::connect_error, "/admin", {}, 0,
     R"({"message":"x","data":{"a":1}})"},
    {R"(51-["baz",{"_placeholder":true,"num":0}])", sio::packet_type::binary_event, "/", {}, 1,
     R"(["baz",{"_placeholder":true,"num":0}])"},
    {R"(52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}])",
     sio::packet_type::binary_event, "/admin", {}, 2,
     R"(["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}])"},
    {R"(51-/cool,23["a",{"b":["c",{"_placeholder":true,"num":0}]}])", sio::packet_type::binary_event, "/cool", 23, 1,
     R"(["a",{"b":["c",{"_placeholder":true,"num":0}]}])"},
    {R"(51-[7,{"_placeholder":true,"num":0}])", sio::packet_type::binary_event, "/", {}, 1,
     R"([7,{"_placeholder":true,"num":0}])"},
    {R"(510-["ten"])", sio::packet_type::binary_event, "/", {}, 10, R"(["ten"])"},
    {R"(61-15["bar",{"_placeholder":true,"num":0}])", sio::packet_type::binary_ack, "/", 15, 1,
     R"(["bar",{"_placeholder":true,"num":0}])"},
    {R"(61-/back,127["a",{"_placeholder":true,"num":0},{}])", sio::packet_type::binary_ack, "/back", 127, 1,
     R"(["a",{"_placeholder":true,"num":0},{}])"},
    {R"(62-3[{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}])", sio::packet_type::binary_ack, "/", 3, 2,
     R"([{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}])"},
};

struct invalid_case {
  std::string_view name;
  std::string text;
  errc error;
};

std::string deep_event(unsigned inner_depth) {
  return R"(2["deep",)" + std::string(inner_depth, '[') + std::string(inner_depth, ']') + "]";
}

const std::vector<invalid_case> invalid_packets = {
    {"empty text", "", errc::empty_packet},
    {"type 7", "7", errc::unknown_packet_type},
    {"type 9 with more digits", "999", errc::unknown_packet_type},
    {"letter as type", R"(a["x"])", errc::unknown_packet_type},
    {"leading space", R"( 2["x"])", errc::unknown_packet_type},
    {"minus as type", "-1", errc::unknown_packet_type},
    {"Engine.IO message prefix left on", R"(42["x"])", errc::invalid_payload},  // CONNECT_ERROR id 2, array
    {"binary event without attachment count", "5", errc::invalid_attachment_count},
    {"binary event announcing zero attachments", R"(50-["a"])", errc::invalid_attachment_count},
    {"binary ack announcing zero attachments", "60-1[]", errc::invalid_attachment_count},
    {"attachment count without dash", "51", errc::invalid_attachment_count},
    {"letter as attachment count", "5a-", errc::invalid_attachment_count},
    {"fractional attachment count", "51.23-", errc::invalid_attachment_count},
    {"empty attachment count", R"(5-["a"])", errc::invalid_attachment_count},
    {"signed attachment count", R"(5+1-["a"])", errc::invalid_attachment_count},
    {"attachment count with a space", R"(5 1-["a"])", errc::invalid_attachment_count},
    {"attachment count overflowing 64 bits", R"(518446744073709551616-["a"])", errc::invalid_attachment_count},
    {"binary ack without attachment count", R"(615["a"])", errc::invalid_attachment_count},
    {"dash only inside the payload", R"(5["a",-1])", errc::invalid_attachment_count},
    {"11 attachments with the default limit of 10", R"(511-["a"])", errc::too_many_attachments},
    {"attachment count far above the limit", R"(6999999-1["a"])", errc::too_many_attachments},
    {"CONNECT with an array", "0[]", errc::invalid_payload},
    {"CONNECT with a string", R"(0/admin,"invalid")", errc::invalid_payload},
    {"CONNECT with a boolean", "0true", errc::invalid_payload},
    {"CONNECT with null", "0null", errc::invalid_payload},
    {"CONNECT with whitespace only", "0 ", errc::invalid_json},
    {"DISCONNECT with an object", "1/admin,{}", errc::invalid_payload},
    {"DISCONNECT with an array", "1[]", errc::invalid_payload},
    {"DISCONNECT with a string", R"(1"bye")", errc::invalid_payload},
    {"EVENT with an unterminated string", R"(2/admin,"invalid)", errc::invalid_json},
    {"EVENT with an object", "2/admin,{}", errc::invalid_payload},
    {"EVENT with a string", R"(2"foo")", errc::invalid_payload},
    {"EVENT with an empty array", "2[]", errc::invalid_payload},
    {"EVENT named by an object", R"(2[{"toString":"foo"}])", errc::invalid_payload},
    {"EVENT named by a boolean", R"(2[true,"foo"])", errc::invalid_payload},
    {"EVENT named by null", R"(2[null,"bar"])", errc::invalid_payload},
    {"EVENT named by an array", R"(2[["a"]])", errc::invalid_payload},
    {"ACK with an object", R"(3{"a":1})", errc::invalid_payload},
    {"ACK with a string", R"(31"a")", errc::invalid_payload},
    {"ACK with null", "3null", errc::invalid_payload},
    {"CONNECT_ERROR with an array", R"(4["a"])", errc::invalid_payload},
    {"CONNECT_ERROR with a boolean", "4true", errc::invalid_payload},
    {"CONNECT_ERROR with null", "4null", errc::invalid_payload},
    {"CONNECT_ERROR with a number after a space", "4 5", errc::invalid_payload},
    {"CONNECT_ERROR with unterminated JSON", R"(442["some","data")", errc::invalid_json},
    {"BINARY_EVENT without payload", "51-", errc::invalid_payload},
    {"BINARY_EVENT with an object", "51-{}", errc::invalid_payload},
    {"BINARY_EVENT with an empty array", "51-[]", errc::invalid_payload},
    {"BINARY_EVENT with a reserved name", R"(51-["connect",{"_placeholder":true,"num":0}])", errc::invalid_payload},
    {"BINARY_ACK without payload", "61-15", errc::invalid_payload},
    {"BINARY_ACK with an object", "61-15{}", errc::invalid_payload},
    {"ack id beyond 2^53", R"(29007199254740993["a"])", errc::invalid_ack_id},
    {"ack id overflowing 64 bits", R"(2100000000000000000000["a"])", errc::invalid_ack_id},
    {"trailing garbage after the payload", R"(2["a"]x)", errc::invalid_json},
    {"two JSON values", R"(2["a"]["b"])", errc::invalid_json},
    {"leading zero in a number", R"(2["a",01])", errc::invalid_json},
    {"trailing dot in a number", R"(2["a",1.])", errc::invalid_json},
    {"NaN", R"(2["a",NaN])", errc::invalid_json},
    {"raw control character in the event name", "2[\"a\x01\"]", errc::invalid_json},
    {"raw newline in a string", "2[\"a\nb\"]", errc::invalid_json},
    {"invalid UTF-8 in the event name", "2[\"\xff\"]", errc::invalid_json},
    {"overlong UTF-8 in an argument", "2[\"a\",\"\xc0\xaf\"]", errc::invalid_json},
    {"bad escape", R"(2["\x41"])", errc::invalid_json},
    {"truncated unicode escape", R"(2["\u12"])", errc::invalid_json},
    {"single quotes", "2['a']", errc::invalid_json},
    {"unclosed array", R"(2["a")", errc::invalid_json},
    {"JSON one level too deep", deep_event(64), errc::json_too_deep},
    {"JSON far too deep", deep_event(100000), errc::json_too_deep},
};

sio::packet decode_ok(std::string_view text, const sio::decode_limits& limits = {}) {
  auto r = sio::decode(text, limits);
  REQUIRE_MESSAGE(r.ok(), "should decode: ", text, " error: ", ferry::protocol::to_string(r.error()));
  return *r;
}

bool is_binary(sio::packet_type t) { return t == sio::packet_type::binary_event || t == sio::packet_type::binary_ack; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

void check_matches(const sio::packet& p, const valid_case& c) {
  CHECK(p.type == c.type);
  CHECK(p.nsp == c.nsp);
  CHECK(p.id == c.id);
  CHECK(p.attachments == c.attachments);
  CHECK(p.data == c.data);
  if (!c.data.empty()) CHECK(p.payload.raw == trim(c.data));
}

}  // namespace

TEST_CASE("decode accepts every valid packet in the table and reports each field") {
  for (const auto& c : valid_packets) {
    CAPTURE(c.text);
    exact_buffer in(c.text);
    auto r = sio::decode(in.view());
    REQUIRE_MESSAGE(r.ok(), ferry::protocol::to_string(r.error()));
    check_matches(*r, c);
    if (!c.data.empty()) {
      // views into the input, not copies
      CHECK(r->data.data() >= in.view().data());
      CHECK(r->data.data() + r->data.size() == in.view().data() + in.view().size());
    }
  }
}

TEST_CASE("decode rejects every invalid packet in the table with the expected error") {
  for (const auto& c : invalid_packets) {
    CAPTURE(c.name);
    auto r = sio::decode(exact_buffer(c.text).view());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error() == c.error);
  }
}

TEST_CASE("decode accepts JSON nested exactly to the depth limit") {
  auto p = decode_ok(deep_event(63));  // the event array itself is level 1
  CHECK(p.type == sio::packet_type::event);
}

TEST_CASE("decode honours custom limits for attachments and JSON depth") {
  sio::decode_limits two;
  two.max_attachments = 2;
  // socket.io-parser test "throws an error when receiving too many attachments"
  auto three = sio::decode(
      R"(53-["hello",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1},{"_placeholder":true,"num":2}])", two);
  REQUIRE_FALSE(three.ok());
  CHECK(three.error() == errc::too_many_attachments);
  CHECK(decode_ok(R"(52-["a"])", two).attachments == 2);

  sio::decode_limits none;
  none.max_attachments = 0;
  CHECK(sio::decode(R"(51-["a"])", none).error() == errc::too_many_attachments);
  CHECK(sio::decode(R"(50-["a"])", none).error() == errc::invalid_attachment_count);

  sio::decode_limits shallow;
  shallow.max_json_depth = 2;
  CHECK(decode_ok(R"(2["a",[1]])", shallow).type == sio::packet_type::event);
  CHECK(sio::decode(R"(2["a",[[1]]])", shallow).error() == errc::json_too_deep);
  CHECK(sio::decode(R"(0{"a":{"b":{}}})", shallow).error() == errc::json_too_deep);
}

TEST_CASE("reserved event names are exactly socket.io-parser's RESERVED_EVENTS") {
  for (std::string_view name : {"connect", "connect_error", "disconnect", "disconnecting", "newListener",
                                "removeListener"})
    CHECK(sio::is_reserved_event(name));
  for (std::string_view name : {"", "Connect", "connect ", "connection", "connecting", "error", "message",
                                "newlistener", "removelistener", "disconnected", "subscribe", "publish"})
    CHECK_FALSE(sio::is_reserved_event(name));
}

TEST_CASE("decode rejects an event named by a reserved name, however the name is spelled in JSON") {
  for (std::string name : {"connect"s, "connect_error"s, "disconnect"s, "disconnecting"s, "newListener"s,
                           "removeListener"s}) {
    CAPTURE(name);
    // the same string with its first letter as a \u escape: JSON.parse yields the same name
    char escaped[8];
    std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(name[0]));
    std::string spelled_escaped = "\"" + std::string(escaped) + name.substr(1) + "\"";
    for (const std::string& quoted : {json::quoted(name), spelled_escaped}) {
      for (const std::string& text :
           {"2[" + quoted + "]", "2[" + quoted + ",1,{}]", "2/admin,5[" + quoted + "]",
            "51-[" + quoted + "," + placeholder(0) + "]", "51-/x,9[" + quoted + "," + placeholder(0) + "]"}) {
        CAPTURE(text);
        auto r = sio::decode(exact_buffer(text).view());
        REQUIRE_FALSE(r.ok());
        CHECK(r.error() == errc::invalid_payload);
      }
      // ...but it is an ordinary string anywhere else
      CHECK(decode_ok("2[\"ev\"," + quoted + "]").type == sio::packet_type::event);
      CHECK(decode_ok("3[" + quoted + "]").type == sio::packet_type::ack);
      CHECK(decode_ok("4" + quoted).type == sio::packet_type::connect_error);
    }
  }
}

TEST_CASE("decode of every proper prefix of a valid packet never over-reads and never yields a truncated payload") {
  // The codec decodes complete frames. A truncated EVENT/ACK always loses (part of) its JSON
  // array, so it must fail (unless all that was cut is trailing whitespace). CONNECT,
  // DISCONNECT and CONNECT_ERROR have optional payloads, so a prefix may be a valid
  // header-only packet, but never one with truncated data.
  for (const auto& c : valid_packets) {
    CAPTURE(c.text);
    for (size_t n = 0; n < c.text.size(); ++n) {
      CAPTURE(n);
      exact_buffer in(std::string_view(c.text).substr(0, n));
      auto r = sio::decode(in.view());
      if (!r.ok()) continue;
      CHECK(r->type == c.type);
      // only trailing whitespace may be missing from a prefix that decodes with data
      bool only_whitespace_cut = trim(std::string_view(c.text).substr(n)).empty();
      if (is_binary(c.type)) CHECK(only_whitespace_cut);
      else CHECK((r->data.empty() || only_whitespace_cut));
    }
    CHECK(sio::decode(exact_buffer(c.text).view()).ok());
  }
}

TEST_CASE("append_header, append_event and append_ack produce the encodings of the v5 spec") {
  std::string out;
  sio::append_header(out, sio::packet_type::connect, "/", 0, std::nullopt);
  CHECK(out == "0");

  out.clear();
  sio::append_header(out, sio::packet_type::connect, "/admin", 0, std::nullopt);
  out += R"({"sid":"oSO0OpakMV_3jnilAAAA"})";
  CHECK(out == R"(0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"})");

  out.clear();
  sio::append_header(out, sio::packet_type::connect_error, "/", 0, std::nullopt);
  out += R"({"message":"Not authorized"})";
  CHECK(out == R"(4{"message":"Not authorized"})");

  out.clear();
  sio::append_event(out, "/", R"("foo")", "");
  CHECK(out == R"(2["foo"])");

  out.clear();
  sio::append_event(out, "/admin", R"("bar")", "");
  CHECK(out == R"(2/admin,["bar"])");

  out.clear();
  sio::append_event(out, "/", R"("baz")", placeholder(0), 1);
  CHECK(out == R"(51-["baz",{"_placeholder":true,"num":0}])");

  out.clear();
  sio::append_event(out, "/admin", R"("baz")", placeholder(0) + "," + placeholder(1), 2);
  CHECK(out == R"(52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}])");

  out.clear();
  sio::append_event(out, "/", R"("foo")", "", 0, 12);
  CHECK(out == R"(212["foo"])");

  out.clear();
  sio::append_ack(out, "/admin", 13, R"("bar")");
  CHECK(out == R"(3/admin,13["bar"])");

  out.clear();
  sio::append_ack(out, "/", 15, R"("bar",)" + placeholder(0), 1);
  CHECK(out == R"(61-15["bar",{"_placeholder":true,"num":0}])");

  out.clear();
  sio::append_header(out, sio::packet_type::disconnect, "/", 0, std::nullopt);
  CHECK(out == "1");
  out.clear();
  sio::append_header(out, sio::packet_type::disconnect, "/admin", 0, std::nullopt);
  CHECK(out == "1/admin,");
}

TEST_CASE("append_header edge cases: empty namespace, ack id 0, zero attachments, attachments on text types") {
  std::string out;
  sio::append_header(out, sio::packet_type::event, "", 0, std::nullopt);
  CHECK(out == "2");
  out.clear();
  sio::append_event(out, "/", R"("foo")", "", 0, 0);
  CHECK(out == R"(20["foo"])");
  out.clear();
  sio::append_header(out, sio::packet_type::binary_event, "/", 0, std::nullopt);
  CHECK(out == "50-");
  out.clear();
  sio::append_header(out, sio::packet_type::event, "/", 3, std::nullopt);  // only binary types carry a count
  CHECK(out == "2");
  out.clear();
  sio::append_ack(out, "/", 9007199254740992ull, "");
  CHECK(out == "39007199254740992[]");
  out = "keep:";
  sio::append_event(out, "/", "1", "2");
  CHECK(out == "keep:2[1,2]");
}

TEST_CASE("every valid packet re-encodes to the same bytes from its decoded fields") {
  for (const auto& c : valid_packets) {
    if (c.nsp != "/" && c.text.find(std::string(c.nsp) + ",") == std::string::npos) continue;  // comma-less input
    if (c.data != trim(c.data) || (c.data.size() > 1 && !json::is_compact(c.data))) continue;  // not canonical
    CAPTURE(c.text);
    auto p = decode_ok(c.text);
    std::string out;
    sio::append_header(out, p.type, p.nsp, p.attachments, p.id);
    out += p.data;
    CHECK(out == c.text);
  }
}

TEST_CASE("split_event separates the event name from the raw arguments") {
  struct row {
    std::string_view text, name, args;
  };
  const std::vector<row> rows = {
      {R"(2["ev",1,"2"])", R"("ev")", R"(1,"2")"},
      {R"(2["ev"])", R"("ev")", ""},
      {"2[ \"ev\" , 1 , [ 2 ] ]", R"("ev")", "1 , [ 2 ]"},
      {"2[\"ev\"\n]", R"("ev")", ""},
      {R"(2[42,{"a":[1,2]}])", "42", R"({"a":[1,2]})"},
      {R"(2/x,7["ev",null])", R"("ev")", "null"},
      {R"(51-["file",{"_placeholder":true,"num":0}])", R"("file")", R"({"_placeholder":true,"num":0})"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.text);
    auto p = decode_ok(r.text);
    auto ev = sio::split_event(p);
    CHECK(ev.name.raw == r.name);
    CHECK(ev.args == r.args);
    // the arguments re-assemble to the original array
    std::string rebuilt = "[" + std::string(r.name) + (r.args.empty() ? "" : ",") + std::string(r.args) + "]";
    auto again = json::parse(rebuilt);
    REQUIRE(again.ok());
    CHECK(json::minify(again->raw) == json::minify(p.payload.raw));
  }
}

TEST_CASE("array_contents strips the brackets and surrounding whitespace") {
  CHECK(sio::array_contents(*json::parse("[]")).empty());
  CHECK(sio::array_contents(*json::parse("[ \n ]")).empty());
  CHECK(sio::array_contents(*json::parse("[1,2]")) == "1,2");
  CHECK(sio::array_contents(*json::parse("[ 1 , \"a b\" ]")) == "1 , \"a b\"");
  auto ack = decode_ok(R"(3/admin,13["bar",{"ok":true}])");
  CHECK(sio::array_contents(ack.payload) == R"("bar",{"ok":true})");
}

TEST_CASE("check_placeholders accepts references below the count and rejects everything else") {
  struct row {
    std::string_view name;
    std::string payload;
    uint32_t count;
    errc expected;
  };
  const std::vector<row> rows = {
      {"no placeholder", R"(["a",1,{"b":[2]}])", 0, errc::ok},
      {"one in range", R"(["a",{"_placeholder":true,"num":0}])", 1, errc::ok},
      {"nested in objects and arrays", R"(["a",{"b":["c",{"_placeholder":true,"num":1}]}])", 2, errc::ok},
      {"out of order", R"([{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}])", 2, errc::ok},
      {"same attachment twice", R"([{"_placeholder":true,"num":0},{"_placeholder":true,"num":0}])", 1, errc::ok},
      {"extra keys and whitespace", R"([ { "num" : 0 , "x":1, "_placeholder" : true } ])", 1, errc::ok},
      {"escaped key", R"([{"\u005fplaceholder":true,"num":0}])", 1, errc::ok},
      {"_placeholder false is ordinary data", R"([{"_placeholder":false,"num":9}])", 1, errc::ok},
      {"_placeholder as a string is ordinary data", R"([{"_placeholder":"true","num":9}])", 1, errc::ok},
      {"_placeholder 1 is ordinary data", R"([{"_placeholder":1,"num":9}])", 1, errc::ok},
      {"num equal to the count", R"(["a",{"_placeholder":true,"num":1}])", 1, errc::invalid_placeholder},
      {"num far out of range", R"(["a",{"_placeholder":true,"num":4294967296}])", 10, errc::invalid_placeholder},
      {"num beyond 64 bits", R"(["a",{"_placeholder":true,"num":99999999999999999999}])", 10,
       errc::invalid_placeholder},
      {"any placeholder with count 0", R"(["a",{"_placeholder":true,"num":0}])", 0, errc::invalid_placeholder},
      {"negative num", R"(["a",{"_placeholder":true,"num":-1}])", 1, errc::invalid_placeholder},
      {"num as a string", R"(["hello",{"_placeholder":true,"num":"splice"}])", 1, errc::invalid_placeholder},
      {"num as a numeric string", R"(["a",{"_placeholder":true,"num":"0"}])", 1, errc::invalid_placeholder},
      {"fractional num", R"(["a",{"_placeholder":true,"num":0.5}])", 1, errc::invalid_placeholder},
      {"num with an exponent", R"(["a",{"_placeholder":true,"num":0e0}])", 1, errc::invalid_placeholder},
      {"missing num", R"(["a",{"_placeholder":true}])", 1, errc::invalid_placeholder},
      {"null num", R"(["a",{"_placeholder":true,"num":null}])", 1, errc::invalid_placeholder},
      {"bad one after a good one", R"([{"_placeholder":true,"num":0},{"x":{"_placeholder":true,"num":3}}])", 1,
       errc::invalid_placeholder},
      // duplicate keys: JSON.parse keeps the last, so must we (regression)
      {"duplicate num, last out of range", R"(["a",{"_placeholder":true,"num":0,"num":5}])", 1,
       errc::invalid_placeholder},
      {"duplicate num, last in range", R"(["a",{"_placeholder":true,"num":5,"num":0}])", 1, errc::ok},
      {"duplicate _placeholder, last true", R"(["a",{"_placeholder":false,"_placeholder":true,"num":5}])", 1,
       errc::invalid_placeholder},
      {"duplicate _placeholder, last false", R"(["a",{"_placeholder":true,"_placeholder":false,"num":5}])", 1,
       errc::ok},
  };
  for (const auto& r : rows) {
    CAPTURE(r.name);
    auto v = json::parse(r.payload);
    REQUIRE(v.ok());
    CHECK(sio::check_placeholders(*v, r.count) == r.expected);
  }
}

TEST_CASE("reassembler completes a non-binary packet at once, viewing the caller's text") {
  sio::reassembler re;
  errc e = errc::ok;
  std::string text = R"(2/admin,5["ev",1])";
  REQUIRE(re.add_text(text, e) == status::complete);
  CHECK(re.current().type == sio::packet_type::event);
  CHECK(re.current().nsp == "/admin");
  CHECK(re.current().id == 5u);
  CHECK(re.current().data == R"(["ev",1])");
  CHECK(re.current().data.data() == text.data() + 9);
  CHECK(re.attachments().empty());
  CHECK_FALSE(re.waiting_for_binary());
}

TEST_CASE("reassembler collects attachments in order and keeps its own copy of the header") {
  sio::reassembler re;
  errc e = errc::ok;
  auto header = std::make_unique<std::string>(
      R"(52-/admin,["baz",{"_placeholder":true,"num":0},{"x":{"_placeholder":true,"num":1}}])");
  REQUIRE(re.add_text(*header, e) == status::need_binary);
  CHECK(re.waiting_for_binary());
  header.reset();  // the frame is gone before the attachments arrive; ASan checks nothing still points at it

  REQUIRE(re.add_binary("\x01\x02"s, e) == status::need_binary);
  CHECK(re.waiting_for_binary());
  REQUIRE(re.add_binary("\x03\x04"s, e) == status::complete);
  CHECK_FALSE(re.waiting_for_binary());

  const auto& p = re.current();
  CHECK(p.type == sio::packet_type::binary_event);
  CHECK(p.nsp == "/admin");
  CHECK(p.attachments == 2);
  CHECK(p.data == R"(["baz",{"_placeholder":true,"num":0},{"x":{"_placeholder":true,"num":1}}])");
  CHECK(sio::split_event(p).name.raw == R"("baz")");
  REQUIRE(re.attachments().size() == 2);
  CHECK(re.attachments()[0] == "\x01\x02"s);
  CHECK(re.attachments()[1] == "\x03\x04"s);
}

TEST_CASE("reassembler completes a binary ack and empty attachments count as attachments") {
  sio::reassembler re;
  errc e = errc::ok;
  REQUIRE(re.add_text(R"(61-15["bar",{"_placeholder":true,"num":0}])", e) == status::need_binary);
  REQUIRE(re.add_binary("", e) == status::complete);
  CHECK(re.current().type == sio::packet_type::binary_ack);
  CHECK(re.current().id == 15u);
  REQUIRE(re.attachments().size() == 1);
  CHECK(re.attachments()[0].empty());
}

TEST_CASE("reassembler rejects a binary packet announcing zero attachments") {
  sio::reassembler re;
  errc e = errc::ok;
  REQUIRE(re.add_text(R"(50-["a"])", e) == status::error);
  CHECK(e == errc::invalid_attachment_count);
  CHECK_FALSE(re.waiting_for_binary());
  // the next packet decodes normally
  REQUIRE(re.add_text(R"(2["a"])", e) == status::complete);
}

TEST_CASE("reassembler rejects binary data when no packet is waiting for it") {
  sio::reassembler re;
  errc e = errc::ok;
  REQUIRE(re.add_binary("world", e) == status::error);
  CHECK(e == errc::unexpected_binary);

  SUBCASE("after a complete non-binary packet") {
    REQUIRE(re.add_text(R"(2["a"])", e) == status::complete);
    e = errc::ok;
    REQUIRE(re.add_binary("x", e) == status::error);
    CHECK(e == errc::unexpected_binary);
  }
  SUBCASE("one attachment more than announced") {
    REQUIRE(re.add_text(R"(51-["a",{"_placeholder":true,"num":0}])", e) == status::need_binary);
    REQUIRE(re.add_binary("1", e) == status::complete);
    e = errc::ok;
    REQUIRE(re.add_binary("2", e) == status::error);
    CHECK(e == errc::unexpected_binary);
  }
}

TEST_CASE("reassembler rejects a text packet while attachments are missing and recovers afterwards") {
  // socket.io-parser: "got plaintext data when reconstructing a packet"
  sio::reassembler re;
  errc e = errc::ok;
  REQUIRE(re.add_text(R"(52-["hello",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}])", e) ==
          status::need_binary);
  REQUIRE(re.add_binary("first", e) == status::need_binary);
  REQUIRE(re.add_text(R"(2["hello"])", e) == status::error);
  CHECK(e == errc::expected_binary);
  CHECK_FALSE(re.waiting_for_binary());
  CHECK(re.attachments().empty());

  // the offending text was dropped, not decoded; the next packet starts afresh
  e = errc::ok;
  REQUIRE(re.add_text(R"(2["next"])", e) == status::complete);
  CHECK(re.current().data == R"(["next"])");
}

TEST_CASE("reassembler rejects too many attachments before waiting for any") {
  sio::decode_limits limits;
  limits.max_attachments = 2;
  sio::reassembler re(limits);
  errc e = errc::ok;
  REQUIRE(re.add_text(R"(53-["hello",{"_placeholder":true,"num":0}])", e) == status::error);
  CHECK(e == errc::too_many_attachments);
  CHECK_FALSE(re.waiting_for_binary());
  REQUIRE(re.add_binary("x", e) == status::error);
  CHECK(e == errc::unexpected_binary);
}

TEST_CASE("reassembler rejects a placeholder num out of range once the attachments are in") {
  for (std::string text : {R"(51-["hello",{"_placeholder":true,"num":1}])"s,
                           R"(51-["hello",{"_placeholder":true,"num":"splice"}])"s,
                           R"(51-["hello",{"_placeholder":true,"num":-1}])"s,
                           R"(51-["hello",{"_placeholder":true,"num":0,"num":1}])"s}) {
    CAPTURE(text);
    sio::reassembler re;
    errc e = errc::ok;
    REQUIRE(re.add_text(text, e) == status::need_binary);
    REQUIRE(re.add_binary("world", e) == status::error);
    CHECK(e == errc::invalid_placeholder);
    CHECK_FALSE(re.waiting_for_binary());
    CHECK(re.attachments().empty());
    // usable again
    REQUIRE(re.add_text(R"(2["ok"])", e) == status::complete);
  }
}

TEST_CASE("reassembler reports decode errors and keeps no half state") {
  sio::reassembler re;
  errc e = errc::ok;
  REQUIRE(re.add_text("5", e) == status::error);
  CHECK(e == errc::invalid_attachment_count);
  REQUIRE(re.add_text(R"(2["connect"])", e) == status::error);
  CHECK(e == errc::invalid_payload);
  CHECK_FALSE(re.waiting_for_binary());
  REQUIRE(re.add_text(R"(2["fine"])", e) == status::complete);
}

TEST_CASE("reassembler reset abandons a packet waiting for attachments") {
  // socket.io-parser: "should resume decoding after calling destroy()"
  sio::reassembler re;
  errc e = errc::ok;
  REQUIRE(re.add_text(R"(51-["hello"])", e) == status::need_binary);
  REQUIRE(re.add_binary("x", e) == status::complete);  // no placeholder is fine: the reference ignores the buffer
  REQUIRE(re.add_text(R"(51-["hello"])", e) == status::need_binary);
  re.reset();
  CHECK_FALSE(re.waiting_for_binary());
  REQUIRE(re.add_text(R"(2["hello"])", e) == status::complete);
  CHECK(re.current().data == R"(["hello"])");
}

TEST_CASE("reassembler clears the previous attachments when the next packet starts") {
  sio::reassembler re;
  errc e = errc::ok;
  REQUIRE(re.add_text(R"(51-["a",{"_placeholder":true,"num":0}])", e) == status::need_binary);
  REQUIRE(re.add_binary("bin", e) == status::complete);
  REQUIRE(re.attachments().size() == 1);
  REQUIRE(re.add_text(R"(2["b"])", e) == status::complete);
  CHECK(re.attachments().empty());
}

namespace {

// One Socket.IO packet with its attachments, for the stream tests below.
struct packet_with_attachments {
  std::string text;
  std::vector<std::string> attachments;
};

std::vector<packet_with_attachments> table_as_stream(random_source& rnd) {
  std::vector<packet_with_attachments> out;
  for (const auto& c : valid_packets) {
    packet_with_attachments p{c.text, {}};
    for (uint32_t i = 0; i < c.attachments; ++i) p.attachments.push_back(rnd.bytes(rnd.between(0, 20)));
    out.push_back(std::move(p));
  }
  return out;
}

// Feeds Engine.IO messages to a reassembler and checks each completed packet against the
// table (packets[k]) and its attachments.
class stream_checker {
 public:
  explicit stream_checker(const std::vector<packet_with_attachments>& packets) : _packets(packets) {}

  void text(std::string_view message) {
    errc e = errc::ok;
    auto s = _re.add_text(message, e);
    REQUIRE_MESSAGE(s != status::error, ferry::protocol::to_string(e));
    if (s == status::complete) check_complete();
  }
  void binary(std::string_view bytes) {
    errc e = errc::ok;
    auto s = _re.add_binary(bytes, e);
    REQUIRE_MESSAGE(s != status::error, ferry::protocol::to_string(e));
    if (s == status::complete) check_complete();
  }
  [[nodiscard]] size_t completed() const noexcept { return _next; }

 private:
  void check_complete() {
    REQUIRE(_next < _packets.size());
    const auto& want = _packets[_next];
    CAPTURE(want.text);
    auto direct = decode_ok(want.text);
    const auto& got = _re.current();
    CHECK(got.type == direct.type);
    CHECK(got.nsp == direct.nsp);
    CHECK(got.id == direct.id);
    CHECK(got.attachments == direct.attachments);
    CHECK(got.data == direct.data);
    CHECK(_re.attachments() == want.attachments);
    ++_next;
  }

  const std::vector<packet_with_attachments>& _packets;
  sio::reassembler _re;
  size_t _next = 0;
};

}  // namespace

TEST_CASE("the packet table survives a polling body split at random points, byte by byte included") {
  random_source rnd(0x50c'0001);
  auto packets = table_as_stream(rnd);
  // Body as the server would write it: "4" + packet, then "b<base64>" per attachment.
  std::string body;
  for (const auto& p : packets) {
    eio::append_payload_packet(body, false, "4" + p.text);
    for (const auto& a : p.attachments) eio::append_payload_packet(body, true, a);
  }
  for (int round = 0; round < 50; ++round) {
    size_t max_chunk = round == 0 ? 1 : rnd.between(2, 64);
    ferry::protocol::test::http_body_accumulator acc(body.size());
    size_t at = 0;
    for (size_t chunk : rnd.chunk_sizes(body.size(), max_chunk)) {
      REQUIRE(acc.feed(std::string_view(body).substr(at, chunk)));
      at += chunk;
    }
    REQUIRE(acc.complete());
    exact_buffer in(acc.body());
    eio::payload pl;
    REQUIRE(pl.decode(in.view()) == errc::ok);
    stream_checker check(packets);
    for (const auto& m : pl.packets()) {
      REQUIRE(m.type == eio::packet_type::message);
      if (m.binary) check.binary(m.data);
      else check.text(m.data);
    }
    CHECK(check.completed() == packets.size());
  }
}

TEST_CASE("the packet table survives concatenated frames fed in random chunks, byte by byte included") {
  random_source rnd(0x50c'0002);
  auto packets = table_as_stream(rnd);
  std::string stream;
  for (const auto& p : packets) {
    ferry::protocol::test::append_stream_frame(stream, false, "4" + p.text);
    for (const auto& a : p.attachments) ferry::protocol::test::append_stream_frame(stream, true, a);
  }
  for (int round = 0; round < 50; ++round) {
    size_t max_chunk = round == 0 ? 1 : rnd.between(2, 100);
    ferry::protocol::test::frame_accumulator acc;
    stream_checker check(packets);
    size_t at = 0;
    for (size_t chunk : rnd.chunk_sizes(stream.size(), max_chunk)) {
      std::vector<ferry::protocol::test::stream_frame> frames;
      acc.feed(std::string_view(stream).substr(at, chunk), frames);
      at += chunk;
      for (const auto& f : frames) {
        exact_buffer in(f.bytes);  // each frame in its own exact-size buffer, freed right after
        if (f.binary) {
          check.binary(eio::decode_binary(in.view()).data);
        } else {
          auto m = eio::decode_text(in.view());
          REQUIRE(m.ok());
          REQUIRE(m->type == eio::packet_type::message);
          check.text(m->data);
        }
      }
    }
    CHECK(acc.pending_bytes() == 0);
    CHECK(check.completed() == packets.size());
  }
}

namespace {

// A random packet model and its independent expected encoding.
struct model {
  sio::packet_type type;
  std::string nsp;
  std::optional<uint64_t> id;
  uint32_t attachments = 0;
  std::string name;   // JSON of the event name (events only)
  std::string args;   // raw comma-separated JSON
  std::string other;  // CONNECT / CONNECT_ERROR payload, may be empty
};

model random_model(random_source& rnd) {
  model m;
  m.type = static_cast<sio::packet_type>(rnd.between(0, 6));
  if (rnd.chance(50)) {
    m.nsp = "/";
  } else {
    static constexpr std::string_view nsp_chars = "abcxyz0123456789/-_.~";
    m.nsp = "/";
    for (size_t i = rnd.between(0, 10); i > 0; --i) m.nsp += nsp_chars[rnd.between(0, nsp_chars.size() - 1)];
  }
  bool with_id = m.type == sio::packet_type::ack || m.type == sio::packet_type::binary_ack || rnd.chance(40);
  if (with_id && m.type != sio::packet_type::connect && m.type != sio::packet_type::disconnect &&
      m.type != sio::packet_type::connect_error)
    m.id = rnd.chance(10) ? (uint64_t{1} << 53) : rnd.between(0, 100000);
  if (is_binary(m.type)) m.attachments = static_cast<uint32_t>(rnd.between(1, 10));

  std::vector<std::string> args;
  for (size_t i = rnd.between(0, 4); i > 0; --i) args.push_back(ferry::protocol::test::random_json(rnd, 3).text);
  for (uint32_t k = 0; k < m.attachments; ++k) {
    auto pos = rnd.between(0, args.size());
    args.insert(args.begin() + static_cast<std::ptrdiff_t>(pos), placeholder(static_cast<int>(k)));
  }
  for (size_t i = 0; i < args.size(); ++i) m.args += (i ? "," : "") + args[i];

  switch (m.type) {
    case sio::packet_type::event:
    case sio::packet_type::binary_event:
      if (rnd.chance(20)) {
        m.name = std::to_string(rnd.between(0, 1000));
      } else {
        std::string name;
        do name = rnd.utf8_string(10);
        while (sio::is_reserved_event(name));
        m.name = json::quoted(name);
      }
      break;
    case sio::packet_type::connect:
      if (rnd.chance(70)) m.other = ferry::protocol::test::random_json(rnd, 3, json::kind::object).text;
      break;
    case sio::packet_type::connect_error:
      if (rnd.chance(50)) m.other = json::quoted(rnd.utf8_string(20));
      else if (rnd.chance(70)) m.other = ferry::protocol::test::random_json(rnd, 3, json::kind::object).text;
      break;
    default: break;
  }
  return m;
}

std::string encode_model(const model& m) {
  std::string out;
  switch (m.type) {
    case sio::packet_type::event:
    case sio::packet_type::binary_event:
      sio::append_event(out, m.nsp, m.name, m.args, m.attachments, m.id);
      if (m.type == sio::packet_type::binary_event && m.attachments == 0) {  // append_event would write '2'
        out[0] = '5';
        out.insert(1, "0-");
      }
      break;
    case sio::packet_type::ack:
    case sio::packet_type::binary_ack:
      sio::append_ack(out, m.nsp, *m.id, m.args, m.attachments);
      if (m.type == sio::packet_type::binary_ack && m.attachments == 0) {  // append_ack would write '3'
        out[0] = '6';
        out.insert(1, "0-");
      }
      break;
    default:
      sio::append_header(out, m.type, m.nsp, 0, m.id);
      out += m.other;
  }
  return out;
}

// The same encoding written out independently of append_*, as socket.io-parser's
// encodeAsString does it.
std::string reference_encoding(const model& m) {
  std::string s(1, static_cast<char>('0' + static_cast<int>(m.type)));
  if (is_binary(m.type)) s += std::to_string(m.attachments) + "-";
  if (m.nsp != "/") s += m.nsp + ",";
  if (m.id) s += std::to_string(*m.id);
  if (m.type == sio::packet_type::event || m.type == sio::packet_type::binary_event)
    s += "[" + m.name + (m.args.empty() ? "" : ",") + m.args + "]";
  else if (m.type == sio::packet_type::ack || m.type == sio::packet_type::binary_ack)
    s += "[" + m.args + "]";
  else
    s += m.other;
  return s;
}

}  // namespace

TEST_CASE("random packets round-trip through encode, decode and the reassembler") {
  random_source rnd(0x50c'0003);
  for (int round = 0; round < 2000; ++round) {
    model m = random_model(rnd);
    std::string text = encode_model(m);
    CAPTURE(text);
    CHECK(text == reference_encoding(m));

    exact_buffer in(text);
    auto r = sio::decode(in.view());
    REQUIRE_MESSAGE(r.ok(), ferry::protocol::to_string(r.error()));
    const auto& p = *r;
    CHECK(p.type == m.type);
    CHECK(p.nsp == m.nsp);
    CHECK(p.id == m.id);
    CHECK(p.attachments == m.attachments);
    if (m.type == sio::packet_type::event || m.type == sio::packet_type::binary_event) {
      auto ev = sio::split_event(p);
      CHECK(ev.name.raw == m.name);
      CHECK(ev.args == m.args);
    } else if (m.type == sio::packet_type::ack || m.type == sio::packet_type::binary_ack) {
      CHECK(sio::array_contents(p.payload) == m.args);
    } else {
      CHECK(p.data == m.other);
    }
    CHECK(sio::check_placeholders(p.payload, m.attachments) == errc::ok);
    if (m.attachments > 0) CHECK(sio::check_placeholders(p.payload, m.attachments - 1) == errc::invalid_placeholder);

    sio::reassembler re;
    errc e = errc::ok;
    auto s = re.add_text(text, e);
    std::vector<std::string> blobs;
    for (uint32_t k = 0; k < m.attachments; ++k) {
      REQUIRE(s == status::need_binary);
      blobs.push_back(rnd.bytes(rnd.between(0, 16)));
      s = re.add_binary(blobs.back(), e);
    }
    REQUIRE(s == status::complete);
    CHECK(re.current().data == p.data);
    CHECK(re.attachments() == blobs);

    // and no proper prefix decodes to a packet with data
    for (size_t n = 0; n < text.size(); ++n) {
      exact_buffer prefix(std::string_view(text).substr(0, n));
      auto pr = sio::decode(prefix.view());
      if (pr.ok()) CHECK(pr->data.empty());
    }
  }
}

TEST_CASE("decode tells whether the payload is compact, so relays can skip minify") {
  auto a = sio::decode(R"(2["ev",{"a":"b c"}])");
  REQUIRE(a.ok());
  CHECK(a->compact);
  auto b = sio::decode(R"(2["ev", {"a":1}])");
  REQUIRE(b.ok());
  CHECK_FALSE(b->compact);
}
