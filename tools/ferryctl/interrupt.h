// interrupt.h - SIGINT/SIGTERM handling for ferryctl.
//
// The first SIGINT or SIGTERM raises a flag that every wait in ferryctl checks (HTTP
// requests, follow-mode polling), so the command stops at the next event boundary,
// flushes its output and exits normally (0 in follow mode, 130 otherwise). A second
// signal kills the process the default way.
#pragma once

#include <atomic>
#include <chrono>

namespace ferry::ferryctl {

// Thrown when the flag is seen in the middle of an operation.
struct interrupted {};

void install_interrupt_handlers();
[[nodiscard]] const std::atomic<bool>& interrupt_flag() noexcept;
[[nodiscard]] inline bool interrupt_requested() noexcept {
  return interrupt_flag().load(std::memory_order_relaxed);
}
// Sleeps up to `d`; returns false early if interrupted.
bool sleep_unless_interrupted(std::chrono::milliseconds d);

}  // namespace ferry::ferryctl
