// backoff.h - reconnection delays: exponential with a cap and jitter, as the JS client's
// Backoff (manager.ts / backo2): attempt n waits min(initial * 2^n, max) randomised by
// +-jitter, clamped to [0, max].
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace ferry::client::detail {

class backoff {
 public:
  backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, double jitter, uint64_t seed);

  // The delay before the next attempt; counts the attempt.
  [[nodiscard]] std::chrono::milliseconds next();
  // After a successful connection.
  void reset() noexcept { _attempts = 0; }
  [[nodiscard]] uint32_t attempts() const noexcept { return _attempts; }

  // The un-jittered delay of attempt n, for tests and documentation.
  [[nodiscard]] std::chrono::milliseconds base_delay(uint32_t attempt) const noexcept;

 private:
  std::chrono::milliseconds _initial;
  std::chrono::milliseconds _max;
  double _jitter;
  uint32_t _attempts = 0;
  std::mt19937_64 _rng;
};

}  // namespace ferry::client::detail
