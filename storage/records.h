// records.h - C++ views of the FlatBuffers records in protocol/schemas/ferry.fbs, and
// their (de)serialisation. Every decode verifies the buffer first.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/ferry_generated.h"
#include "storage/errors.h"

namespace ferry::storage {

enum class delivery_mode : uint8_t { automatic = 0, ack = 1 };

struct subscription_record {
  std::string topic;
  std::string consumer;        // "" = the session's own position
  delivery_mode mode = delivery_mode::automatic;
  uint64_t from_seq = 0;       // starts after this namespace seq
  uint64_t history_end = 0;    // session cursor when subscribed
  uint64_t position = 0;       // last committed (ack) / sent (auto)
};

struct session_record {
  std::string pid;
  std::string sid;
  std::string nsp;
  std::string consumer;
  std::vector<subscription_record> subscriptions;
  uint64_t cursor = 0;
  uint64_t base = 0;
  std::string phase_topic;
  uint64_t phase_marker = 0;
  int64_t expires_ms = 0;
  bool offsets_enabled = true;
};

[[nodiscard]] std::string encode(const session_record& s);
[[nodiscard]] result<session_record> decode_session(std::string_view bytes);

// Verified accessors for records read from disk; nullptr when verification fails.
// `bytes` must be 8-byte aligned (std::string storage is; copy RocksDB slices first).
[[nodiscard]] const schema::Event* verified_event(std::string_view bytes) noexcept;
// A chunk whose every event has a seq, in increasing order; nullptr otherwise.
[[nodiscard]] const schema::Chunk* verified_chunk(std::string_view bytes) noexcept;
[[nodiscard]] const schema::TopicMeta* verified_topic_meta(std::string_view bytes) noexcept;
[[nodiscard]] const schema::Dedupe* verified_dedupe(std::string_view bytes) noexcept;
[[nodiscard]] const schema::Position* verified_position(std::string_view bytes) noexcept;
[[nodiscard]] const schema::Checkpoint* verified_checkpoint(std::string_view bytes) noexcept;
[[nodiscard]] const schema::Session* verified_session(std::string_view bytes) noexcept;

}  // namespace ferry::storage
