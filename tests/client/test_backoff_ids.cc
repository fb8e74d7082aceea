// Unit tests: reconnection backoff (growth, cap, jitter bounds) and producer ids.
#include <doctest/doctest.h>

#include <set>
#include <thread>
#include <unordered_set>

#include "client/src/backoff.h"
#include "client/src/ids.h"

using namespace ferry::client::detail;
using namespace std::chrono_literals;

TEST_SUITE("unit") {
  TEST_CASE("backoff doubles from the initial delay up to the cap without jitter") {
    backoff b(100ms, 1000ms, 0.0, 1);
    CHECK(b.next() == 100ms);
    CHECK(b.next() == 200ms);
    CHECK(b.next() == 400ms);
    CHECK(b.next() == 800ms);
    CHECK(b.next() == 1000ms);
    CHECK(b.next() == 1000ms);
    CHECK(b.attempts() == 6);
    b.reset();
    CHECK(b.attempts() == 0);
    CHECK(b.next() == 100ms);
    for (int i = 0; i < 200; ++i) (void)b.next();  // no overflow after many attempts
    CHECK(b.next() == 1000ms);
  }

  TEST_CASE("backoff jitter stays within +-factor of the base delay and never passes the cap") {
    const double jitter = 0.5;
    for (uint64_t seed = 1; seed <= 50; ++seed) {
      backoff b(200ms, 3000ms, jitter, seed);
      for (uint32_t n = 0; n < 8; ++n) {
        auto base = b.base_delay(n);
        auto d = b.next();
        CAPTURE(seed);
        CAPTURE(n);
        CHECK(d.count() >= static_cast<int64_t>(static_cast<double>(base.count()) * (1 - jitter)) - 1);
        CHECK(d.count() <=
              std::min<int64_t>(static_cast<int64_t>(static_cast<double>(base.count()) * (1 + jitter)) + 1, 3000));
      }
    }
  }

  TEST_CASE("backoff jitter spreads the delays (no thundering herd)") {
    std::set<int64_t> seen;
    for (uint64_t seed = 1; seed <= 40; ++seed) {
      backoff b(1000ms, 5000ms, 0.5, seed);
      seen.insert(b.next().count());
    }
    CHECK(seen.size() > 20);
    CHECK(*seen.begin() >= 500);
    CHECK(*seen.rbegin() <= 1500);
  }

  TEST_CASE("random prefixes are 12 base62 characters and differ between producers") {
    std::unordered_set<std::string> prefixes;
    for (int i = 0; i < 1000; ++i) {
      auto p = random_prefix();
      REQUIRE(p.size() == 12);
      for (char c : p) CHECK(std::isalnum(static_cast<unsigned char>(c)));
      prefixes.insert(p);
    }
    CHECK(prefixes.size() == 1000);
  }

  TEST_CASE("ids of one generator are unique and carry the prefix and a counter") {
    id_generator g("abc");
    CHECK(g.next() == "abc-1");
    CHECK(g.next() == "abc-2");
    std::unordered_set<std::string> ids;
    for (int i = 0; i < 100000; ++i) ids.insert(g.next());
    CHECK(ids.size() == 100000);
    CHECK(g.prefix() == "abc");
  }

  TEST_CASE("ids stay unique when several threads publish at once") {
    id_generator g(random_prefix());
    std::vector<std::vector<std::string>> per(4);
    std::vector<std::thread> ts;
    for (auto& v : per)
      ts.emplace_back([&g, &v] {
        for (int i = 0; i < 20000; ++i) v.push_back(g.next());
      });
    for (auto& t : ts) t.join();
    std::unordered_set<std::string> all;
    for (auto& v : per) all.insert(v.begin(), v.end());
    CHECK(all.size() == 80000);
  }

}  // TEST_SUITE
