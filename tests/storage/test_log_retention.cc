// Tests for retention (by age and by size, range deletes driven by checkpoints) and
// seq_before_time (time lookups through the same checkpoints) in storage/log.h.
//
// options::checkpoint_interval is 1 ms and the tests sleep 2 ms between appends, so every
// append's group commit writes its own checkpoint and the expected cut is exact.
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

#include "support.h"

using namespace ferry::storage;
using namespace ferry::storage::test;
using std::chrono::milliseconds;

namespace {

options fine_checkpoints() {
  options o;
  o.checkpoint_interval = milliseconds(1);
  return o;
}

std::string fixed_data(int i) {
  std::string n = std::to_string(i);
  return "{\"payload\":\"" + std::string(40 - n.size(), 'x') + n + "\"}";
}

append_result append_spaced(ferry::storage::log& l, uint32_t ns, const std::string& topic, int i) {
  auto r = append_one(l, ns, topic, fixed_data(i));
  REQUIRE(r.status == errc::ok);
  sleep_ms(2);
  return r;
}

errc retention(ferry::storage::log& l, uint32_t ns) {
  return wait_write([&](write_callback cb) { l.enforce_retention(ns, std::move(cb)); });
}

}  // namespace

TEST_CASE("retention by age removes old events, advances low_water and topic first_seq, keeps new ones") {
  temp_dir tmp;
  uint32_t ns = 0, a = 0, b = 0, c = 0;
  {
    auto l = open_log(tmp.data(), fine_checkpoints());
    ns = make_namespace(*l, "/");
    // Old: seqs 1..10, odd ones in topic a, even ones in topic b.
    for (int i = 1; i <= 10; ++i) append_spaced(*l, ns, i % 2 ? "a" : "b", i);
    sleep_ms(400);
    // New: seqs 11, 12 in topic a, 13 in the new topic c.
    for (int i = 11; i <= 13; ++i) append_spaced(*l, ns, i < 13 ? "a" : "c", i);
    a = *l->find_topic(ns, "a");
    b = *l->find_topic(ns, "b");
    c = *l->find_topic(ns, "c");

    namespace_policy p;
    p.retention_age = milliseconds(200);
    l->set_policy(ns, p);
    REQUIRE(retention(*l, ns) == errc::ok);

    CHECK(l->low_water(ns) == 10);
    CHECK(l->head(ns) == 13);
    auto left = read_all(*l, ns, a);
    REQUIRE(left.size() == 2);
    CHECK(left[0].seq == 11);
    CHECK(left[1].seq == 12);
    CHECK(read_all(*l, ns, b).empty());
    CHECK(read_all(*l, ns, c).size() == 1);
    CHECK(l->get(ns, a, 1).error() == errc::not_found);
    CHECK(l->get(ns, b, 10).error() == errc::not_found);
    CHECK(l->get(ns, a, 11).ok());

    // first_seq is the last event of the topic that retention removed (0 = none): a
    // reader positioned before it has missed events.
    auto ta = l->topic(ns, a);
    auto tb = l->topic(ns, b);
    auto tc = l->topic(ns, c);
    CHECK(ta->first_seq == 9);
    CHECK(tb->first_seq == 10);  // everything of b is gone: first_seq == last_seq
    CHECK(tb->last_seq == 10);
    CHECK(tc->first_seq == 0);  // nothing of c was removed
    CHECK(ta->count == 7);      // count includes removed events
    CHECK(tb->count == 5);

    // A second pass has nothing more to remove.
    REQUIRE(retention(*l, ns) == errc::ok);
    CHECK(l->low_water(ns) == 10);
    CHECK(read_all(*l, ns, a).size() == 2);
    CHECK(l->topic(ns, a)->first_seq == 9);
  }
  // The cut is durable.
  auto l = open_log(tmp.data(), fine_checkpoints());
  CHECK(l->low_water(ns) == 10);
  CHECK(l->topic(ns, a)->first_seq == 9);
  CHECK(l->topic(ns, b)->first_seq == 10);
  CHECK(l->topic(ns, c)->first_seq == 0);
  CHECK(read_all(*l, ns, a).size() == 2);
  CHECK(read_all(*l, ns, b).empty());
}

TEST_CASE("retention by age never removes the newest checkpoint's events") {
  temp_dir tmp;
  auto l = open_log(tmp.data(), fine_checkpoints());
  uint32_t ns = make_namespace(*l, "/");
  for (int i = 1; i <= 5; ++i) append_spaced(*l, ns, "t", i);
  sleep_ms(300);
  namespace_policy p;
  p.retention_age = milliseconds(100);
  l->set_policy(ns, p);
  REQUIRE(retention(*l, ns) == errc::ok);
  CHECK(l->low_water(ns) == 4);
  auto left = read_all(*l, ns, 1);
  REQUIRE(left.size() == 1);
  CHECK(left[0].seq == 5);
}

TEST_CASE("retention by size keeps at least retention_bytes of the newest events") {
  temp_dir tmp;
  auto l = open_log(tmp.data(), fine_checkpoints());
  uint32_t ns = make_namespace(*l, "/");
  for (int i = 1; i <= 20; ++i) append_spaced(*l, ns, "t", i);
  uint32_t t = *l->find_topic(ns, "t");
  auto all = read_all(*l, ns, t);
  REQUIRE(all.size() == 20);
  // One event per group commit here, so one chunk record per event, all the same size.
  size_t r = all[0].chunk->size();
  for (const auto& e : all) REQUIRE(e.chunk->size() == r);

  namespace_policy p;
  p.retention_bytes = 5 * r + r / 2;  // room for 5.5 events
  l->set_policy(ns, p);
  REQUIRE(retention(*l, ns) == errc::ok);

  auto left = read_all(*l, ns, t);
  size_t kept = 0;
  for (const auto& e : left) kept += e.chunk->size();
  CHECK(kept > p.retention_bytes);       // never cut below the limit
  CHECK(kept - r <= p.retention_bytes);  // and cut as far as the checkpoints allow
  REQUIRE(left.size() == 6);
  CHECK(left.front().seq == 15);
  CHECK(left.back().seq == 20);
  CHECK(l->low_water(ns) == 14);
  CHECK(l->topic(ns, t)->first_seq == 14);

  // New appends then push the window forward again.
  for (int i = 21; i <= 25; ++i) append_spaced(*l, ns, "t", i);
  REQUIRE(retention(*l, ns) == errc::ok);
  CHECK(l->low_water(ns) == 19);
  CHECK(read_all(*l, ns, t).front().seq == 20);
}

TEST_CASE("retention without a policy, or on an unknown namespace, removes nothing") {
  temp_dir tmp;
  auto l = open_log(tmp.data(), fine_checkpoints());
  uint32_t ns = make_namespace(*l, "/");
  for (int i = 1; i <= 3; ++i) append_spaced(*l, ns, "t", i);
  REQUIRE(retention(*l, ns) == errc::ok);
  CHECK(l->low_water(ns) == 0);
  CHECK(read_all(*l, ns, 1).size() == 3);
  CHECK(retention(*l, ns + 7) == errc::invalid_argument);
}

TEST_CASE("seq_before_time returns the last seq appended before the timestamp") {
  temp_dir tmp;
  auto l = open_log(tmp.data(), fine_checkpoints());
  uint32_t ns = make_namespace(*l, "/");
  std::vector<int64_t> ts(1, 0);  // ts[seq]
  for (int i = 1; i <= 5; ++i) ts.push_back(append_spaced(*l, ns, "t", i).ts_ms);
  int64_t middle = wall_ms();
  sleep_ms(5);
  for (int i = 6; i <= 10; ++i) ts.push_back(append_spaced(*l, ns, "t", i).ts_ms);

  CHECK(l->seq_before_time(ns, middle + 1) == 5);
  auto e5 = l->get(ns, 1, 5);
  REQUIRE(e5.ok());
  CHECK(e5->event()->ts_ms() < middle + 1);
  for (uint64_t seq = 1; seq <= 10; ++seq) {
    CAPTURE(seq);
    CHECK(l->seq_before_time(ns, ts[seq] + 1) == seq);  // includes the event stamped ts[seq]
    CHECK(l->seq_before_time(ns, ts[seq]) == seq - 1);  // strictly before
  }
  CHECK(l->seq_before_time(ns, ts[1] - 1000) == 0);
  CHECK(l->seq_before_time(ns, 0) == 0);
  CHECK(l->seq_before_time(ns, -5) == 0);
  CHECK(l->seq_before_time(ns, wall_ms() + 3600 * 1000) == 10);
}

TEST_CASE("seq_before_time does not see another namespace's checkpoints") {
  temp_dir tmp;
  auto l = open_log(tmp.data(), fine_checkpoints());
  uint32_t one = make_namespace(*l, "/one");
  uint32_t two = make_namespace(*l, "/two");
  for (int i = 1; i <= 3; ++i) append_spaced(*l, one, "t", i);
  int64_t between = wall_ms();
  sleep_ms(3);
  for (int i = 1; i <= 2; ++i) append_spaced(*l, two, "t", i);
  CHECK(l->seq_before_time(one, between + 1) == 3);
  CHECK(l->seq_before_time(two, between) == 0);  // /one's checkpoints are older but not /two's
  CHECK(l->seq_before_time(two, wall_ms() + 1000) == 2);
  CHECK(l->seq_before_time(one, wall_ms() + 1000) == 3);
}

TEST_CASE("seq_before_time after retention falls back to low_water") {
  temp_dir tmp;
  auto l = open_log(tmp.data(), fine_checkpoints());
  uint32_t ns = make_namespace(*l, "/");
  int64_t start = wall_ms();
  for (int i = 1; i <= 6; ++i) append_spaced(*l, ns, "t", i);
  sleep_ms(300);
  for (int i = 7; i <= 8; ++i) append_spaced(*l, ns, "t", i);
  namespace_policy p;
  p.retention_age = milliseconds(150);
  l->set_policy(ns, p);
  REQUIRE(retention(*l, ns) == errc::ok);
  REQUIRE(l->low_water(ns) == 6);
  // Asking for a time whose events are gone gives the first seq still readable - 1.
  CHECK(l->seq_before_time(ns, start + 1) == 6);
  CHECK(l->seq_before_time(ns, wall_ms() + 1000) == 8);
}
