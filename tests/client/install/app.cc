// A program that only sees the installed ferry-client: publishes N events to a broker
// and reads them back with a consumer; prints "ok <n>" on success.
#include <ferry/client/client.h>

#include <cstdio>
#include <future>
#include <string>

int main(int argc, char** argv) {
  namespace fc = ferry::client;
  if (argc < 2) {
    std::printf("ferry-client %s (headers %s)\n", fc::version(), FERRY_CLIENT_VERSION);
    return 0;
  }
  std::string url = argv[1];
  fc::runner io;
  fc::producer p(io, {.url = url});
  const std::string topic = "installed-" + p.id_prefix();  // a fresh topic per run
  for (int i = 0; i < 100; ++i) (void)p.publish({.topic = topic, .data = std::to_string(i)}, {});
  auto last = p.publish({.topic = topic, .data = "100"}).get();
  if (!last) {
    std::printf("publish failed: %s\n", last.err().what().c_str());
    return 1;
  }
  std::promise<void> got_all;
  int n = 0;
  fc::consumer c(io, {.url = url});
  auto sub =
      c.subscribe(topic, {.from = fc::start_position::earliest()}, [&](const fc::event& e, const fc::ack_token&) {
         if (++n == 101) got_all.set_value();
       }).get();
  if (!sub) {
    std::printf("subscribe failed: %s\n", sub.err().what().c_str());
    return 1;
  }
  if (got_all.get_future().wait_for(std::chrono::seconds(10)) != std::future_status::ready) return 1;
  c.close();
  std::printf("ok %d (last offset %s)\n", n, last->offset.c_str());
  return 0;
}
