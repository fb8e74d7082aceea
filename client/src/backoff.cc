#include "client/src/backoff.h"

#include <algorithm>
#include <cmath>

namespace ferry::client::detail {

backoff::backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, double jitter, uint64_t seed)
    : _initial(std::max(initial, std::chrono::milliseconds(0))),
      _max(std::max(max, _initial)),
      _jitter(std::clamp(jitter, 0.0, 1.0)),
      _rng(seed) {}

std::chrono::milliseconds backoff::base_delay(uint32_t attempt) const noexcept {
  double ms = static_cast<double>(_initial.count()) * std::pow(2.0, std::min<uint32_t>(attempt, 62));
  return std::chrono::milliseconds(static_cast<int64_t>(std::min(ms, static_cast<double>(_max.count()))));
}

std::chrono::milliseconds backoff::next() {
  double base = static_cast<double>(base_delay(_attempts).count());
  if (_attempts < UINT32_MAX) ++_attempts;
  if (_jitter > 0) {
    double r = std::uniform_real_distribution<double>(-1.0, 1.0)(_rng);
    base += r * _jitter * base;
  }
  base = std::clamp(base, 0.0, static_cast<double>(_max.count()));
  return std::chrono::milliseconds(static_cast<int64_t>(base));
}

}  // namespace ferry::client::detail
