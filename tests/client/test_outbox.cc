// Unit tests: the producer outbox - bounds and the three full-outbox policies, batching
// order, requeue after failures, solo sends, expiry and close.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "client/src/outbox.h"

using namespace ferry::client;
using namespace ferry::client::detail;
using namespace std::chrono_literals;

namespace {

struct fixture {
  uint64_t next = 1;
  std::function<result<void>(outbox_entry&)> accept = [this](outbox_entry& e) -> result<void> {
    e.seq = next++;
    return {};
  };
};

outbox_entry entry(const std::string& item) {
  outbox_entry e;
  e.item = item;
  e.id = item;
  return e;
}

}  // namespace

TEST_SUITE("unit") {
  TEST_CASE("outbox fail policy refuses at the event bound and at the byte bound") {
    fixture f;
    outbox ob(3, 1000);
    for (int i = 0; i < 3; ++i)
      CHECK(ob.push(entry("e" + std::to_string(i)), outbox_policy::fail, 0ms, f.accept).st == outbox::status::accepted);
    CHECK(ob.push(entry("x"), outbox_policy::fail, 0ms, f.accept).st == outbox::status::full);
    CHECK(ob.size() == 3);

    outbox bytes(100, 10);
    CHECK(bytes.push(entry("123456"), outbox_policy::fail, 0ms, f.accept).st == outbox::status::accepted);
    CHECK(bytes.push(entry("12345"), outbox_policy::fail, 0ms, f.accept).st == outbox::status::full);
    CHECK(bytes.push(entry("1234"), outbox_policy::fail, 0ms, f.accept).st == outbox::status::accepted);
    CHECK(bytes.bytes() == 10);
    CHECK(bytes.push(entry(std::string(11, 'x')), outbox_policy::drop_oldest, 0ms, f.accept).st ==
          outbox::status::too_large);
  }

  TEST_CASE("outbox block policy waits for room and gives up after the timeout") {
    fixture f;
    outbox ob(1, 1000);
    REQUIRE(ob.push(entry("a"), outbox_policy::block, 0ms, f.accept).st == outbox::status::accepted);
    auto t0 = std::chrono::steady_clock::now();
    CHECK(ob.push(entry("b"), outbox_policy::block, 50ms, f.accept).st == outbox::status::full);
    CHECK(std::chrono::steady_clock::now() - t0 >= 45ms);

    std::atomic<bool> done{false};
    outbox::status st = outbox::status::full;
    std::thread t([&] {
      st = ob.push(entry("c"), outbox_policy::block, 5000ms, f.accept).st;
      done = true;
    });
    std::this_thread::sleep_for(30ms);
    CHECK_FALSE(done.load());
    auto b = ob.take_batch(10, 1000);
    REQUIRE(b.seqs.size() == 1);
    CHECK(ob.complete(b.seqs[0]).has_value());  // acknowledged: room for "c"
    t.join();
    CHECK(st == outbox::status::accepted);
    CHECK(ob.size() == 1);
  }

  TEST_CASE("outbox close wakes a blocked publisher with closed") {
    fixture f;
    outbox ob(1, 1000);
    REQUIRE(ob.push(entry("a"), outbox_policy::block, 0ms, f.accept).st == outbox::status::accepted);
    outbox::status st = outbox::status::accepted;
    std::thread t([&] { st = ob.push(entry("b"), outbox_policy::block, 5000ms, f.accept).st; });
    std::this_thread::sleep_for(20ms);
    auto left = ob.close();
    t.join();
    CHECK(st == outbox::status::closed);
    CHECK(left.size() == 1);
    CHECK(ob.push(entry("c"), outbox_policy::fail, 0ms, f.accept).st == outbox::status::closed);
  }

  TEST_CASE("outbox drop_oldest evicts the oldest events, in flight or not, and returns them") {
    fixture f;
    outbox ob(3, 1000);
    for (const char* s : {"a", "b", "c"})
      REQUIRE(ob.push(entry(s), outbox_policy::drop_oldest, 0ms, f.accept).st == outbox::status::accepted);
    auto b = ob.take_batch(1, 1000);  // "a" in flight
    REQUIRE(b.seqs == std::vector<uint64_t>{1});
    auto r = ob.push(entry("d"), outbox_policy::drop_oldest, 0ms, f.accept);
    CHECK(r.st == outbox::status::accepted);
    REQUIRE(r.dropped.size() == 1);
    CHECK(r.dropped[0].item == "a");
    CHECK_FALSE(ob.complete(1).has_value());  // its late ack finds nothing
    auto r2 = ob.push(entry("eeee"), outbox_policy::drop_oldest, 0ms, f.accept);
    REQUIRE(r2.dropped.size() == 1);
    CHECK(r2.dropped[0].item == "b");
    CHECK(ob.size() == 3);
    auto rest = ob.take_batch(10, 1000);
    CHECK(rest.json == R"([c,d,eeee])");
  }

  TEST_CASE("outbox accept hook runs in order and its failure rejects the event") {
    outbox ob(10, 1000);
    int calls = 0;
    auto fail = [&](outbox_entry&) -> result<void> {
      ++calls;
      return {errc::spool_error, "disk full"};
    };
    auto r = ob.push(entry("a"), outbox_policy::fail, 0ms, fail);
    CHECK(r.st == outbox::status::rejected);
    CHECK(r.err.code == errc::spool_error);
    CHECK(calls == 1);
    CHECK(ob.size() == 0);
  }

  TEST_CASE("outbox batches respect event and byte limits, lowest seq first, at least one event") {
    fixture f;
    outbox ob(100, 10000);
    for (int i = 0; i < 5; ++i)
      REQUIRE(ob.push(entry("item" + std::to_string(i)), outbox_policy::fail, 0ms, f.accept).st ==
              outbox::status::accepted);
    auto b1 = ob.take_batch(2, 10000);
    CHECK(b1.json == "[item0,item1]");
    auto b2 = ob.take_batch(10, 12);  // "[item2]" is 7 bytes; with ",item3" it would be 13
    CHECK(b2.json == "[item2]");
    auto big = ob.take_batch(10, 1);  // never empty while something is queued
    CHECK(big.seqs.size() == 1);
    CHECK(ob.queued() == 1);
    // b1 failed (disconnect): its events go out again before the newer one.
    CHECK(ob.requeue(b1.seqs) == 2);
    auto b3 = ob.take_batch(10, 10000);
    CHECK(b3.json == "[item0,item1,item4]");
    CHECK(ob.queued() == 0);
    CHECK(ob.requeue_all() == 5);
    CHECK(ob.queued() == 5);
    CHECK(ob.queued_bytes() == 25);
  }

  TEST_CASE("outbox solo events are sent alone to isolate a rejected batch") {
    fixture f;
    outbox ob(100, 10000);
    for (const char* s : {"a", "b", "c"})
      REQUIRE(ob.push(entry(s), outbox_policy::fail, 0ms, f.accept).st == outbox::status::accepted);
    auto b = ob.take_batch(10, 1000);
    CHECK(b.seqs.size() == 3);
    ob.requeue(b.seqs, true);
    CHECK(ob.take_batch(10, 1000).json == "[a]");
    CHECK(ob.take_batch(10, 1000).json == "[b]");
    CHECK(ob.take_batch(10, 1000).json == "[c]");
  }

  TEST_CASE("outbox expiry removes events past their deadline and frees room") {
    fixture f;
    outbox ob(2, 1000);
    auto now = std::chrono::steady_clock::now();
    auto e1 = entry("old");
    e1.deadline = now - 1ms;
    auto e2 = entry("new");
    e2.deadline = now + 1h;
    REQUIRE(ob.push(std::move(e1), outbox_policy::fail, 0ms, f.accept).st == outbox::status::accepted);
    REQUIRE(ob.push(std::move(e2), outbox_policy::fail, 0ms, f.accept).st == outbox::status::accepted);
    auto gone = ob.expire(now);
    REQUIRE(gone.size() == 1);
    CHECK(gone[0].item == "old");
    CHECK(ob.size() == 1);
    CHECK(ob.lowest_seq() == 2);
    CHECK(ob.push(entry("x"), outbox_policy::fail, 0ms, f.accept).st == outbox::status::accepted);
  }

}  // TEST_SUITE
