// ids.h - producer event ids: "<prefix>-<counter>". The prefix is random per producer
// instance (72 bits from std::random_device, 12 base62 characters), so ids from
// different producers - or from the same program restarted - do not collide within the
// broker's dedupe window, and one producer's ids are unique by the counter.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace ferry::client::detail {

// `n` random characters from [0-9A-Za-z].
[[nodiscard]] std::string random_prefix(size_t n = 12);

// Thread-safe: publish() calls it from any thread.
class id_generator {
 public:
  explicit id_generator(std::string prefix) : _prefix(std::move(prefix)) {}
  [[nodiscard]] std::string next();
  [[nodiscard]] const std::string& prefix() const noexcept { return _prefix; }

 private:
  std::string _prefix;
  std::atomic<uint64_t> _counter{0};
};

// A 64-bit seed from std::random_device (for jitter).
[[nodiscard]] uint64_t random_seed();

}  // namespace ferry::client::detail
