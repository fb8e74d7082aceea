// libFuzzer target for protocol/offset.h: parse_offset on arbitrary bytes, and the
// format/parse and encode_id round trips on values taken from the input.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "protocol/offset.h"

namespace protocol = ferry::protocol;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);

  auto r = protocol::parse_offset(input);
  if (r.ok()) {
    // offsets have exactly one spelling
    FUZZ_CHECK(protocol::format_offset(*r) == input);
  } else {
    FUZZ_CHECK(r.error() == protocol::errc::invalid_offset);
  }

  if (size >= 12) {
    protocol::offset o;
    std::memcpy(&o.epoch, data, 4);
    std::memcpy(&o.seq, data + 4, 8);
    std::string text = protocol::format_offset(o);
    FUZZ_CHECK(text.size() == protocol::offset_string_size);
    auto back = protocol::parse_offset(text);
    FUZZ_CHECK(back.ok() && *back == o);
  }

  if (size >= 15) {
    unsigned char random15[15];
    std::memcpy(random15, data, 15);
    std::string id = protocol::encode_id(random15);
    FUZZ_CHECK(id.size() == 20);
    FUZZ_CHECK(id.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
               std::string::npos);
  }
  return 0;
}
