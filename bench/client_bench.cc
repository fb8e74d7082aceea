// client-bench - P2: ingest through ferry-client with batching. Publishes N events of
// --payload bytes (ids assigned by the producer, as applications do) with block-on-full
// outbox back-pressure, waits until all are acknowledged, and prints
// {"scenario":"client_ingest","events":N,"events_per_s":...,"server_cpu":...,"loadgen_cpu":...}.
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <ferry/client/client.h>

namespace fc = ferry::client;
using clk = std::chrono::steady_clock;

namespace {
double cpu_self() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}
double cpu_of(int pid) {
  if (pid <= 0) return 0;
  std::ifstream f(fmt::format("/proc/{}/stat", pid));
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto rp = s.rfind(')');
  if (rp == std::string::npos) return 0;
  size_t field = 0, i = rp + 2;
  double ut = 0, st = 0;
  while (i < s.size() && field < 13) {
    size_t j = s.find(' ', i);
    if (field == 11) ut = std::stod(s.substr(i, j - i));
    if (field == 12) st = std::stod(s.substr(i, j - i));
    ++field;
    i = j + 1;
  }
  return (ut + st) / static_cast<double>(sysconf(_SC_CLK_TCK));
}
}  // namespace

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
  double self0 = cpu_self(), srv0 = cpu_of(server_pid);
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
             events, secs, static_cast<double>(events) / secs, (cpu_self() - self0) / secs,
             server_pid > 0 ? (cpu_of(server_pid) - srv0) / secs : -1.0);
  return 0;
}
