// offset.h - event positions as clients see them.
//
// An offset names one event in one namespace's log: the log's epoch (a random number
// chosen when the data directory was created) and the namespace sequence number. The
// string form is opaque to clients, but it is fixed width lowercase hex,
// "<epoch:8>-<seq:16>", so offsets of one epoch compare correctly as strings.
// A position from another epoch (a wiped or foreign data directory) is never trusted.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/errors.h"

namespace ferry::protocol {

struct offset {
  uint32_t epoch = 0;
  uint64_t seq = 0;  // 1-based; seq 0 means "before the first event"

  auto operator<=>(const offset&) const = default;
};

inline constexpr size_t offset_string_size = 8 + 1 + 16;

void append_offset(std::string& out, offset o);
[[nodiscard]] std::string format_offset(offset o);
[[nodiscard]] result<offset> parse_offset(std::string_view text) noexcept;

// Session and socket ids in the reference server's format (base64id): 15 random bytes
// as 20 characters of URL-safe base64.
[[nodiscard]] std::string encode_id(const unsigned char (&random15)[15]);

}  // namespace ferry::protocol
