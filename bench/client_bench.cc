// client-bench - P2: ingest through ferry-client with batching. Publishes N events of
// --payload bytes (ids assigned by the producer, as applications do) with block-on-full
// outbox back-pressure, waits until all are acknowledged, and prints
// {"scenario":"client_ingest","events":N,"events_per_s":...,"server_cpu":...,"loadgen_cpu":...}.

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <ferry/client/client.h>

#include "bench/proc_stats.h"

namespace fc = ferry::client;
using clk = std::chrono::steady_clock;


int main(int argc, char** argv) {
  CLI::App app{"client-bench: P2, ingest through ferry-client with batching"};
  std::string url = "http://127.0.0.1:7070", topic = "bench-client";
  size_t events = 1000000, payload = 100, batch = 500;
  int server_pid = 0, linger_ms = 5;
  app.add_option("--url", url)->capture_default_str();
  app.add_option("--events", events)->capture_default_str();
  app.add_option("--payload", payload)->capture_default_str();
  app.add_option("--batch", batch, "events per publish emit")->capture_default_str();
  app.add_option("--linger", linger_ms, "ms")->capture_default_str();
  app.add_option("--topic", topic)->capture_default_str();
  app.add_option("--server-pid", server_pid);
  CLI11_PARSE(app, argc, argv);

  fc::runner io;
  fc::producer_options o;
  o.url = url;
  o.max_batch_events = batch;
  o.linger = std::chrono::milliseconds(linger_ms);
  o.when_full = fc::outbox_policy::block;
  o.max_in_flight_batches = 16;
  fc::producer p(io, o);
  std::string data = "\"" + std::string(payload, 'x') + "\"";
  std::atomic<size_t> acked{0}, failed{0};
  ferry::bench::cpu_meter meter(server_pid);
  auto t0 = clk::now();
  for (size_t i = 0; i < events; ++i) {
    auto r = p.publish({.topic = topic, .event = "e", .data = data}, [&](const fc::result<fc::publish_ack>& a) {
      if (a) acked.fetch_add(1, std::memory_order_relaxed);
      else failed.fetch_add(1, std::memory_order_relaxed);
    });
    if (!r) {
      fmt::print(stderr, "publish refused: {}\n", r.err().message);
      return 1;
    }
  }
  auto flushed = p.flush(std::chrono::seconds(300)).get();
  double secs = std::chrono::duration<double>(clk::now() - t0).count();
  if (!flushed || failed.load() > 0) {
    fmt::print(stderr, "not every event was acknowledged: acked {} failed {}\n", acked.load(), failed.load());
    return 1;
  }
  fmt::print(R"({{"scenario":"client_ingest","events":{},"seconds":{:.3f},"events_per_s":{:.0f},"loadgen_cpu":{:.2f},"server_cpu":{:.2f}}})"
             "\n",
             events, secs, static_cast<double>(events) / secs, meter.self_share(), meter.server_share());
  return 0;
}
