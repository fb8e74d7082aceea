// telemetry_producer - publishes sampled sensor readings to a Ferry broker and prints
// how many were acknowledged each second.
//
//   telemetry_producer --url http://127.0.0.1:7070 --topic telemetry --rate 1000 --duration 10
//                      [--spool /var/lib/telemetry/spool] [--sensors 8]
//
// It shows the embedding pattern: a runner (one io thread) for the library, a producer
// with a spool so a crash loses nothing, publish() from the application's own thread at
// a fixed rate, callbacks that only count, and flush() before exit. Exit status: 0 when
// every reading was acknowledged, 1 otherwise, 2 on bad flags.
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>

#include "ferry/client/client.h"

namespace {

struct flags {
  std::string url = "http://127.0.0.1:7070";
  std::string topic = "telemetry";
  double rate = 100;     // readings per second
  double duration = 10;  // seconds
  std::string spool;     // "" = memory only
  int sensors = 4;
};

void usage() {
  std::fprintf(stderr,
               "usage: telemetry_producer [--url URL] [--topic T] [--rate N] [--duration S] [--spool DIR] "
               "[--sensors N]\n");
}

bool parse(int argc, char** argv, flags& f) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", name);
        return nullptr;
      }
      return argv[++i];
    };
    const char* v = nullptr;
    if (a == "--url" && (v = value("--url")))
      f.url = v;
    else if (a == "--topic" && (v = value("--topic")))
      f.topic = v;
    else if (a == "--rate" && (v = value("--rate")))
      f.rate = std::atof(v);
    else if (a == "--duration" && (v = value("--duration")))
      f.duration = std::atof(v);
    else if (a == "--spool" && (v = value("--spool")))
      f.spool = v;
    else if (a == "--sensors" && (v = value("--sensors")))
      f.sensors = std::atoi(v);
    else if (a == "-h" || a == "--help")
      return false;
    else {
      if (!v) std::fprintf(stderr, "unknown or incomplete flag: %s\n", a.c_str());
      return false;
    }
  }
  if (f.rate <= 0 || f.duration <= 0 || f.sensors <= 0) {
    std::fprintf(stderr, "--rate, --duration and --sensors must be positive\n");
    return false;
  }
  return true;
}

// One reading as JSON: {"sensor":"s-3","celsius":21.37,"sample":1234}
std::string reading(int sensor, uint64_t sample, std::mt19937& rng) {
  std::normal_distribution<double> noise(0.0, 0.2);
  double celsius = 20.0 + 3.0 * std::sin(static_cast<double>(sample) / 500.0 + sensor) + noise(rng);
  char buf[128];
  std::snprintf(buf, sizeof buf, R"({"sensor":"s-%d","celsius":%.2f,"sample":%llu})", sensor, celsius,
                static_cast<unsigned long long>(sample));
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  flags f;
  if (!parse(argc, argv, f)) {
    usage();
    return 2;
  }

  namespace fc = ferry::client;
  fc::runner io;  // the library's one thread

  fc::producer_options opts;
  opts.url = f.url;
  opts.spool_dir = f.spool;
  opts.when_full = fc::outbox_policy::block;  // back-pressure the sampling loop instead of failing
  opts.log = [](fc::log_level level, std::string_view msg) {
    std::fprintf(stderr, "[%.*s] %.*s\n", static_cast<int>(fc::to_string(level).size()), fc::to_string(level).data(),
                 static_cast<int>(msg.size()), msg.data());
  };

  std::optional<fc::producer> producer;
  try {
    producer.emplace(io, opts);
  } catch (const fc::config_error& e) {
    std::fprintf(stderr, "telemetry_producer: %s\n", e.what());
    return 2;
  }
  if (producer->stats().recovered > 0)
    std::printf("resending %llu readings left in the spool by an earlier run\n",
                static_cast<unsigned long long>(producer->stats().recovered));

  std::atomic<uint64_t> acked{0}, failed{0};
  auto on_ack = [&](const fc::result<fc::publish_ack>& r) {
    if (r) {
      acked.fetch_add(1, std::memory_order_relaxed);
    } else {
      failed.fetch_add(1, std::memory_order_relaxed);
    }
  };

  std::mt19937 rng(std::random_device{}());
  const auto period = std::chrono::duration<double>(1.0 / f.rate);
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::duration<double>(f.duration);
  auto next_report = start + std::chrono::seconds(1);
  uint64_t published = 0, rejected = 0, last_acked = 0;
  int second = 0;

  for (uint64_t sample = 0;; ++sample) {
    auto due =
        start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(period * static_cast<double>(sample));
    if (due >= end) break;
    std::this_thread::sleep_until(due);
    int sensor = static_cast<int>(sample % static_cast<uint64_t>(f.sensors));
    auto id = producer->publish({.topic = f.topic, .event = "reading", .data = reading(sensor, sample, rng)}, on_ack);
    if (id) {
      ++published;
    } else {
      ++rejected;
      if (rejected <= 5) std::fprintf(stderr, "publish: %s\n", id.err().what().c_str());
    }
    auto now = std::chrono::steady_clock::now();
    if (now >= next_report) {
      uint64_t a = acked.load();
      auto s = producer->stats();
      std::printf("t=%2ds published=%llu acked=%llu acked/s=%llu outbox=%zu connected=%s\n", ++second,
                  static_cast<unsigned long long>(published), static_cast<unsigned long long>(a),
                  static_cast<unsigned long long>(a - last_acked), s.outbox_events, s.connected ? "yes" : "no");
      std::fflush(stdout);
      last_acked = a;
      next_report += std::chrono::seconds(1);
    }
  }

  // Wait for the acknowledgements still outstanding (bounded), then stop.
  auto flushed = producer->flush(std::chrono::seconds(30)).get();
  auto s = producer->stats();
  std::printf("done: published=%llu acked=%llu failed=%llu rejected=%llu duplicates=%llu resent=%llu batches=%llu%s\n",
              static_cast<unsigned long long>(published), static_cast<unsigned long long>(acked.load()),
              static_cast<unsigned long long>(failed.load()), static_cast<unsigned long long>(rejected),
              static_cast<unsigned long long>(s.duplicates), static_cast<unsigned long long>(s.resent),
              static_cast<unsigned long long>(s.batches), flushed ? "" : " (flush timed out)");
  producer.reset();  // closes without blocking; the runner's destructor joins its thread
  return flushed && failed.load() == 0 && rejected == 0 ? 0 : 1;
}
