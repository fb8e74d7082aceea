#include "tools/ferryctl/interrupt.h"

#include <csignal>
#include <thread>

namespace ferry::ferryctl {
namespace {

std::atomic<bool> g_flag{false};

extern "C" void on_signal(int sig) {
  g_flag.store(true, std::memory_order_relaxed);
  std::signal(sig, SIG_DFL);  // a second signal ends the process
}

}  // namespace

void install_interrupt_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);  // write errors are reported through errno instead
}

const std::atomic<bool>& interrupt_flag() noexcept {
  return g_flag;
}

bool sleep_unless_interrupted(std::chrono::milliseconds d) {
  auto until = std::chrono::steady_clock::now() + d;
  while (!interrupt_requested()) {
    auto now = std::chrono::steady_clock::now();
    if (now >= until) return true;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(until - now, std::chrono::milliseconds(20)));
  }
  return false;
}

}  // namespace ferry::ferryctl
