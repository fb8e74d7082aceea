// Tests for the producer-id dedupe table of storage/log.h: a repeated id within the
// namespace's dedupe window is acknowledged with the original seq and nothing is stored;
// after the window the id is accepted again.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "support.h"

using namespace ferry::storage;
using namespace ferry::storage::test;

TEST_CASE("dedupe: the same producer id again is a duplicate with the original seq and stores nothing") {
  temp_dir tmp;
  auto l = open_log(tmp.data());
  uint32_t ns = make_namespace(*l, "/");
  auto first = append_one(*l, ns, "orders", "{\"v\":1}", "prod-1");
  REQUIRE(first.status == errc::ok);
  REQUIRE(first.events.size() == 1);
  CHECK_FALSE(first.events[0].duplicate);

  REQUIRE(append_one(*l, ns, "orders", "{\"v\":2}", "prod-2").status == errc::ok);
  // Same id, different data and even a different topic: still the original event.
  auto again = append_one(*l, ns, "other-topic", "{\"v\":3}", "prod-1");
  REQUIRE(again.status == errc::ok);
  REQUIRE(again.events.size() == 1);
  CHECK(again.events[0].duplicate);
  CHECK(again.events[0].seq == first.events[0].seq);
  CHECK(again.events[0].topic_id == first.events[0].topic_id);

  CHECK(l->head(ns) == 2);
  CHECK_FALSE(l->find_topic(ns, "other-topic"));
  auto events = read_all(*l, ns, first.events[0].topic_id);
  REQUIRE(events.size() == 2);
  CHECK(events[0].event()->data()->str() == "{\"v\":1}");
  CHECK(events[0].event()->id()->str() == "prod-1");
  CHECK(l->topic(ns, first.events[0].topic_id)->count == 2);
  auto st = l->stats();
  CHECK(st.appended_events == 2);
  CHECK(st.duplicate_events == 1);
}

TEST_CASE("dedupe: a repeated id inside one batch maps to the first occurrence") {
  temp_dir tmp;
  auto l = open_log(tmp.data());
  uint32_t ns = make_namespace(*l, "/");
  std::vector<event_input> batch;
  batch.push_back(make_event("t", "1", "x"));
  batch.push_back(make_event("t", "2", "y"));
  batch.push_back(make_event("t", "3", "x"));
  batch.push_back(make_event("t", "4"));  // no id: never deduplicated
  batch.push_back(make_event("t", "5"));
  auto r = append_sync(*l, ns, batch);
  REQUIRE(r.status == errc::ok);
  REQUIRE(r.events.size() == 5);
  CHECK_FALSE(r.events[0].duplicate);
  CHECK_FALSE(r.events[1].duplicate);
  CHECK(r.events[2].duplicate);
  CHECK(r.events[2].seq == r.events[0].seq);
  CHECK_FALSE(r.events[3].duplicate);
  CHECK_FALSE(r.events[4].duplicate);
  CHECK(r.events[3].seq != r.events[4].seq);
  CHECK(l->head(ns) == 4);
  auto stored = read_all(*l, ns, r.events[0].topic_id);
  REQUIRE(stored.size() == 4);
  CHECK(stored[0].event()->data()->str() == "1");
  CHECK(stored[1].event()->data()->str() == "2");
  CHECK(stored[2].event()->data()->str() == "4");
}

TEST_CASE("dedupe: concurrent appends of the same id store it once") {
  temp_dir tmp;
  auto l = open_log(tmp.data());
  uint32_t ns = make_namespace(*l, "/");
  constexpr int ids = 200, threads = 4;
  std::vector<std::vector<appended>> got(threads, std::vector<appended>(ids));
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < ids; ++i) {
        std::vector<event_input> v;
        v.push_back(make_event("t", std::to_string(t), "id-" + std::to_string(i)));
        l->append(ns, std::move(v), [&, t, i](append_result& r, std::vector<event_input>&) {
          if (r.status == errc::ok && r.events.size() == 1) got[t][i] = r.events[0];
        });
      }
    });
  }
  for (auto& t : ts) t.join();
  REQUIRE(l->flush() == errc::ok);
  int bad = 0;
  for (int i = 0; i < ids; ++i) {
    int originals = 0;
    for (int t = 0; t < threads; ++t) {
      originals += got[t][i].duplicate ? 0 : 1;
      bad += got[t][i].seq == 0 || got[t][i].seq != got[0][i].seq;
    }
    bad += originals != 1;
  }
  CHECK(bad == 0);
  CHECK(l->head(ns) == ids);
  CHECK(l->stats().duplicate_events == ids * (threads - 1));
}

TEST_CASE("dedupe: two appends queued back to back (one group commit) with the same id") {
  temp_dir tmp;
  auto l = open_log(tmp.data());
  uint32_t ns = make_namespace(*l, "/");
  appended a, b;
  std::vector<event_input> v1, v2;
  v1.push_back(make_event("t", "1", "same"));
  v2.push_back(make_event("t", "2", "same"));
  l->append(ns, std::move(v1), [&](append_result& r, std::vector<event_input>&) { a = r.events.at(0); });
  l->append(ns, std::move(v2), [&](append_result& r, std::vector<event_input>&) { b = r.events.at(0); });
  REQUIRE(l->flush() == errc::ok);
  CHECK_FALSE(a.duplicate);
  CHECK(b.duplicate);
  CHECK(a.seq == b.seq);
  CHECK(l->head(ns) == 1);
}

TEST_CASE("dedupe is per namespace") {
  temp_dir tmp;
  auto l = open_log(tmp.data());
  uint32_t one = make_namespace(*l, "/one");
  uint32_t two = make_namespace(*l, "/two");
  auto a = append_one(*l, one, "t", "{}", "shared-id");
  auto b = append_one(*l, two, "t", "{}", "shared-id");
  REQUIRE(a.status == errc::ok);
  REQUIRE(b.status == errc::ok);
  CHECK_FALSE(a.events[0].duplicate);
  CHECK_FALSE(b.events[0].duplicate);
}

TEST_CASE("dedupe survives a reopen (the table is in RocksDB, not RAM)") {
  temp_dir tmp;
  uint64_t seq = 0;
  {
    auto l = open_log(tmp.data());
    uint32_t ns = make_namespace(*l, "/");
    REQUIRE(append_one(*l, ns, "t", "{}", "a").status == errc::ok);
    auto r = append_one(*l, ns, "t", "{}", "durable-id");
    REQUIRE(r.status == errc::ok);
    seq = r.events[0].seq;
  }
  auto l = open_log(tmp.data());
  uint32_t ns = *l->find_namespace("/");
  auto r = append_one(*l, ns, "t", "{}", "durable-id");
  REQUIRE(r.status == errc::ok);
  CHECK(r.events[0].duplicate);
  CHECK(r.events[0].seq == seq);
  CHECK(l->head(ns) == 2);
}

TEST_CASE("dedupe: after the window expires the id is accepted again") {
  temp_dir tmp;
  auto l = open_log(tmp.data());
  uint32_t ns = make_namespace(*l, "/");
  namespace_policy p;
  p.dedupe_window = std::chrono::milliseconds(300);
  l->set_policy(ns, p);
  CHECK(l->policy(ns).dedupe_window == std::chrono::milliseconds(300));

  auto first = append_one(*l, ns, "t", "1", "retry-me");
  auto dup = append_one(*l, ns, "t", "2", "retry-me");
  REQUIRE(first.status == errc::ok);
  REQUIRE(dup.status == errc::ok);
  if (dup.ts_ms - first.ts_ms < 300) {  // (a very slow machine could take the window)
    CHECK(dup.events[0].duplicate);
    CHECK(dup.events[0].seq == first.events[0].seq);
  }

  sleep_ms(400);
  auto later = append_one(*l, ns, "t", "3", "retry-me");
  REQUIRE(later.status == errc::ok);
  CHECK_FALSE(later.events[0].duplicate);
  CHECK(later.events[0].seq > first.events[0].seq);
  // The new event starts a new window.
  auto dup2 = append_one(*l, ns, "t", "4", "retry-me");
  if (dup2.ts_ms - later.ts_ms < 300) {
    CHECK(dup2.events[0].duplicate);
    CHECK(dup2.events[0].seq == later.events[0].seq);
  }
}

TEST_CASE("dedupe: a 1 ms window forgets an id a few milliseconds later") {
  temp_dir tmp;
  auto l = open_log(tmp.data());
  uint32_t ns = make_namespace(*l, "/");
  namespace_policy p;
  p.dedupe_window = std::chrono::milliseconds(1);
  l->set_policy(ns, p);
  auto first = append_one(*l, ns, "t", "1", "short");
  REQUIRE(first.status == errc::ok);
  sleep_ms(10);
  auto again = append_one(*l, ns, "t", "2", "short");
  REQUIRE(again.status == errc::ok);
  CHECK_FALSE(again.events[0].duplicate);
  CHECK(again.events[0].seq == first.events[0].seq + 1);
}
