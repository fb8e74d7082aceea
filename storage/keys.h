// keys.h - every RocksDB key Ferry writes, encoded in one place.
//
// Integers are big-endian so that byte order equals numeric order.
//
//   events       ns:u32 | topic:u32 | seq:u64                      -> schema::Event
//   checkpoints  ns:u32 | ts_ms:u64                                -> schema::Checkpoint
//   sessions     pid bytes                                         -> schema::Session
//   positions    ns:u32 | len:u16 | consumer bytes | topic:u32     -> schema::Position
//   dedupe       ns:u32 | producer id bytes                        -> schema::Dedupe
//   meta         "epoch"                                           -> u32
//                "n" | name bytes                                  -> ns:u32 (namespace ids)
//                "t" | ns:u32 | topic:u32                          -> schema::TopicMeta
//                "h" | ns:u32                                      -> head seq:u64 (last seq appended)
//                "b" | ns:u32                                      -> bytes appended:u64
//                "l" | ns:u32                                      -> low water seq:u64 (retention cut)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ferry::storage::keys {

void put_u16(std::string& out, uint16_t v);
void put_u32(std::string& out, uint32_t v);
void put_u64(std::string& out, uint64_t v);
[[nodiscard]] uint32_t get_u32(std::string_view in, size_t at) noexcept;
[[nodiscard]] uint64_t get_u64(std::string_view in, size_t at) noexcept;

[[nodiscard]] std::string event(uint32_t ns, uint32_t topic, uint64_t seq);
[[nodiscard]] std::string topic_prefix(uint32_t ns, uint32_t topic);  // ns|topic
[[nodiscard]] uint64_t event_seq(std::string_view key) noexcept;
[[nodiscard]] std::string checkpoint(uint32_t ns, uint64_t ts_ms);
[[nodiscard]] std::string namespace_prefix(uint32_t ns);  // ns
[[nodiscard]] uint64_t checkpoint_ts(std::string_view key) noexcept;
[[nodiscard]] std::string position(uint32_t ns, std::string_view consumer, uint32_t topic);
[[nodiscard]] std::string dedupe(uint32_t ns, std::string_view producer_id);

inline constexpr std::string_view meta_epoch = "epoch";
[[nodiscard]] std::string meta_namespace(std::string_view name);
[[nodiscard]] std::string meta_topic(uint32_t ns, uint32_t topic);
[[nodiscard]] std::string meta_topic_prefix(uint32_t ns);
[[nodiscard]] std::string meta_head(uint32_t ns);
[[nodiscard]] std::string meta_bytes(uint32_t ns);
[[nodiscard]] std::string meta_low_water(uint32_t ns);

}  // namespace ferry::storage::keys
