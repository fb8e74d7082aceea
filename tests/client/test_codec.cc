// Unit tests: URL handling, the client side of the Engine.IO / Socket.IO codecs, the
// Ferry reserved-event codec, args/message accessors.
#include <doctest/doctest.h>

#include <cmath>

#include "client/src/ferry_codec.h"
#include "client/src/sio_codec.h"
#include "client/src/url.h"
#include "ferry/client/error.h"
#include "ferry/client/socketio.h"
#include "protocol/socketio.h"

using namespace ferry::client;
using namespace ferry::client::detail;
namespace psio = ferry::protocol::sio;

namespace {

std::shared_ptr<message_data> decode_message(const std::string& text, std::vector<std::string> attachments = {}) {
  auto p = psio::decode(text);
  REQUIRE(p.ok());
  return make_message_data(*p, std::move(attachments));
}

sio::message as_message(const std::string& text, std::vector<std::string> attachments = {}) {
  return sio::message(decode_message(text, std::move(attachments)));
}

}  // namespace

TEST_SUITE("unit") {
  TEST_CASE("parse_server_url accepts http and ws URLs with host, port, namespace and query") {
    auto u = parse_server_url("http://127.0.0.1:7070");
    REQUIRE(u.ok());
    CHECK(u->host == "127.0.0.1");
    CHECK(u->port == 7070);
    CHECK(u->nsp == "/");
    CHECK(u->query.empty());

    u = parse_server_url("ws://example.com/admin?token=abc#frag");
    REQUIRE(u.ok());
    CHECK(u->host == "example.com");
    CHECK(u->port == 80);
    CHECK(u->nsp == "/admin");
    CHECK(u->query == "token=abc");

    u = parse_server_url("HTTP://[::1]:9000/");
    REQUIRE(u.ok());
    CHECK(u->host == "::1");
    CHECK(u->port == 9000);
    CHECK(u->nsp == "/");
  }

  TEST_CASE("parse_server_url rejects malformed and unsupported URLs with a reason") {
    for (const char* bad : {"", "127.0.0.1:7070", "not a url", "ftp://host", "http://", "http://:80", "http://h:0",
                            "http://h:65536", "http://h:12x", "http://[::1", "http://user@host", "http://h o/"}) {
      CAPTURE(bad);
      auto u = parse_server_url(bad);
      REQUIRE_FALSE(u.ok());
      CHECK(u.code() == errc::invalid_url);
      CHECK_FALSE(u.err().message.empty());
    }
    auto tls = parse_server_url("wss://host");
    REQUIRE_FALSE(tls.ok());
    CHECK(tls.err().message.find("TLS") != std::string::npos);
  }

  TEST_CASE("websocket_uri adds the Engine.IO query and normalises the path") {
    auto u = parse_server_url("http://127.0.0.1:7070/ns?a=1");
    REQUIRE(u.ok());
    CHECK(websocket_uri(*u, "/socket.io/") == "ws://127.0.0.1:7070/socket.io/?EIO=4&transport=websocket&a=1");
    CHECK(websocket_uri(*u, "socket.io") == "ws://127.0.0.1:7070/socket.io/?EIO=4&transport=websocket&a=1");
    auto v6 = parse_server_url("http://[::1]:1");
    REQUIRE(v6.ok());
    CHECK(websocket_uri(*v6, "/x/") == "ws://[::1]:1/x/?EIO=4&transport=websocket");
  }

  TEST_CASE("parse_handshake reads sid, ping settings and maxPayload") {
    auto h = parse_handshake(R"({"sid":"abc","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":1000})");
    REQUIRE(h.ok());
    CHECK(h->sid == "abc");
    CHECK(h->ping_interval.count() == 300);
    CHECK(h->ping_timeout.count() == 200);
    CHECK(h->max_payload == 1000);
    auto old = parse_handshake(R"({"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":5000})");
    REQUIRE(old.ok());
    CHECK(old->max_payload == 1000000);
    CHECK_FALSE(parse_handshake(R"({"upgrades":[]})").ok());
    CHECK_FALSE(parse_handshake("not json").ok());
    CHECK_FALSE(parse_handshake(R"({"sid":"a","pingInterval":"x","pingTimeout":1})").ok());
  }

  TEST_CASE("client packets are encoded as socket.io-parser does") {
    CHECK(encode_connect("/", "") == "0");
    CHECK(encode_connect("/", R"({"token":"x"})") == R"(0{"token":"x"})");
    CHECK(encode_connect("/admin", "{}") == "0/admin,{}");
    CHECK(encode_disconnect("/") == "1");
    CHECK(encode_disconnect("/admin") == "1/admin,");
    CHECK(encode_event("/", "chat", R"("hi",1)", 0, std::nullopt) == R"(2["chat","hi",1])");
    CHECK(encode_event("/", "chat", "", 0, 7) == R"(27["chat"])");
    CHECK(encode_event("/a", "up", R"({"_placeholder":true,"num":0})", 1, 3) ==
          R"(51-/a,3["up",{"_placeholder":true,"num":0}])");
    CHECK(encode_ack("/", 12, R"("ok")", 0) == R"(312["ok"])");
    CHECK(encode_ack("/a", 1, R"({"_placeholder":true,"num":0})", 1) == R"(61-/a,1[{"_placeholder":true,"num":0}])");
  }

  TEST_CASE("validate_emit refuses reserved names, invalid JSON and dangling placeholders") {
    CHECK(validate_emit("chat", R"("a",{"b":[1,2]})", 0).ok());
    CHECK(validate_emit("connect", "", 0).code() == errc::invalid_argument);
    CHECK(validate_emit("disconnecting", "", 0).code() == errc::invalid_argument);
    CHECK(validate_emit("chat", R"("a",)", 0).code() == errc::invalid_argument);
    CHECK(validate_emit("chat", R"({"_placeholder":true,"num":1})", 1).code() == errc::invalid_argument);
    CHECK(validate_emit("chat", R"({"_placeholder":true,"num":0})", 1).ok());
  }

  TEST_CASE("recovery_auth merges pid and offset with the application's auth, its keys winning") {
    CHECK(recovery_auth("{}", "p1", "o1") == R"({"pid":"p1","offset":"o1"})");
    CHECK(recovery_auth("{}", "p1", "") == R"({"pid":"p1"})");
    CHECK(recovery_auth(R"({"token":"t"})", "p1", "o1") == R"({"pid":"p1","offset":"o1","token":"t"})");
  }

  TEST_CASE("CONNECT ack and CONNECT_ERROR payloads are read") {
    auto p = psio::decode(R"(0{"sid":"s1","pid":"p1"})");
    REQUIRE(p.ok());
    auto a = parse_connect_ack(*p);
    REQUIRE(a.ok());
    CHECK(a->sid == "s1");
    CHECK(a->pid == "p1");
    auto v2 = psio::decode("0");
    REQUIRE(v2.ok());
    CHECK(parse_connect_ack(*v2).code() == errc::protocol_error);

    auto e = psio::decode(R"(4/admin,{"message":"not authorized","data":{"code":401}})");
    REQUIRE(e.ok());
    CHECK(connect_error_text(*e) == R"(not authorized (data: {"code":401}))");
    auto s = psio::decode(R"(4"Invalid namespace")");
    REQUIRE(s.ok());
    CHECK(connect_error_text(*s) == "Invalid namespace");
  }

  TEST_CASE("received events expose name, arguments, binary attachments and the ack id") {
    auto m = as_message(R"(2/x,5["chat","hi",{"a":1},[2]])");
    CHECK(m.event() == "chat");
    CHECK(m.size() == 3);
    CHECK(m.arg(0) == R"("hi")");
    CHECK(m.arg(1) == R"({"a":1})");
    CHECK(m.arg(2) == "[2]");
    CHECK(m.arg(3).empty());
    CHECK(m.args_json() == R"("hi",{"a":1},[2])");
    CHECK(m.string_arg(0) == std::optional<std::string>("hi"));
    CHECK_FALSE(m.string_arg(1).has_value());
    CHECK(m.wants_ack());

    auto b = as_message(R"(51-["bin",{"_placeholder":true,"num":0},"x"])", {std::string("\x00\x01\x02", 3)});
    REQUIRE(b.binary_arg(0).has_value());
    CHECK(*b.binary_arg(0) == std::string("\x00\x01\x02", 3));
    CHECK_FALSE(b.binary_arg(1).has_value());
    CHECK_FALSE(b.wants_ack());
    CHECK(b.attachments().size() == 1);

    auto ack = as_message(R"(33[{"ok":true}])");
    CHECK(ack.event().empty());
    CHECK(ack.size() == 1);
    CHECK(ack.arg(0) == R"({"ok":true})");

    auto empty = as_message(R"(2["only-name"])");
    CHECK(empty.size() == 0);
    CHECK(empty.args_json().empty());
  }

  TEST_CASE("args builds comma-separated JSON with binary placeholders") {
    sio::args a;
    a.string("h\"i").number(int64_t{-3}).number(1.5).boolean(true).null().json(R"({"k":[1]})").binary("xyz");
    CHECK(a.text() == R"("h\"i",-3,1.5,true,null,{"k":[1]},{"_placeholder":true,"num":0})");
    REQUIRE(a.binaries().size() == 1);
    CHECK(a.binaries()[0] == "xyz");
    sio::args nested;
    std::string ph = nested.placeholder("bytes");
    nested.json(R"({"file":)" + ph + "}");
    CHECK(nested.text() == R"({"file":{"_placeholder":true,"num":0}})");
    CHECK(validate_emit("up", nested.text(), nested.binaries().size()).ok());
    sio::args nan;
    nan.number(std::nan(""));
    CHECK(nan.text() == "null");
  }

  TEST_CASE("validate_outgoing mirrors the broker's publish rules") {
    CHECK(validate_outgoing("t", "message", "id-1", R"({"a":1})").ok());
    CHECK(validate_outgoing("", "message", "", "1").code() == errc::invalid_argument);
    CHECK(validate_outgoing("$dlq.x", "message", "", "1").code() == errc::invalid_argument);
    CHECK(validate_outgoing(std::string(201, 't'), "message", "", "1").code() == errc::invalid_argument);
    CHECK(validate_outgoing("t\n", "message", "", "1").code() == errc::invalid_argument);
    for (const char* ev : {"publish", "subscribe", "commit", "unsubscribe", "connect", "$gap", ""}) {
      CAPTURE(ev);
      CHECK(validate_outgoing("t", ev, "", "1").code() == errc::invalid_argument);
    }
    CHECK(validate_outgoing("t", "m", std::string(257, 'i'), "1").code() == errc::invalid_argument);
    CHECK(validate_outgoing("t", "m", "", "{bad").code() == errc::invalid_argument);
    CHECK(validate_outgoing("t", "m", "", "").code() == errc::invalid_argument);
  }

  TEST_CASE("publish items are compact JSON objects carrying the id") {
    CHECK(encode_publish_item("t", "reading", R"({ "a" : 1 })", "p-1") ==
          R"({"topic":"t","event":"reading","data":{"a":1},"id":"p-1"})");
    CHECK(encode_publish_item("t\"q", "e", "null", "x") == R"({"topic":"t\"q","event":"e","data":null,"id":"x"})");
  }

  TEST_CASE("publish replies give per-event offsets and duplicate flags, or the broker's error") {
    auto batch = parse_publish_reply(R"({"ok":true,"offsets":["a","b"],"duplicates":[false,true]})", 2);
    REQUIRE(batch.ok());
    REQUIRE(batch->ok);
    REQUIRE(batch->items.size() == 2);
    CHECK(batch->items[0].offset == "a");
    CHECK_FALSE(batch->items[0].duplicate);
    CHECK(batch->items[1].duplicate);

    auto single = parse_publish_reply(R"({"ok":true,"offset":"o","duplicate":true})", 1);
    REQUIRE(single.ok());
    CHECK(single->items[0].offset == "o");
    CHECK(single->items[0].duplicate);

    auto rejected = parse_publish_reply(R"({"ok":false,"error":{"code":"overloaded","message":"busy"}})", 3);
    REQUIRE(rejected.ok());
    CHECK_FALSE(rejected->ok);
    CHECK(rejected->code == "overloaded");
    CHECK(rejected->message == "overloaded: busy");
    CHECK(retriable_publish_error("overloaded"));
    CHECK(retriable_publish_error("shutting_down"));
    CHECK_FALSE(retriable_publish_error("invalid_payload"));
    CHECK_FALSE(retriable_publish_error("reserved_event"));

    CHECK(parse_publish_reply(R"({"ok":true,"offsets":["a"]})", 2).code() == errc::protocol_error);
    CHECK(parse_publish_reply("[1]", 1).code() == errc::protocol_error);
    CHECK(parse_publish_reply(R"({"offsets":["a"]})", 1).code() == errc::protocol_error);
  }

  TEST_CASE("subscribe, unsubscribe and commit requests and replies") {
    CHECK(encode_subscribe("t", start_position::latest(), "", delivery_mode::automatic) ==
          R"({"topic":"t","from":"latest","mode":"auto"})");
    CHECK(encode_subscribe("t", start_position::earliest(), "c1", delivery_mode::ack) ==
          R"({"topic":"t","from":"earliest","consumer":"c1","mode":"ack"})");
    CHECK(encode_subscribe("t", start_position::at_offset("0000abcd-0000000000000005"), "", delivery_mode::automatic) ==
          R"({"topic":"t","from":"0000abcd-0000000000000005","mode":"auto"})");
    CHECK(encode_subscribe("t", start_position::at_time(1700000000000), "", delivery_mode::automatic) ==
          R"({"topic":"t","from":{"time":1700000000000},"mode":"auto"})");
    CHECK(encode_topic_request("t") == R"({"topic":"t"})");
    CHECK(encode_commit("t", "o") == R"({"topic":"t","offset":"o"})");

    auto ok = parse_subscribe_reply(R"({"ok":true,"topic":"t","head":"h","position":"p"})");
    REQUIRE(ok.ok());
    CHECK(ok->topic == "t");
    CHECK(ok->head == "h");
    CHECK(ok->position == "p");
    auto no = parse_subscribe_reply(R"({"ok":false,"error":{"code":"too_many_topics","message":"at most 100"}})");
    REQUIRE_FALSE(no.ok());
    CHECK(no.code() == errc::rejected);
    CHECK(no.err().message == "too_many_topics: at most 100");
    CHECK(parse_ok_reply(R"({"ok":true})").ok());
    CHECK(parse_ok_reply("42").code() == errc::protocol_error);
  }

  TEST_CASE("deliveries are recognised by their meta object and trailing offset") {
    auto m =
        as_message(R"(2["reading",{"v":1},{"topic":"t","id":"p-1","ts":1700000000123},"0000abcd-0000000000000007"])");
    auto d = parse_delivery(m);
    REQUIRE(d.has_value());
    CHECK(d->name == "reading");
    CHECK(d->data == R"({"v":1})");
    CHECK(d->topic == "t");
    CHECK(d->id == "p-1");
    CHECK(d->ts == 1700000000123);
    CHECK(d->offset == "0000abcd-0000000000000007");

    auto no_offset = parse_delivery(as_message(R"(2["e",null,{"topic":"t","id":"x","ts":1}])"));
    REQUIRE(no_offset.has_value());
    CHECK(no_offset->offset.empty());

    CHECK_FALSE(parse_delivery(as_message(R"(2["chat","hello"])")).has_value());
    CHECK_FALSE(parse_delivery(as_message(R"(2["e",1,{"id":"x"},"o"])")).has_value());

    auto gap = parse_gap(as_message(R"(2["$gap",{"topic":"t","from":"a","first":"b","reason":"retention"}])"));
    REQUIRE(gap.has_value());
    CHECK(gap->topic == "t");
    CHECK(gap->first == "b");
    CHECK(gap->reason == "retention");
  }

  TEST_CASE("offsets compare within an epoch and are incomparable across epochs") {
    bool comparable = false;
    CHECK(offset_after("0000abcd-0000000000000010", "0000abcd-000000000000000f", comparable));
    CHECK(comparable);
    CHECK_FALSE(offset_after("0000abcd-0000000000000001", "0000abcd-0000000000000001", comparable));
    CHECK(comparable);
    CHECK_FALSE(offset_after("0000abce-0000000000000010", "0000abcd-0000000000000001", comparable));
    CHECK_FALSE(comparable);
    CHECK_FALSE(offset_after("garbage", "0000abcd-0000000000000001", comparable));
    CHECK_FALSE(comparable);
  }

  TEST_CASE("errc has a std::error_code category and readable texts") {
    std::error_code ec = errc::outbox_full;
    CHECK(ec.category().name() == std::string("ferry.client"));
    CHECK(ec.message() == "outbox full");
    error e{errc::connect_error, "not authorized"};
    CHECK(e.what() == "connection refused by the server (CONNECT_ERROR): not authorized");
    result<int> r(errc::timeout, "x");
    CHECK_FALSE(r.ok());
    CHECK(r.code() == errc::timeout);
    result<void> ok;
    CHECK(ok.ok());
  }

}  // TEST_SUITE
