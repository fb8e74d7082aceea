#include "protocol/offset.h"

#include "protocol/base64.h"

namespace ferry::protocol {
namespace {
constexpr char hex_digits[] = "0123456789abcdef";

bool parse_hex(std::string_view s, uint64_t& out) noexcept {
  uint64_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else return false;
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  out = v;
  return true;
}
}  // namespace

void append_offset(std::string& out, offset o) {
  char buf[offset_string_size];  // formatted in place, appended once (this runs per delivery)
  for (int i = 7; i >= 0; --i) buf[7 - i] = hex_digits[(o.epoch >> (i * 4)) & 0xF];
  buf[8] = '-';
  for (int i = 15; i >= 0; --i) buf[9 + 15 - i] = hex_digits[(o.seq >> (i * 4)) & 0xF];
  out.append(buf, sizeof buf);
}

std::string format_offset(offset o) {
  std::string s;
  s.reserve(offset_string_size);
  append_offset(s, o);
  return s;
}

result<offset> parse_offset(std::string_view text) noexcept {
  if (text.size() != offset_string_size || text[8] != '-') return errc::invalid_offset;
  uint64_t epoch = 0, seq = 0;
  if (!parse_hex(text.substr(0, 8), epoch) || !parse_hex(text.substr(9), seq)) return errc::invalid_offset;
  return offset{static_cast<uint32_t>(epoch), seq};
}

std::string encode_id(const unsigned char (&random15)[15]) {
  std::string s = base64::encode(std::string_view(reinterpret_cast<const char*>(random15), 15));
  for (char& c : s) {
    if (c == '/') c = '_';
    else if (c == '+') c = '-';
  }
  return s;
}

}  // namespace ferry::protocol
