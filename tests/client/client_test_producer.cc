// client-test-producer - a producer process for the crash tests (test_integration.cc).
//
//   client-test-producer publish --url U --topic T --spool DIR --count N --id-prefix P
//       publishes events with ids "<P>-<i>" (i = 0..N-1), printing "accepted <i>" after
//       each publish() returned, then "all-accepted"; then flushes and prints
//       "flushed ok" or "flushed <error>". The test may SIGKILL it at any point.
//   client-test-producer resend --url U --spool DIR
//       opens the spool (resending what it holds), prints "recovered <n>", flushes, and
//       prints "flushed ok" / "flushed <error>".
// Exit status 0 when the flush succeeded.
#include <cstdio>
#include <cstring>
#include <string>

#include "ferry/client/client.h"

using namespace ferry::client;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(
        stderr, "usage: client-test-producer publish|resend --url U --spool DIR [--topic T --count N --id-prefix P]\n");
    return 2;
  }
  std::string mode = argv[1], url, topic = "t", spool, prefix = "e";
  long count = 0;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--url")
      url = v;
    else if (k == "--topic")
      topic = v;
    else if (k == "--spool")
      spool = v;
    else if (k == "--count")
      count = std::stol(v);
    else if (k == "--id-prefix")
      prefix = v;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // every line reaches the test before a SIGKILL
  runner r;
  producer_options o;
  o.url = url;
  o.spool_dir = spool;
  o.reconnect.initial_delay = 50ms;
  o.reconnect.max_delay = 300ms;
  o.delivery_timeout = 0ms;  // never give up: the test restarts the broker
  o.max_outbox_events = 1000000;
  o.log = [](log_level l, std::string_view m) {
    if (l >= log_level::warn)
      std::fprintf(stderr, "client-test-producer: %.*s\n", static_cast<int>(m.size()), m.data());
  };
  producer p(r, o);
  if (mode == "publish") {
    for (long i = 0; i < count; ++i) {
      auto id = p.publish({.topic = topic,
                           .event = "e",
                           .data = "{\"i\":" + std::to_string(i) + "}",
                           .id = prefix + "-" + std::to_string(i)},
                          [](const result<publish_ack>&) {});
      if (!id) {
        std::printf("publish-failed %ld %s\n", i, id.err().what().c_str());
        std::fflush(stdout);
        return 1;
      }
      std::printf("accepted %ld\n", i);
    }
    std::printf("all-accepted\n");
    std::fflush(stdout);
  } else if (mode == "resend") {
    std::printf("recovered %llu\n", static_cast<unsigned long long>(p.stats().recovered));
    std::fflush(stdout);
  } else {
    return 2;
  }
  auto f = p.flush(30s).get();
  std::printf("flushed %s\n", f ? "ok" : f.err().what().c_str());
  std::fflush(stdout);
  return f ? 0 : 1;
}
