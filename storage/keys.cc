#include "storage/keys.h"

namespace ferry::storage::keys {

void put_u16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xFF));
}

void put_u32(std::string& out, uint32_t v) {
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>((v >> (i * 8)) & 0xFF));
}

void put_u64(std::string& out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((v >> (i * 8)) & 0xFF));
}

uint32_t get_u32(std::string_view in, size_t at) noexcept {
  if (in.size() < at + 4) return 0;
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(in[at + i]);
  return v;
}

uint64_t get_u64(std::string_view in, size_t at) noexcept {
  if (in.size() < at + 8) return 0;
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(in[at + i]);
  return v;
}

std::string event(uint32_t ns, uint32_t topic, uint64_t seq) {
  std::string k;
  k.reserve(16);
  put_u32(k, ns);
  put_u32(k, topic);
  put_u64(k, seq);
  return k;
}

std::string topic_prefix(uint32_t ns, uint32_t topic) {
  std::string k;
  put_u32(k, ns);
  put_u32(k, topic);
  return k;
}

uint64_t event_seq(std::string_view key) noexcept { return get_u64(key, 8); }

std::string checkpoint(uint32_t ns, uint64_t ts_ms) {
  std::string k;
  put_u32(k, ns);
  put_u64(k, ts_ms);
  return k;
}

std::string namespace_prefix(uint32_t ns) {
  std::string k;
  put_u32(k, ns);
  return k;
}

uint64_t checkpoint_ts(std::string_view key) noexcept { return get_u64(key, 4); }

std::string position(uint32_t ns, std::string_view consumer, uint32_t topic) {
  std::string k;
  put_u32(k, ns);
  put_u16(k, static_cast<uint16_t>(consumer.size()));
  k.append(consumer);
  put_u32(k, topic);
  return k;
}

std::string dedupe(uint32_t ns, std::string_view producer_id) {
  std::string k;
  put_u32(k, ns);
  k.append(producer_id);
  return k;
}

std::string meta_namespace(std::string_view name) { return std::string("n").append(name); }

std::string meta_topic(uint32_t ns, uint32_t topic) {
  std::string k = "t";
  put_u32(k, ns);
  put_u32(k, topic);
  return k;
}

std::string meta_topic_prefix(uint32_t ns) {
  std::string k = "t";
  put_u32(k, ns);
  return k;
}

std::string meta_head(uint32_t ns) {
  std::string k = "h";
  put_u32(k, ns);
  return k;
}

std::string meta_bytes(uint32_t ns) {
  std::string k = "b";
  put_u32(k, ns);
  return k;
}

std::string meta_low_water(uint32_t ns) {
  std::string k = "l";
  put_u32(k, ns);
  return k;
}

}  // namespace ferry::storage::keys
