// Tests for storage/keys.h (big-endian key encoding: byte order equals numeric order, so
// RocksDB iterates events, checkpoints and positions in the order the log relies on) and
// storage/records.h (FlatBuffers session records, verified on every decode).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "storage/keys.h"
#include "storage/records.h"
#include "support.h"

namespace keys = ferry::storage::keys;
using ferry::storage::decode_session;
using ferry::storage::delivery_mode;
using ferry::storage::errc;
using ferry::storage::session_record;
using ferry::storage::subscription_record;
using namespace std::string_literals;

namespace {

const std::vector<uint32_t> u32_edges = {0,      1,       2,          0x7F,        0x80,        0xFF,       0x100,
                                         0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000u, 0xFFFFFFFEu, 0xFFFFFFFFu};
const std::vector<uint64_t> u64_edges = {0,
                                         1,
                                         0xFF,
                                         0x100,
                                         0xFFFFFFFFull,
                                         0x100000000ull,
                                         0x00FF00FF00FF00FFull,
                                         0x7FFFFFFFFFFFFFFFull,
                                         0x8000000000000000ull,
                                         UINT64_MAX - 1,
                                         UINT64_MAX};

int sign(int v) {
  return (v > 0) - (v < 0);
}

}  // namespace

TEST_CASE("put_u16/u32/u64 write big-endian bytes") {
  std::string s;
  keys::put_u16(s, 0x0102);
  CHECK(s == "\x01\x02"s);
  s.clear();
  keys::put_u32(s, 0x01020304);
  CHECK(s == "\x01\x02\x03\x04"s);
  s.clear();
  keys::put_u64(s, 0x0102030405060708ull);
  CHECK(s == "\x01\x02\x03\x04\x05\x06\x07\x08"s);
  s = "xy";
  keys::put_u32(s, 0);
  CHECK(s == "xy\0\0\0\0"s);  // appends, does not overwrite
}

TEST_CASE("get_u32/get_u64 read back what put wrote, at any offset") {
  for (uint32_t v : u32_edges) {
    std::string s = "pre";
    keys::put_u32(s, v);
    CHECK(keys::get_u32(s, 3) == v);
  }
  for (uint64_t v : u64_edges) {
    std::string s = "p";
    keys::put_u64(s, v);
    CHECK(keys::get_u64(s, 1) == v);
  }
}

TEST_CASE("get_u32/get_u64 return 0 instead of reading past a short key") {
  CHECK(keys::get_u32("", 0) == 0);
  CHECK(keys::get_u32("\x01\x02\x03", 0) == 0);
  CHECK(keys::get_u32("\x01\x02\x03\x04", 1) == 0);
  CHECK(keys::get_u64("\x01\x02\x03\x04\x05\x06\x07", 0) == 0);
  CHECK(keys::get_u64("\x01\x02\x03\x04\x05\x06\x07\x08", 1) == 0);
}

TEST_CASE("event keys sort like (namespace, topic, seq) tuples") {
  using tuple = std::tuple<uint32_t, uint32_t, uint64_t>;
  std::vector<tuple> values;
  for (uint32_t ns : {0u, 1u, 0x100u, 0xFFFFFFFFu})
    for (uint32_t t : {0u, 1u, 0xFFu, 0x100u, 0xFFFFFFFFu})
      for (uint64_t seq : u64_edges) values.emplace_back(ns, t, seq);
  std::mt19937_64 rnd(42);
  for (int i = 0; i < 2000; ++i)
    values.emplace_back(static_cast<uint32_t>(rnd() % 4), static_cast<uint32_t>(rnd()), rnd() >> (rnd() % 64));
  for (size_t i = 0; i + 1 < values.size(); i += 1) {
    const auto& a = values[i];
    const auto& b = values[(i * 7919 + 13) % values.size()];
    std::string ka = keys::event(std::get<0>(a), std::get<1>(a), std::get<2>(a));
    std::string kb = keys::event(std::get<0>(b), std::get<1>(b), std::get<2>(b));
    int numeric = a < b ? -1 : (b < a ? 1 : 0);
    CHECK(sign(ka.compare(kb)) == numeric);
  }
  // Sorting the keys bytewise gives the numeric order.
  std::vector<std::string> ks;
  for (const auto& v : values) ks.push_back(keys::event(std::get<0>(v), std::get<1>(v), std::get<2>(v)));
  std::sort(ks.begin(), ks.end());
  std::sort(values.begin(), values.end());
  for (size_t i = 0; i < ks.size(); ++i)
    CHECK(ks[i] == keys::event(std::get<0>(values[i]), std::get<1>(values[i]), std::get<2>(values[i])));
}

TEST_CASE("event key is 16 bytes: namespace prefix, topic prefix, then seq") {
  std::string k = keys::event(7, 9, 0x0102030405060708ull);
  CHECK(k.size() == 16);
  CHECK(k.starts_with(keys::namespace_prefix(7)));
  CHECK(k.starts_with(keys::topic_prefix(7, 9)));
  CHECK(keys::topic_prefix(7, 9).size() == 8);
  CHECK(keys::event_seq(k) == 0x0102030405060708ull);
  CHECK(keys::get_u32(k, 0) == 7);
  CHECK(keys::get_u32(k, 4) == 9);
  // Every seq of a topic sorts before the next topic's first key (read()'s upper bound).
  CHECK(keys::event(7, 9, UINT64_MAX) < keys::event(7, 10, 0));
  CHECK(keys::event(7, UINT32_MAX, UINT64_MAX) < keys::event(8, 0, 0));
}

TEST_CASE("checkpoint keys sort by time within a namespace and carry the timestamp") {
  std::vector<uint64_t> ts = {0, 1, 999, 1000, 1700000000000ull, 1700000000001ull, 0xFFFFFFFFFFFFull, UINT64_MAX};
  for (size_t i = 0; i + 1 < ts.size(); ++i) CHECK(keys::checkpoint(3, ts[i]) < keys::checkpoint(3, ts[i + 1]));
  for (uint64_t t : ts) {
    std::string k = keys::checkpoint(3, t);
    CHECK(k.size() == 12);
    CHECK(k.starts_with(keys::namespace_prefix(3)));
    CHECK(keys::checkpoint_ts(k) == t);
  }
  // Every checkpoint of namespace 3 sorts before namespace 4's.
  CHECK(keys::checkpoint(3, UINT64_MAX) < keys::checkpoint(4, 0));
}

TEST_CASE("position keys are length-prefixed so a consumer name cannot run into the topic id") {
  std::string a = keys::position(1, "ab", 0x63000000u);  // 'c' as the topic's first byte
  std::string b = keys::position(1, "abc", 0);
  CHECK(a != b);
  CHECK(a.size() == 4 + 2 + 2 + 4);
  CHECK(keys::get_u32(a, 0) == 1);
  CHECK(a.substr(4, 2) == "\x00\x02"s);
  CHECK(a.substr(6, 2) == "ab");
  CHECK(keys::get_u32(a, 8) == 0x63000000u);
  // Same consumer: ordered by topic id.
  CHECK(keys::position(1, "c", 1) < keys::position(1, "c", 2));
  CHECK(keys::position(1, "c", 0xFF) < keys::position(1, "c", 0x100));
  // Empty consumer (the session's own position) is a valid key.
  CHECK(keys::position(1, "", 5).size() == 10);
  CHECK(keys::position(1, "zzz", UINT32_MAX) < keys::position(2, "", 0));
}

TEST_CASE("dedupe keys are namespace then the raw producer id") {
  CHECK(keys::dedupe(2, "abc") == keys::namespace_prefix(2) + "abc");
  CHECK(keys::dedupe(2, "abc") != keys::dedupe(3, "abc"));
  CHECK(keys::dedupe(2, ""s) == keys::namespace_prefix(2));
  CHECK(keys::dedupe(2, "a\0b"s).size() == 7);  // binary-safe
}

TEST_CASE("meta keys have distinct tags and fixed sizes") {
  CHECK(keys::meta_epoch == "epoch");
  CHECK(keys::meta_namespace("/chat") == "n/chat");
  CHECK(keys::meta_topic(1, 2) == "t\0\0\0\x01\0\0\0\x02"s);
  CHECK(keys::meta_topic(1, 2).starts_with(keys::meta_topic_prefix(1)));
  CHECK(keys::meta_topic_prefix(1).size() == 5);
  CHECK(keys::meta_head(1) == "h\0\0\0\x01"s);
  CHECK(keys::meta_bytes(1) == "b\0\0\0\x01"s);
  CHECK(keys::meta_low_water(1) == "l\0\0\0\x01"s);
  CHECK(keys::meta_topic(1, 0xFF) < keys::meta_topic(1, 0x100));
}

// ---- records ------------------------------------------------------------------------

namespace {

session_record sample_session() {
  session_record s;
  s.pid = "pid-\xc3\xa9\x00x"s;
  s.sid = "sid-1";
  s.nsp = "/chat";
  s.consumer = "worker";
  s.cursor = 0xFFFFFFFFFFull;
  s.base = 7;
  s.phase_topic = "orders";
  s.phase_marker = 99;
  s.expires_ms = 1700000000123;
  s.offsets_enabled = false;
  s.subscriptions.push_back({"orders", "", delivery_mode::automatic, 1, 2, 3});
  s.subscriptions.push_back({"audit", "billing", delivery_mode::ack, UINT64_MAX, 0, 42});
  return s;
}

void check_same(const session_record& a, const session_record& b) {
  CHECK(a.pid == b.pid);
  CHECK(a.sid == b.sid);
  CHECK(a.nsp == b.nsp);
  CHECK(a.consumer == b.consumer);
  CHECK(a.cursor == b.cursor);
  CHECK(a.base == b.base);
  CHECK(a.phase_topic == b.phase_topic);
  CHECK(a.phase_marker == b.phase_marker);
  CHECK(a.expires_ms == b.expires_ms);
  CHECK(a.offsets_enabled == b.offsets_enabled);
  REQUIRE(a.subscriptions.size() == b.subscriptions.size());
  for (size_t i = 0; i < a.subscriptions.size(); ++i) {
    CAPTURE(i);
    const auto& x = a.subscriptions[i];
    const auto& y = b.subscriptions[i];
    CHECK(x.topic == y.topic);
    CHECK(x.consumer == y.consumer);
    CHECK(x.mode == y.mode);
    CHECK(x.from_seq == y.from_seq);
    CHECK(x.history_end == y.history_end);
    CHECK(x.position == y.position);
  }
}

}  // namespace

TEST_CASE("a session record survives encode and decode with every field") {
  session_record s = sample_session();
  auto r = decode_session(encode(s));
  REQUIRE(r.ok());
  check_same(*r, s);
}

TEST_CASE("a default session record round-trips (offsets on, no subscriptions)") {
  session_record s;
  auto r = decode_session(encode(s));
  REQUIRE(r.ok());
  check_same(*r, s);
  CHECK(r->offsets_enabled);
  CHECK(r->subscriptions.empty());
}

TEST_CASE("decode_session rejects garbage with corruption") {
  std::string valid = encode(sample_session());
  const std::vector<std::string> bad = {
      ""s,
      "\x01"s,
      "\x00\x00\x00"s,
      "\xff\xff\xff\xff garbage, not a flatbuffer"s,
      std::string(64, '\xff'),
      valid.substr(0, valid.size() / 2),
      valid.substr(0, 8),
  };
  for (const auto& b : bad) {
    CAPTURE(b.size());
    auto r = decode_session(b);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error() == errc::corruption);
    CHECK(ferry::storage::verified_session(b) == nullptr);
  }
}

TEST_CASE("decode_session never crashes on random bytes or a randomly damaged record") {
  std::mt19937_64 rnd(7);
  std::string valid = encode(sample_session());
  size_t rejected = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string b;
    if (i % 2 == 0) {
      b.resize(rnd() % 200);
      for (char& c : b) c = static_cast<char>(rnd());
    } else {
      b = valid;
      for (int flips = 1 + static_cast<int>(rnd() % 4); flips > 0; --flips)
        b[rnd() % b.size()] = static_cast<char>(rnd());
    }
    auto r = decode_session(b);  // ASan/UBSan catch any out-of-bounds read
    if (!r.ok()) {
      CHECK(r.error() == errc::corruption);
      ++rejected;
    }
  }
  CHECK(rejected > 1000);  // nearly all random buffers fail verification
}

TEST_CASE("verified accessors reject empty and truncated buffers") {
  CHECK(ferry::storage::verified_event("") == nullptr);
  CHECK(ferry::storage::verified_topic_meta("") == nullptr);
  CHECK(ferry::storage::verified_dedupe("") == nullptr);
  CHECK(ferry::storage::verified_position("") == nullptr);
  CHECK(ferry::storage::verified_checkpoint("") == nullptr);
  CHECK(ferry::storage::verified_event("\x10\x00\x00"s) == nullptr);
  CHECK(ferry::storage::verified_event("\xff\xff\xff\x7f\x00\x00\x00\x00"s) == nullptr);
}
