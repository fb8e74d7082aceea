// Integration through a fault-injecting TCP proxy (fault_proxy.h): the real ferry-broker
// behind a proxy that cuts connections at random moments (mid-frame, RST or FIN), delays
// and splits every chunk, and refuses connections while the broker is down.
//
//  * the proxy on its own: bytes forwarded in order through delays and random pieces,
//    half-close passed on, a target that is down refused and served again when it is
//    back on the same port, random cuts and cut_all;
//  * 100 000 events published through it with distinct ids while the broker is SIGKILLed
//    and restarted once on the same port and data directory: every publish is
//    acknowledged, the log holds exactly those 100 000 ids once each, each at the offset
//    its ack reported; a named ack-mode consumer reading through the same proxy from
//    earliest receives exactly the log, in log order, no offset twice, no gap.
//
// Environment: FERRY_BROKER (meson sets it); FERRY_PROXY_SEED optionally overrides the
// proxy's seed (printed with the results).
#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/socket.h>
#include <sys/time.h>

#include <nlohmann/json.hpp>

#include "fault_proxy.h"
#include "ferry/client/client.h"
#include "support.h"

using namespace ferry::client;
using namespace std::chrono_literals;
namespace ft = ferry::test;
using json = nlohmann::json;
using tcp = asio::ip::tcp;
using test_clock = std::chrono::steady_clock;

namespace {

uint64_t proxy_seed(uint64_t fallback) {
  auto s = ft::env("FERRY_PROXY_SEED");
  return s.empty() ? fallback : std::stoull(s);
}

double seconds_since(test_clock::time_point t0) {
  return std::chrono::duration<double>(test_clock::now() - t0).count();
}

struct logged_event {
  std::string offset, id;
};

// Every event of a topic through the HTTP API (directly on the broker's port, not
// through the proxy), paging with `next`.
std::vector<logged_event> read_topic(uint16_t port, const std::string& topic) {
  std::vector<logged_event> out;
  std::string from = "earliest";
  for (int page = 0; page < 10000; ++page) {
    int status = 0;
    std::string target = "/v1/topics/";
    target.append(topic).append("/events?from=").append(from).append("&limit=10000");
    auto body = ft::http_get(port, target, &status);
    REQUIRE_MESSAGE(status == 200, "GET events: HTTP " << status << " " << body.substr(0, 300));
    auto j = json::parse(body);
    REQUIRE(j.value("ok", false));
    if (j["events"].empty()) break;
    for (auto& e : j["events"]) out.push_back({e["offset"].get<std::string>(), e["id"].get<std::string>()});
    from = j["next"].get<std::string>();
  }
  return out;
}

// The last warn/error lines of the client objects, for failure messages.
class log_tail {
 public:
  log_sink sink(std::string tag) {
    return [this, tag = std::move(tag)](log_level level, std::string_view msg) {
      std::lock_guard l(_m);
      ++_counts[static_cast<size_t>(level)];
      if (level < log_level::warn) return;
      _lines.push_back(tag + " " + std::string(to_string(level)) + ": " + std::string(msg));
      if (_lines.size() > 40) _lines.pop_front();
    };
  }
  std::string dump() {
    std::lock_guard l(_m);
    std::string out = "client log: warn=" + std::to_string(_counts[2]) + " error=" + std::to_string(_counts[3]);
    for (auto& line : _lines) out += "\n  " + line;
    return out;
  }

 private:
  std::mutex _m;
  std::deque<std::string> _lines;
  uint64_t _counts[4] = {0, 0, 0, 0};
};

// ---- blocking helpers for the proxy's own test case

// Blocking reads on `s` fail with EAGAIN after `timeout` instead of hanging the test.
void set_read_timeout(tcp::socket& s, std::chrono::milliseconds timeout) {
  ::timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

// Reads until `n` bytes or EOF/error (at most 10 s without data); returns what was read.
std::string read_n(tcp::socket& s, size_t n) {
  set_read_timeout(s, 10s);
  std::string out;
  char buf[8192];
  asio::error_code ec;
  while (out.size() < n) {
    size_t got = s.read_some(asio::buffer(buf, std::min(sizeof buf, n - out.size())), ec);
    out.append(buf, got);
    if (ec) break;
  }
  return out;
}

// The error that ends reading `s` (eof, connection_reset, ...), within `timeout`.
asio::error_code read_until_closed(tcp::socket& s, std::chrono::milliseconds timeout) {
  set_read_timeout(s, timeout);
  char buf[4096];
  asio::error_code ec;
  while (!ec) s.read_some(asio::buffer(buf), ec);
  return ec;
}

std::string pattern(size_t n, uint32_t salt) {
  std::string s(n, '\0');
  uint32_t x = salt * 2654435761u + 1;
  for (auto& c : s) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

}  // namespace

TEST_SUITE("integration") {
  TEST_CASE("fault proxy: forwards in order through delays and random pieces, refuses while the target is down, cuts") {
    asio::io_context io;  // blocking sockets only; never run
    tcp::acceptor target(io, {asio::ip::make_address("127.0.0.1"), 0});
    uint16_t target_port = target.local_endpoint().port();
    ft::fault_proxy_options o;
    o.target_port = target_port;
    o.seed = proxy_seed(7);
    o.cut_enabled = false;
    o.delay_max = 2000us;
    o.max_chunk_bytes = 7;  // many tiny pieces, each with its own delay
    o.bytes_per_second = 8u << 20;
    ft::fault_proxy proxy(o);
    tcp::endpoint proxy_ep(asio::ip::make_address("127.0.0.1"), proxy.port());

    // Both directions at once, 100 KiB each, then half-closes in both directions.
    const std::string up = pattern(100 << 10, 1), down = pattern(100 << 10, 2);
    {
      tcp::socket client(io);
      client.connect(proxy_ep);
      tcp::socket server = target.accept();
      std::string server_got;
      std::thread server_side([&] {
        asio::write(server, asio::buffer(down));
        server_got = read_n(server, up.size() + 1);  // +1: reads on to the EOF
        server.shutdown(tcp::socket::shutdown_send);
      });
      asio::write(client, asio::buffer(up));
      client.shutdown(tcp::socket::shutdown_send);
      std::string client_got = read_n(client, down.size() + 1);
      server_side.join();
      CHECK(server_got == up);  // in order, nothing lost, and the client's EOF arrived
      CHECK(client_got == down);
    }
    REQUIRE(ft::wait_until([&] { return proxy.stats().live == 0; }, 5s));
    auto s = proxy.stats();
    CHECK(s.accepted == 1);
    CHECK(s.forwarded == 1);
    CHECK(s.bytes_to_target == up.size());
    CHECK(s.bytes_to_client == down.size());

    // The target goes down: a client connection is accepted and reset at once.
    target.close();
    {
      tcp::socket client(io);
      client.connect(proxy_ep);
      auto ec = read_until_closed(client, 3000ms);
      CHECK_MESSAGE((ec == asio::error::connection_reset || ec == asio::error::eof), ec.message());
    }
    CHECK(proxy.stats().refused == 1);

    // It comes back on the same port: forwarded again.
    tcp::acceptor target2(io);
    target2.open(tcp::v4());
    target2.set_option(tcp::acceptor::reuse_address(true));
    target2.bind({asio::ip::make_address("127.0.0.1"), target_port});
    target2.listen();
    tcp::socket client(io);
    client.connect(proxy_ep);
    tcp::socket server = target2.accept();
    asio::write(client, asio::buffer(std::string("ping")));
    CHECK(read_n(server, 4) == "ping");
    CHECK(proxy.stats().forwarded == 2);

    // cut_all closes it at once (both sides).
    proxy.cut_all();
    auto ec_client = read_until_closed(client, 3000ms);
    auto ec_server = read_until_closed(server, 3000ms);
    CHECK_MESSAGE(ec_client == asio::error::eof, ec_client.message());
    CHECK_MESSAGE(ec_server == asio::error::eof, ec_server.message());
    CHECK(proxy.stats().cuts == 1);

    // Random cuts: a connection streaming data is cut within a few ticks, mid-stream.
    ft::fault_proxy_options oc;
    oc.target_port = target_port;
    oc.seed = proxy_seed(11);
    oc.cut_interval_min = 10ms;
    oc.cut_interval_max = 20ms;
    oc.cut_probability = 1.0;
    oc.cut_after_bytes_max = 1000;
    ft::fault_proxy cutter(oc);
    tcp::socket c2(io);
    c2.connect({asio::ip::make_address("127.0.0.1"), cutter.port()});
    tcp::socket s2 = target2.accept();
    std::atomic<bool> writing{true};
    std::thread streamer([&] {
      asio::error_code ec;
      std::string chunk = pattern(512, 3);
      while (writing && !ec) {
        asio::write(s2, asio::buffer(chunk), ec);
        std::this_thread::sleep_for(1ms);
      }
    });
    auto ec = read_until_closed(c2, 5000ms);
    writing = false;
    streamer.join();
    CHECK_MESSAGE((ec == asio::error::eof || ec == asio::error::connection_reset), ec.message());
    REQUIRE(ft::wait_until([&] { return cutter.stats().live == 0; }, 5s));
    CHECK(cutter.stats().cuts == 1);
    cutter.stop();
    proxy.stop();
    proxy.stop();  // idempotent
  }

  TEST_CASE(
      "through a cutting, delaying proxy with one broker SIGKILL: 100k published ids are in the log exactly once, "
      "and a named ack-mode consumer receives the log in order") {
    constexpr int n = 100000;
    constexpr int kill_after_acked = 40000;  // SIGKILL when 40 % are acknowledged
    constexpr int publish_rate = 4000;       // events/s offered by the application thread (25 s of faults)
    const std::string topic = "proxied";
    const uint64_t seed = proxy_seed(20240601);
    auto id_of = [](int i) { return "px-" + std::to_string(i); };

    ft::broker_process b;
    b.start(ft::unused_port());  // a fixed port: restart() binds the same one, the proxy keeps its target
    ft::fault_proxy_options po;
    po.target_port = b.port();
    po.seed = seed;
    po.cut_interval_min = 50ms;
    po.cut_interval_max = 500ms;
    po.cut_probability = 0.5;
    po.cut_after_bytes_max = 4096;
    po.delay_min = 0us;
    po.delay_max = 5000us;
    po.max_chunk_bytes = 4096;  // frames split across TCP segments at random points
    ft::fault_proxy proxy(po);

    // Declared before the runner: callbacks may still run until the runner stops.
    log_tail logs;
    std::mutex m;
    std::vector<std::string> ack_offset(n);  // offset from the ack (a duplicate reports the original)
    std::vector<uint8_t> acks_per_id(n, 0);
    std::atomic<int> acked{0}, failed{0}, duplicate_acks{0}, immediate_errors{0}, second_callbacks{0};
    std::string first_failure;
    struct delivery {
      std::string offset, id;
    };
    std::vector<delivery> delivered;
    delivered.reserve(n);
    std::condition_variable delivered_cv;
    std::atomic<uint64_t> gaps{0};

    runner r;
    consumer_options co;
    co.url = proxy.url();
    co.consumer = "proxy-reader";
    co.connect_timeout = 3s;
    co.reconnect.initial_delay = 50ms;
    co.reconnect.max_delay = 500ms;
    co.request_timeout = 10s;
    co.log = logs.sink("consumer");
    consumer c(r, co);
    c.on_gap([&](const gap_info&) { ++gaps; });
    // Ack mode, ack after the handler returns: the broker advances the named consumer's
    // durable position only past acknowledged events and redelivers the rest after a cut
    // or a crash, so nothing handed out can be lost; the client's high-water filter drops
    // the redeliveries, so the application sees each offset once, in order.
    auto sub = c.subscribe(
        topic, {.from = start_position::earliest(), .mode = delivery_mode::ack, .ack = ack_policy::after_handler},
        [&](const event& e, const ack_token&) {
          std::lock_guard l(m);
          delivered.push_back({e.offset, e.id});
          delivered_cv.notify_all();
        });
    REQUIRE(sub.wait_for(30s) == std::future_status::ready);
    auto sub_result = sub.get();
    REQUIRE_MESSAGE(sub_result.ok(), sub_result.err().what() << "\n" << logs.dump());

    producer_options opts;
    opts.url = proxy.url();
    opts.connect_timeout = 3s;
    opts.reconnect.initial_delay = 50ms;
    opts.reconnect.max_delay = 500ms;
    opts.ack_timeout = 5s;
    opts.delivery_timeout = 0ms;  // retry forever; this test bounds the wait itself
    opts.linger = 2ms;
    opts.when_full = outbox_policy::block;
    opts.block_timeout = 60s;
    opts.log = logs.sink("producer");
    producer p(r, opts);

    const auto t0 = test_clock::now();
    std::thread publisher([&] {
      for (int i = 0; i < n; ++i) {
        if (i % 100 == 0)
          std::this_thread::sleep_until(t0 + std::chrono::microseconds(int64_t{i} * 1000000 / publish_rate));
        auto id =
            p.publish({.topic = topic, .event = "px", .data = "{\"i\":" + std::to_string(i) + "}", .id = id_of(i)},
                      [&, i](const result<publish_ack>& res) {
                        std::lock_guard l(m);
                        if (!res) {
                          if (failed++ == 0) first_failure = id_of(i) + ": " + res.err().what();
                          return;
                        }
                        if (res->duplicate) ++duplicate_acks;
                        if (acks_per_id[i]++ == 0) {
                          ack_offset[i] = res->offset;
                          ++acked;
                        } else {
                          ++second_callbacks;  // the contract is one callback per accepted event
                        }
                      });
        if (!id) {
          std::lock_guard l(m);
          if (immediate_errors++ == 0) first_failure = id_of(i) + " refused at once: " + id.err().what();
        }
      }
    });
    auto stop_publisher = [&] {
      if (publisher.joinable()) publisher.join();
    };
    struct joiner {
      std::function<void()> f;
      ~joiner() { f(); }
    } join_on_exit{stop_publisher};  // a failed REQUIRE or a throwing restart() must not leave it joinable

    // Deterministic faults on top of the random cuts: every connection is cut at 20 % and
    // at 70 % acknowledged; at 40 % the broker is SIGKILLed, the proxy refuses connections
    // while it is down, and it is restarted on the same data directory and port.
    const auto ack_deadline = t0 + 120s;
    auto wait_acked = [&](int target) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(ack_deadline - test_clock::now());
      bool ok = ft::wait_until([&] { return acked.load() >= target || failed.load() > 0; }, std::max(left, 1ms));
      if (ok && failed.load() == 0) return;
      stop_publisher();
      FAIL("waiting for " << target << " acks: " << acked.load() << " acked after " << seconds_since(t0)
                          << " s (failed " << failed.load() << ": " << first_failure << ")\n"
                          << logs.dump() << "\nproxy: " << ft::to_string(proxy.stats()));
    };
    wait_acked(n / 5);
    proxy.cut_all();
    wait_acked(kill_after_acked);
    b.kill9();
    const double killed_at = seconds_since(t0);
    const int acked_at_kill = acked.load();
    const auto refused_before = proxy.stats().refused;
    std::this_thread::sleep_for(1s);
    b.restart();
    const double restarted_at = seconds_since(t0);
    const auto refused_while_down = proxy.stats().refused - refused_before;
    wait_acked(n * 7 / 10);
    proxy.cut_all();

    stop_publisher();
    const double all_published_at = seconds_since(t0);
    auto ack_budget = std::chrono::duration_cast<std::chrono::milliseconds>(ack_deadline - test_clock::now());
    bool all_acked = ft::wait_until([&] { return acked.load() + failed.load() >= n; }, std::max(ack_budget, 1ms));
    const double all_acked_at = seconds_since(t0);
    auto ps = p.stats();
    std::ostringstream producer_report;
    producer_report << "producer: acked=" << acked.load() << "/" << n << " failed=" << failed.load()
                    << " immediate_errors=" << immediate_errors.load() << " duplicate_acks=" << duplicate_acks.load()
                    << " stats{acked=" << ps.acked << " duplicates=" << ps.duplicates << " resent=" << ps.resent
                    << " batches=" << ps.batches << " reconnects=" << ps.reconnects << " outbox=" << ps.outbox_events
                    << "}";
    REQUIRE_MESSAGE(all_acked, "not every publish was acknowledged within 120 s\n"
                                   << producer_report.str() << "\nproxy: " << ft::to_string(proxy.stats()) << "\n"
                                   << logs.dump());
    CHECK_MESSAGE(failed.load() == 0, "first failure: " << first_failure);
    CHECK_MESSAGE(immediate_errors.load() == 0, first_failure);
    CHECK(second_callbacks.load() == 0);
    // Each of the three injected faults (cut_all, crash, cut_all) forces a reconnect: it
    // cuts the connection, or one was already being re-established after a random cut.
    CHECK(ps.reconnects >= 3);

    // The log, read directly from the broker: exactly the published ids, once each, each
    // at the offset its acknowledgement reported.
    auto log = read_topic(b.port(), topic);
    CHECK_MESSAGE(log.size() == static_cast<size_t>(n), "the log holds " << log.size() << " events");
    std::map<std::string, int> copies;
    for (const auto& e : log) ++copies[e.id];
    size_t repeated = 0;
    std::string repeated_example;
    for (const auto& [id, k] : copies)
      if (k != 1 && repeated++ == 0) repeated_example = id + " x" + std::to_string(k);
    CHECK_MESSAGE(copies.size() == static_cast<size_t>(n), copies.size() << " distinct ids in the log");
    CHECK_MESSAGE(repeated == 0, repeated << " ids are in the log more than once, e.g. " << repeated_example);
    std::set<std::string> published;
    for (int i = 0; i < n; ++i) published.insert(id_of(i));
    std::set<std::string> logged;
    for (const auto& [id, k] : copies) logged.insert(id);
    CHECK_MESSAGE(logged == published, "the log's id set differs from the published ids");
    size_t offset_mismatches = 0;
    {
      std::lock_guard l(m);
      for (const auto& e : log) {
        if (e.id.rfind("px-", 0) != 0) continue;
        int i = std::stoi(e.id.substr(3));
        if (i < 0 || i >= n || ack_offset[i] != e.offset) {
          if (offset_mismatches++ == 0) {
            FAIL_CHECK(e.id << " is at " << e.offset << " in the log but was acked with offset '"
                            << (i >= 0 && i < n ? ack_offset[i] : std::string("?")) << "'");
          }
        }
      }
    }
    CHECK(offset_mismatches == 0);

    // The consumer (its own connection through the same proxy) gets exactly the log, in
    // log order: the n-th delivery is the n-th event of the log.
    {
      std::unique_lock l(m);
      delivered_cv.wait_for(l, 30s, [&] { return delivered.size() >= log.size(); });
    }
    const double consumed_at = seconds_since(t0);
    std::this_thread::sleep_for(300ms);  // nothing more may come
    proxy.set_cutting(false);
    auto cs = c.stats();
    std::vector<delivery> got;
    {
      std::lock_guard l(m);
      got = delivered;
    }
    CHECK_MESSAGE(got.size() == log.size(), "the consumer got " << got.size() << " events, the log holds " << log.size()
                                                                << "\n"
                                                                << logs.dump());
    size_t order_errors = 0;
    for (size_t i = 1; i < got.size(); ++i) {
      if (!(got[i - 1].offset < got[i].offset) && order_errors++ == 0)
        FAIL_CHECK("delivery " << i << " (" << got[i].offset << ") is not after " << got[i - 1].offset);
    }
    CHECK(order_errors == 0);
    size_t gap_errors = 0;
    for (size_t i = 0; i < std::min(got.size(), log.size()); ++i) {
      if ((got[i].offset != log[i].offset || got[i].id != log[i].id) && gap_errors++ == 0) {
        FAIL_CHECK("delivery " << i << " is " << got[i].offset << " " << got[i].id << ", the log has " << log[i].offset
                               << " " << log[i].id);
      }
    }
    CHECK(gap_errors == 0);
    std::set<std::string> consumed_ids;
    for (const auto& d : got) consumed_ids.insert(d.id);
    CHECK(consumed_ids == published);
    CHECK(gaps.load() == 0);
    CHECK(cs.reconnects >= 3);

    auto xs = proxy.stats();
    CHECK(xs.cuts >= 2);
    CHECK_MESSAGE(refused_while_down >= 1, "no connection attempt reached the proxy while the broker was down");
    MESSAGE("seed=" << seed << " | killed at " << killed_at << " s with " << acked_at_kill << " acked, restarted at "
                    << restarted_at << " s, " << refused_while_down << " connections refused while down"
                    << " | all published at " << all_published_at << " s, all acked at " << all_acked_at
                    << " s, consumer complete at " << consumed_at << " s\n"
                    << producer_report.str() << "\nconsumer: delivered=" << cs.delivered << " filtered=" << cs.filtered
                    << " acked=" << cs.acked << " reconnects=" << cs.reconnects << " recovered=" << cs.recovered
                    << " gaps=" << cs.gaps << "\nproxy: " << ft::to_string(xs) << "\n"
                    << logs.dump());
    c.close();
    p.close();
  }
}  // TEST_SUITE
