// Tests for the session and consumer-position records of storage/log.h: put/get round
// trips, delete, expiry, listing positions per namespace, persistence across reopen.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "support.h"

using namespace ferry::storage;
using namespace ferry::storage::test;

namespace {

session_record make_session(std::string pid, int64_t expires_ms) {
  session_record s;
  s.pid = std::move(pid);
  s.sid = "sid-" + s.pid;
  s.nsp = "/chat";
  s.consumer = "app";
  s.cursor = 41;
  s.base = 3;
  s.phase_topic = "room";
  s.phase_marker = 40;
  s.expires_ms = expires_ms;
  s.offsets_enabled = false;
  s.subscriptions.push_back({"room", "", delivery_mode::automatic, 3, 10, 41});
  s.subscriptions.push_back({"jobs", "workers", delivery_mode::ack, 0, 0, 17});
  return s;
}

errc put(ferry::storage::log& l, const session_record& s) {
  return wait_write([&](write_callback cb) { l.put_session(s, std::move(cb)); });
}

}  // namespace

TEST_CASE("put_session and get_session round-trip a session with its subscriptions") {
  temp_dir tmp;
  auto l = open_log(tmp.data());
  session_record s = make_session("pid-1", wall_ms() + 3600 * 1000);
  REQUIRE(put(*l, s) == errc::ok);
  auto r = l->get_session("pid-1");
  REQUIRE(r.ok());
  CHECK(r->pid == "pid-1");
  CHECK(r->sid == "sid-pid-1");
  CHECK(r->nsp == "/chat");
  CHECK(r->consumer == "app");
  CHECK(r->cursor == 41);
  CHECK(r->base == 3);
  CHECK(r->phase_topic == "room");
  CHECK(r->phase_marker == 40);
  CHECK(r->expires_ms == s.expires_ms);
  CHECK_FALSE(r->offsets_enabled);
  REQUIRE(r->subscriptions.size() == 2);
  CHECK(r->subscriptions[0].topic == "room");
  CHECK(r->subscriptions[0].mode == delivery_mode::automatic);
  CHECK(r->subscriptions[0].history_end == 10);
  CHECK(r->subscriptions[1].consumer == "workers");
  CHECK(r->subscriptions[1].mode == delivery_mode::ack);
  CHECK(r->subscriptions[1].position == 17);

  // A second put replaces the record.
  s.cursor = 99;
  s.subscriptions.pop_back();
  REQUIRE(put(*l, s) == errc::ok);
  r = l->get_session("pid-1");
  REQUIRE(r.ok());
  CHECK(r->cursor == 99);
  CHECK(r->subscriptions.size() == 1);
}

TEST_CASE("get_session of an unknown pid is not_found") {
  temp_dir tmp;
  auto l = open_log(tmp.data());
  auto r = l->get_session("nobody");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error() == errc::not_found);
}

TEST_CASE("delete_session removes the session") {
  temp_dir tmp;
  auto l = open_log(tmp.data());
  REQUIRE(put(*l, make_session("a", wall_ms() + 60000)) == errc::ok);
  REQUIRE(put(*l, make_session("b", wall_ms() + 60000)) == errc::ok);
  REQUIRE(wait_write([&](write_callback cb) { l->delete_session("a", std::move(cb)); }) == errc::ok);
  auto gone = l->get_session("a");
  REQUIRE_FALSE(gone.ok());
  CHECK(gone.error() == errc::not_found);
  CHECK(l->get_session("b").ok());
  // Deleting what is not there is not an error.
  CHECK(wait_write([&](write_callback cb) { l->delete_session("never", std::move(cb)); }) == errc::ok);
}

TEST_CASE("an expired session reads as not_found") {
  temp_dir tmp;
  auto l = open_log(tmp.data());
  REQUIRE(put(*l, make_session("old", wall_ms() - 1000)) == errc::ok);
  auto r = l->get_session("old");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error() == errc::not_found);

  // A session whose expiry passes while it is stored disappears too.
  REQUIRE(put(*l, make_session("short", wall_ms() + 150)) == errc::ok);
  CHECK(l->get_session("short").ok());
  sleep_ms(250);
  CHECK_FALSE(l->get_session("short").ok());

  // Trap: expires_ms defaults to 0, which means "already expired".
  session_record no_expiry;
  no_expiry.pid = "default-expiry";
  REQUIRE(put(*l, no_expiry) == errc::ok);
  CHECK_FALSE(l->get_session("default-expiry").ok());
}

TEST_CASE("sessions survive reopen") {
  temp_dir tmp;
  {
    auto l = open_log(tmp.data());
    REQUIRE(put(*l, make_session("keep", wall_ms() + 3600 * 1000)) == errc::ok);
  }
  auto l = open_log(tmp.data());
  auto r = l->get_session("keep");
  REQUIRE(r.ok());
  CHECK(r->subscriptions.size() == 2);
}

TEST_CASE("put_position and get_position round-trip; a later put overwrites") {
  temp_dir tmp;
  auto l = open_log(tmp.data());
  uint32_t ns = make_namespace(*l, "/");
  auto put_pos = [&](uint32_t n, std::string_view consumer, uint32_t topic, uint64_t seq) {
    return wait_write([&](write_callback cb) { l->put_position(n, consumer, topic, seq, std::move(cb)); });
  };
  REQUIRE(put_pos(ns, "billing", 1, 42) == errc::ok);
  auto r = l->get_position(ns, "billing", 1);
  REQUIRE(r.ok());
  CHECK(*r == 42);
  REQUIRE(put_pos(ns, "billing", 1, 50) == errc::ok);
  CHECK(*l->get_position(ns, "billing", 1) == 50);

  auto missing = l->get_position(ns, "billing", 2);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error() == errc::not_found);
  CHECK(l->get_position(ns, "bill", 1).error() == errc::not_found);         // a prefix of the name
  CHECK(l->get_position(ns + 1, "billing", 1).error() == errc::not_found);  // another namespace
}

TEST_CASE("positions lists one namespace's positions with consumer, topic, seq and time") {
  temp_dir tmp;
  auto l = open_log(tmp.data());
  uint32_t ns = make_namespace(*l, "/");
  uint32_t other = make_namespace(*l, "/other");
  int64_t before = wall_ms();
  l->put_position(ns, "a", 1, 10);
  l->put_position(ns, "a", 2, 20);
  l->put_position(ns, "bb", 1, 30);
  l->put_position(ns, "", 7, 40);  // a session's own position (empty consumer)
  l->put_position(other, "a", 1, 99);
  REQUIRE(l->flush() == errc::ok);

  auto ps = l->positions(ns);
  REQUIRE(ps.size() == 4);
  std::sort(ps.begin(), ps.end(), [](const position_info& x, const position_info& y) { return x.seq < y.seq; });
  CHECK(ps[0].consumer == "a");
  CHECK(ps[0].topic_id == 1);
  CHECK(ps[0].seq == 10);
  CHECK(ps[1].consumer == "a");
  CHECK(ps[1].topic_id == 2);
  CHECK(ps[2].consumer == "bb");
  CHECK(ps[2].seq == 30);
  CHECK(ps[3].consumer == "");
  CHECK(ps[3].topic_id == 7);
  for (const auto& p : ps) CHECK(p.updated_ms >= before - 1);

  auto po = l->positions(other);
  REQUIRE(po.size() == 1);
  CHECK(po[0].seq == 99);
  CHECK(l->positions(other + 1).empty());
}

TEST_CASE("positions survive reopen") {
  temp_dir tmp;
  uint32_t ns = 0;
  {
    auto l = open_log(tmp.data());
    ns = make_namespace(*l, "/");
    l->put_position(ns, "c", 3, 123);
  }  // the destructor completes queued writes
  auto l = open_log(tmp.data());
  auto r = l->get_position(ns, "c", 3);
  REQUIRE(r.ok());
  CHECK(*r == 123);
}
