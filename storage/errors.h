// errors.h - the storage module's error codes.
#pragma once

#include <cstdint>
#include <string_view>

#include "protocol/result.h"

namespace ferry::storage {

enum class errc : uint8_t {
  ok = 0,
  not_found,         // no such record
  io_error,          // RocksDB reported an I/O error; writes fail until it clears
  no_space,          // the disk is full; writes fail until space is freed
  corruption,        // a record failed FlatBuffers verification or RocksDB checksums
  invalid_argument,  // caller error (bad name, empty batch, ...)
  overloaded,        // the writer queue is full: retry later (backpressure)
  closed,            // the log is shutting down
  read_only,         // opened read-only (ferryctl offline)
  too_many_topics,   // namespace topic id space exhausted
  epoch_mismatch,    // a position from another data directory
};

[[nodiscard]] std::string_view to_string(errc e) noexcept;

template <class T>
using result = ferry::result<T, errc>;

}  // namespace ferry::storage
