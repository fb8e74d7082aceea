// fault.h - fault injection for tests (STYLE habit 11: faults are injected, not hoped
// for). When options::faults is set, the log's RocksDB file system is wrapped so that
// every file write (WAL, SST, MANIFEST) fails with the configured error while it is on.
#pragma once

#include <atomic>
#include <cstdint>

namespace ferry::storage {

class fault_injector {
 public:
  enum class kind : int { none = 0, io_error = 1, no_space = 2 };

  void fail_writes(kind k) noexcept { _kind.store(static_cast<int>(k), std::memory_order_release); }
  void clear() noexcept { fail_writes(kind::none); }
  [[nodiscard]] kind current() const noexcept { return static_cast<kind>(_kind.load(std::memory_order_acquire)); }

 private:
  std::atomic<int> _kind{0};
};

}  // namespace ferry::storage
