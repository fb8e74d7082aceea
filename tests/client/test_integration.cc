// Integration: producer and consumer against the real broker (ferry-broker on
// 127.0.0.1, temporary data directory): acknowledged publishing with distinct offsets,
// in-order consumption, a broker SIGKILLed and restarted mid-publish, a producer process
// killed mid-run and restarted on its spool, ack mode, named positions, session
// recovery, a broker that never acks, refused connections, bad URLs, rejected CONNECTs,
// outbox policies. The log is checked through the broker's HTTP API.
#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>

#include <nlohmann/json.hpp>

#include "ferry/client/client.h"
#include "support.h"

using namespace ferry::client;
using namespace std::chrono_literals;
namespace ft = ferry::test;
using json = nlohmann::json;

namespace {

struct logged_event {
  std::string offset, id, event, data;
};

// Every event of a topic, paging through GET /v1/topics/<t>/events.
std::vector<logged_event> read_topic(uint16_t port, const std::string& topic) {
  std::vector<logged_event> out;
  std::string from = "earliest";
  for (int page = 0; page < 1000; ++page) {
    int status = 0;
    auto body = ft::http_get(port, "/v1/topics/" + topic + "/events?limit=1000&from=" + from, &status);
    REQUIRE_MESSAGE(status == 200, "GET events: HTTP " << status << " " << body);
    auto j = json::parse(body);
    if (j["events"].empty()) break;
    for (auto& e : j["events"])
      out.push_back({e["offset"].get<std::string>(), e["id"].get<std::string>(), e["event"].get<std::string>(),
                     e["data"].dump()});
    from = j["next"].get<std::string>();
  }
  return out;
}

// Checks that every id appears exactly once; returns the id set.
std::set<std::string> unique_ids(const std::vector<logged_event>& evs) {
  std::map<std::string, int> n;
  for (auto& e : evs) ++n[e.id];
  std::set<std::string> ids;
  for (auto& [id, c] : n) {
    CHECK_MESSAGE(c == 1, "id " << id << " is in the log " << c << " times");
    ids.insert(id);
  }
  return ids;
}

producer_options fast_producer(const std::string& url) {
  producer_options o;
  o.url = url;
  o.connect_timeout = 3s;
  o.reconnect.initial_delay = 50ms;
  o.reconnect.max_delay = 300ms;
  o.linger = 2ms;
  return o;
}

consumer_options fast_consumer(const std::string& url) {
  consumer_options o;
  o.url = url;
  o.connect_timeout = 3s;
  o.reconnect.initial_delay = 50ms;
  o.reconnect.max_delay = 300ms;
  o.request_timeout = 5s;
  return o;
}

// Events a consumer handler received, waitable from the test thread.
class received {
 public:
  void add(const event& e, const ack_token& t) {
    std::lock_guard l(_m);
    _events.push_back(e);
    _tokens.push_back(t);
    _cv.notify_all();
  }
  bool wait(size_t n, std::chrono::milliseconds t = 10s) {
    std::unique_lock l(_m);
    return _cv.wait_for(l, t, [&] { return _events.size() >= n; });
  }
  std::vector<event> events() {
    std::lock_guard l(_m);
    return _events;
  }
  std::vector<ack_token> tokens() {
    std::lock_guard l(_m);
    return _tokens;
  }
  size_t size() {
    std::lock_guard l(_m);
    return _events.size();
  }
  event_handler handler() {
    return [this](const event& e, const ack_token& t) { add(e, t); };
  }

 private:
  std::mutex _m;
  std::condition_variable _cv;
  std::vector<event> _events;
  std::vector<ack_token> _tokens;
};

void check_in_order_without_repeats(const std::vector<event>& evs) {
  std::set<std::string> offsets;
  for (size_t i = 0; i < evs.size(); ++i) {
    CHECK_MESSAGE(offsets.insert(evs[i].offset).second, "offset " << evs[i].offset << " handed out twice");
    if (i > 0) CHECK_MESSAGE(evs[i - 1].offset < evs[i].offset, "out of order at " << i);
  }
}

}  // namespace

TEST_SUITE("integration") {
  TEST_CASE("producer: every publish future resolves with a distinct offset") {
    ft::broker_process b;
    b.start();
    runner r;
    producer p(r, fast_producer(b.url()));
    constexpr int n = 3000;
    std::vector<std::future<result<publish_ack>>> fs;
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) {
      auto f = p.publish({.topic = "alpha", .event = "reading", .data = "{\"i\":" + std::to_string(i) + "}"});
      fs.push_back(std::move(f));
    }
    std::set<std::string> offsets, acked_ids;
    for (auto& f : fs) {
      REQUIRE(f.wait_for(20s) == std::future_status::ready);
      auto res = f.get();
      REQUIRE_MESSAGE(res.ok(), res.err().what());
      CHECK_FALSE(res->duplicate);
      CHECK(offsets.insert(res->offset).second);
      CHECK(acked_ids.insert(res->id).second);
      CHECK(res->id.rfind(p.id_prefix() + "-", 0) == 0);
    }
    CHECK(offsets.size() == n);
    auto s = p.stats();
    CHECK(s.acked == n);
    CHECK(s.batches < n / 4);  // batched, not one emit per event
    CHECK(s.outbox_events == 0);
    auto log = read_topic(b.port(), "alpha");
    CHECK(log.size() == n);
    CHECK(unique_ids(log) == acked_ids);

    // The same id again is a duplicate with the original offset.
    auto first = log.front();
    auto dup = p.publish({.topic = "alpha", .event = "reading", .data = "0", .id = first.id}).get();
    REQUIRE(dup.ok());
    CHECK(dup->duplicate);
    CHECK(dup->offset == first.offset);
  }

  TEST_CASE("producer: invalid events are refused at once, without poisoning a batch") {
    ft::broker_process b;
    b.start();
    runner r;
    producer p(r, fast_producer(b.url()));
    CHECK(p.publish({.topic = "t", .event = "publish", .data = "1"}, {}).code() == errc::invalid_argument);
    CHECK(p.publish({.topic = "$dlq.x", .data = "1"}, {}).code() == errc::invalid_argument);
    CHECK(p.publish({.topic = "t", .data = "{not json"}, {}).code() == errc::invalid_argument);
    CHECK(p.publish({.topic = "t", .data = std::string(2 << 20, '1')}, {}).code() == errc::invalid_argument);
    auto ok = p.publish({.topic = "t", .data = "[1,2]"}).get();
    CHECK(ok.ok());
  }

  TEST_CASE("consumer: receives published events in order, from earliest and live") {
    ft::broker_process b;
    b.start();
    received got;
    runner r;
    producer p(r, fast_producer(b.url()));
    constexpr int n = 500;
    for (int i = 0; i < n; ++i) (void)p.publish({.topic = "orders", .event = "created", .data = std::to_string(i)}, {});
    REQUIRE(p.flush(20s).get().ok());

    consumer c(r, fast_consumer(b.url()));
    auto sub = c.subscribe("orders", {.from = start_position::earliest()}, got.handler()).get();
    REQUIRE_MESSAGE(sub.ok(), sub.err().what());
    CHECK(sub->topic == "orders");
    REQUIRE(got.wait(n));
    auto evs = got.events();
    REQUIRE(evs.size() == n);
    for (int i = 0; i < n; ++i) {
      CHECK(evs[i].data == std::to_string(i));
      CHECK(evs[i].name == "created");
      CHECK(evs[i].topic == "orders");
      CHECK(evs[i].ts > 0);
    }
    check_in_order_without_repeats(evs);

    for (int i = n; i < n + 50; ++i)
      (void)p.publish({.topic = "orders", .event = "created", .data = std::to_string(i)}, {});
    REQUIRE(got.wait(n + 50));
    evs = got.events();
    CHECK(evs.back().data == std::to_string(n + 49));
    check_in_order_without_repeats(evs);
    CHECK(c.stats().delivered == n + 50);
  }

  TEST_CASE("producer: broker SIGKILLed and restarted mid-publish - every event acked once in the log") {
    ft::broker_process b;
    b.start();
    std::mutex m;
    std::atomic<int> ok{0}, failed{0};
    std::set<std::string> acked_ids;
    runner r;
    auto o = fast_producer(b.url());
    o.ack_timeout = 2s;
    producer p(r, o);
    constexpr int n = 3000;
    std::thread publisher([&] {
      for (int i = 0; i < n; ++i) {
        auto id = p.publish({.topic = "crash", .data = std::to_string(i)}, [&](const result<publish_ack>& res) {
          if (res) {
            std::lock_guard l(m);
            acked_ids.insert(res->id);
            ++ok;
          } else {
            ++failed;
          }
        });
        REQUIRE(id.ok());
        if (i % 100 == 0) std::this_thread::sleep_for(10ms);
      }
    });
    REQUIRE(ft::wait_until([&] { return ok.load() > 300; }, 10s));
    b.kill9();
    std::this_thread::sleep_for(300ms);
    b.restart();
    publisher.join();
    REQUIRE(p.flush(30s).get().ok());
    CHECK(ok.load() == n);
    CHECK(failed.load() == 0);
    CHECK(p.stats().reconnects >= 1);
    auto log = read_topic(b.port(), "crash");
    CHECK(log.size() == n);
    CHECK(unique_ids(log) == acked_ids);
  }

  TEST_CASE("producer: a process killed mid-run and restarted on its spool resends, each id once") {
    ft::broker_process b;
    b.start();
    ft::temp_dir spool;
    std::string helper = ft::env("CLIENT_TEST_PRODUCER");
    REQUIRE_MESSAGE(!helper.empty(), "CLIENT_TEST_PRODUCER is not set");

    SUBCASE("nothing acknowledged before the kill (broker down)") {
      b.kill9();
      ft::child_process run1(helper, {"publish", "--url", b.url(), "--topic", "spooled", "--spool", spool.str(),
                                      "--count", "800", "--id-prefix", "a"});
      REQUIRE(run1.wait_for_line(std::regex("^all-accepted$"), 20s));
      run1.kill(SIGKILL);
      b.restart();
      ft::child_process run2(helper, {"resend", "--url", b.url(), "--spool", spool.str()});
      auto rec = run2.wait_for_line(std::regex(R"(^recovered (\d+)$)"), 20s);
      REQUIRE(rec);
      CHECK((*rec)[1].str() == "800");
      REQUIRE(run2.wait_for_line(std::regex("^flushed ok$"), 30s));
      CHECK(run2.wait() == 0);
      auto log = read_topic(b.port(), "spooled");
      auto ids = unique_ids(log);
      CHECK(ids.size() == 800);
      for (int i = 0; i < 800; ++i) CHECK(ids.count("a-" + std::to_string(i)) == 1);
    }

    SUBCASE("killed while publishing against a live broker") {
      ft::child_process run1(helper, {"publish", "--url", b.url(), "--topic", "spooled", "--spool", spool.str(),
                                      "--count", "20000", "--id-prefix", "b"});
      auto seen = run1.wait_for_line(std::regex(R"(^accepted (1[0-9]{3}[0-9])$)"), 20s);  // >= 10000
      REQUIRE(seen);
      run1.kill(SIGKILL);
      long last_accepted = -1;
      for (const auto& line : run1.lines())
        if (line.rfind("accepted ", 0) == 0) last_accepted = std::max(last_accepted, std::stol(line.substr(9)));
      REQUIRE(last_accepted >= 10000);
      ft::child_process run2(helper, {"resend", "--url", b.url(), "--spool", spool.str()});
      REQUIRE(run2.wait_for_line(std::regex(R"(^recovered \d+$)"), 20s));
      REQUIRE(run2.wait_for_line(std::regex("^flushed ok$"), 30s));
      CHECK(run2.wait() == 0);
      auto ids = unique_ids(read_topic(b.port(), "spooled"));
      for (long i = 0; i <= last_accepted; ++i) {
        if (ids.count("b-" + std::to_string(i)) != 1) {
          FAIL_CHECK("accepted id b-" << i << " is missing from the log");
          break;
        }
      }
    }
  }

  TEST_CASE("consumer: ack mode - manual acks; unacknowledged events go to the next consumer of the name") {
    ft::broker_process b("[defaults]\nack_timeout = \"400ms\"\n");
    b.start();
    received got;
    received got2;
    received got3;
    runner r;
    producer p(r, fast_producer(b.url()));
    for (int i = 0; i < 20; ++i) (void)p.publish({.topic = "jobs", .data = std::to_string(i)}, {});
    REQUIRE(p.flush(10s).get().ok());

    std::string unacked_offset;
    {
      consumer c(r, fast_consumer(b.url()));
      auto sub = c.subscribe("jobs",
                             {.from = start_position::earliest(),
                              .consumer = "workers",
                              .mode = delivery_mode::ack,
                              .ack = ack_policy::manual},
                             got.handler())
                     .get();
      REQUIRE_MESSAGE(sub.ok(), sub.err().what());
      REQUIRE(got.wait(20));
      auto tokens = got.tokens();
      auto evs = got.events();
      for (int i = 0; i < 10; ++i) {
        CHECK(tokens[i].required());
        tokens[i].ack();
        CHECK_FALSE(tokens[i].required());
      }
      // Event 10 is not acked: the broker redelivers it after ack_timeout, the consumer
      // filters the repeat (never hands an offset twice).
      unacked_offset = evs[10].offset;
      REQUIRE(ft::wait_until([&] { return c.stats().filtered >= 1; }, 5s));
      CHECK(got.size() == 20);
      check_in_order_without_repeats(got.events());
      // Ack 11..19 only; 10 stays pending.
      for (int i = 11; i < 20; ++i) tokens[i].ack();
      std::this_thread::sleep_for(100ms);
      c.close();
    }
    std::this_thread::sleep_for(200ms);
    consumer c2(r, fast_consumer(b.url()));
    auto sub2 =
        c2.subscribe("jobs", {.from = start_position::earliest(), .consumer = "workers", .mode = delivery_mode::ack},
                     got2.handler())
            .get();
    REQUIRE(sub2.ok());
    REQUIRE(got2.wait(1));
    // The named position stops at the first unacknowledged event; what follows it may come
    // again (at-least-once), what precedes it does not.
    auto evs2 = got2.events();
    CHECK(evs2.front().offset == unacked_offset);
    for (auto& e : evs2) CHECK(e.offset >= unacked_offset);
    // after_handler policy acked them: a third consumer of the name gets nothing old.
    std::this_thread::sleep_for(300ms);
    size_t handled = got2.size();
    c2.close();
    std::this_thread::sleep_for(200ms);
    consumer c3(r, fast_consumer(b.url()));
    REQUIRE(c3.subscribe("jobs", {.consumer = "workers", .mode = delivery_mode::ack}, got3.handler()).get().ok());
    std::this_thread::sleep_for(700ms);
    CHECK(got3.size() == 0);
    CHECK(handled >= 1);
  }

  TEST_CASE("consumer: a named consumer resumes from its stored position in a new consumer object") {
    ft::broker_process b;
    b.start();
    received got;
    received got2;
    runner r;
    producer p(r, fast_producer(b.url()));
    for (int i = 0; i < 10; ++i) (void)p.publish({.topic = "feed", .data = std::to_string(i)}, {});
    REQUIRE(p.flush(10s).get().ok());
    auto co = fast_consumer(b.url());
    co.consumer = "reporting";
    co.auto_commit_interval = 100ms;
    {
      consumer c(r, co);
      REQUIRE(c.subscribe("feed", {.from = start_position::earliest()}, got.handler()).get().ok());
      REQUIRE(got.wait(10));
      REQUIRE(ft::wait_until([&] { return c.stats().commits >= 1; }, 5s));
    }
    std::this_thread::sleep_for(200ms);
    for (int i = 10; i < 15; ++i) (void)p.publish({.topic = "feed", .data = std::to_string(i)}, {});
    REQUIRE(p.flush(10s).get().ok());
    consumer c2(r, co);
    REQUIRE(c2.subscribe("feed", {.from = start_position::earliest()}, got2.handler()).get().ok());
    REQUIRE(got2.wait(5));
    std::this_thread::sleep_for(200ms);
    auto evs = got2.events();
    REQUIRE(evs.size() == 5);
    CHECK(evs.front().data == "10");
    CHECK(evs.back().data == "14");
  }

  TEST_CASE("consumer: the session recovers across a broker restart without repeating offsets") {
    ft::broker_process b;
    b.start();
    received got;
    std::mutex m;
    std::vector<sio::connect_info> connects;
    runner r;
    consumer c(r, fast_consumer(b.url()));
    c.on_connect([&](const sio::connect_info& i) {
      std::lock_guard l(m);
      connects.push_back(i);
    });
    REQUIRE(c.subscribe("ticks", {}, got.handler()).get().ok());
    producer p(r, fast_producer(b.url()));
    for (int i = 0; i < 10; ++i) (void)p.publish({.topic = "ticks", .data = std::to_string(i)}, {});
    REQUIRE(p.flush(10s).get().ok());
    REQUIRE(got.wait(10));

    b.kill9();
    std::this_thread::sleep_for(200ms);
    b.restart();
    for (int i = 10; i < 30; ++i) (void)p.publish({.topic = "ticks", .data = std::to_string(i)}, {});
    REQUIRE(p.flush(20s).get().ok());
    REQUIRE(got.wait(30, 15s));
    std::this_thread::sleep_for(300ms);
    auto evs = got.events();
    CHECK(evs.size() == 30);
    check_in_order_without_repeats(evs);
    for (size_t i = 0; i < evs.size(); ++i) CHECK(evs[i].data == std::to_string(i));
    std::lock_guard l(m);
    REQUIRE(connects.size() >= 2);
    CHECK(connects.back().recovered);
    CHECK(connects.back().pid == connects.front().pid);
  }

  TEST_CASE("producer: a broker that never acks (stopped) - futures fail with timeout, no hang") {
    ft::broker_process b;
    b.start();
    runner r;
    auto o = fast_producer(b.url());
    o.delivery_timeout = 700ms;
    o.ack_timeout = 300ms;
    producer p(r, o);
    REQUIRE(p.publish({.topic = "t", .data = "0"}).get().ok());  // connected
    b.pause();
    std::vector<std::future<result<publish_ack>>> fs;
    for (int i = 0; i < 10; ++i) fs.push_back(p.publish({.topic = "t", .data = std::to_string(i)}));
    for (auto& f : fs) {
      REQUIRE(f.wait_for(5s) == std::future_status::ready);
      CHECK(f.get().code() == errc::timeout);
    }
    auto flushed = p.flush(2s).get();
    CHECK(flushed.ok());  // nothing left: the failed events are resolved
    b.resume();
  }

  TEST_CASE("producer: a refused connection is a clear error, not a hang") {
    ft::collected<error> errors;
    runner r;
    auto o = fast_producer("http://127.0.0.1:" + std::to_string(ft::unused_port()));
    o.reconnect.max_attempts = 2;
    producer p(r, o);
    p.on_error(errors.sink());
    auto f = p.publish({.topic = "t", .data = "1"});
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    auto res = f.get();
    REQUIRE_FALSE(res.ok());
    CHECK(res.code() == errc::reconnect_failed);
    CHECK(res.err().message.find("refused") != std::string::npos);
    CHECK(p.publish({.topic = "t", .data = "1"}, {}).code() == errc::reconnect_failed);
    REQUIRE_FALSE(errors.all().empty());
    CHECK(errors.all().front().code == errc::connection_failed);
  }

  TEST_CASE("producer and consumer: malformed URLs and invalid options are config errors") {
    runner r;
    for (const char* url : {"", "htp://127.0.0.1:1", "http://127.0.0.1:99999", "127.0.0.1:7070", "wss://127.0.0.1:1"}) {
      CAPTURE(url);
      producer_options o;
      o.url = url;
      CHECK_THROWS_AS(producer(r, o), config_error);
      consumer_options co;
      co.url = url;
      CHECK_THROWS_AS(consumer(r, co), config_error);
    }
    producer_options bad_auth;
    bad_auth.url = "http://127.0.0.1:1";
    bad_auth.auth = "[1]";
    CHECK_THROWS_AS(producer(r, bad_auth), config_error);
    try {
      producer_options o;
      o.url = "ftp://x";
      producer p(r, o);
    } catch (const config_error& e) {
      CHECK(e.code() == errc::invalid_url);
      CHECK(std::string(e.what()).find("ftp") != std::string::npos);
    }
  }

  TEST_CASE("producer: a namespace the broker does not serve is refused with CONNECT_ERROR") {
    ft::broker_process b;
    b.start();
    runner r;
    auto o = fast_producer(b.url());
    o.nsp = "/not-served";
    producer p(r, o);
    auto res = p.publish({.topic = "t", .data = "1"}).get();
    REQUIRE_FALSE(res.ok());
    CHECK(res.code() == errc::connect_error);
    CHECK(res.err().message.find("Invalid namespace") != std::string::npos);
  }

  TEST_CASE("producer: outbox policies when the broker is unreachable") {
    runner r;
    auto o = fast_producer("http://127.0.0.1:" + std::to_string(ft::unused_port()));
    o.max_outbox_events = 5;

    SUBCASE("fail") {
      o.when_full = outbox_policy::fail;
      producer p(r, o);
      for (int i = 0; i < 5; ++i) CHECK(p.publish({.topic = "t", .data = "1"}, {}).ok());
      auto full = p.publish({.topic = "t", .data = "1"}, {});
      CHECK(full.code() == errc::outbox_full);
      CHECK(p.stats().outbox_events == 5);
    }
    SUBCASE("block with a timeout") {
      o.when_full = outbox_policy::block;
      o.block_timeout = 150ms;
      producer p(r, o);
      for (int i = 0; i < 5; ++i) CHECK(p.publish({.topic = "t", .data = "1"}, {}).ok());
      auto t0 = std::chrono::steady_clock::now();
      auto full = p.publish({.topic = "t", .data = "1"}, {});
      CHECK(full.code() == errc::outbox_full);
      CHECK(std::chrono::steady_clock::now() - t0 >= 140ms);
    }
    SUBCASE("drop_oldest") {
      o.when_full = outbox_policy::drop_oldest;
      producer p(r, o);
      std::vector<std::future<result<publish_ack>>> fs;
      for (int i = 0; i < 8; ++i) fs.push_back(p.publish({.topic = "t", .data = std::to_string(i)}));
      for (int i = 0; i < 3; ++i) {
        REQUIRE(fs[i].wait_for(5s) == std::future_status::ready);
        CHECK(fs[i].get().code() == errc::dropped);
      }
      CHECK(p.stats().dropped == 3);
      CHECK(p.stats().outbox_events == 5);
      p.close();
      for (int i = 3; i < 8; ++i) {
        REQUIRE(fs[i].wait_for(5s) == std::future_status::ready);
        CHECK(fs[i].get().code() == errc::closed);  // close fails what is pending
      }
    }
  }

  TEST_CASE("producer: destroying it with pending events does not block and fails them with closed") {
    runner r;
    auto o = fast_producer("http://127.0.0.1:" + std::to_string(ft::unused_port()));
    std::future<result<publish_ack>> f;
    auto t0 = std::chrono::steady_clock::now();
    {
      producer p(r, o);
      f = p.publish({.topic = "t", .data = "1"});
    }
    CHECK(std::chrono::steady_clock::now() - t0 < 100ms);
    REQUIRE(f.wait_for(5s) == std::future_status::ready);
    CHECK(f.get().code() == errc::closed);
  }

  TEST_CASE("runner: stop joins promptly and the destructor does not block") {
    auto t0 = std::chrono::steady_clock::now();
    {
      runner r;
      producer p(r, fast_producer("http://127.0.0.1:" + std::to_string(ft::unused_port())));
      (void)p.publish({.topic = "t", .data = "1"}, {});
      CHECK(r.stop());
      CHECK_FALSE(r.running());
    }
    CHECK(std::chrono::steady_clock::now() - t0 < 1s);
  }

}  // TEST_SUITE
