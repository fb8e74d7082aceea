// libFuzzer target for protocol/engineio.h: a WebSocket text frame (decode_text) and an
// HTTP long-polling body (payload::decode) from the same bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "protocol/engineio.h"

namespace eio = ferry::protocol::eio;
using ferry::protocol::errc;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);

  auto p = eio::decode_text(input);
  if (p.ok()) {
    FUZZ_CHECK(!input.empty() && input[0] >= '0' && input[0] <= '6');
    FUZZ_CHECK(static_cast<char>(p->type) == input[0]);
    FUZZ_CHECK(!p->binary);
    FUZZ_CHECK(p->data == input.substr(1));
  } else {
    FUZZ_CHECK(p.error() == errc::empty_packet || p.error() == errc::unknown_packet_type);
  }

  eio::payload pl;
  errc e = pl.decode(input);
  if (e != errc::ok) {
    FUZZ_CHECK(pl.packets().empty());
    return 0;
  }
  size_t separators = 0;
  for (char c : input) separators += c == eio::record_separator ? 1 : 0;
  FUZZ_CHECK(pl.packets().size() == separators + 1);

  // Re-encoding the packets and decoding again gives the same packets (the body itself
  // may differ: base64 decoding ignores non-canonical trailing bits).
  std::string body;
  for (const auto& pk : pl.packets()) {
    FUZZ_CHECK(!pk.binary || pk.type == eio::packet_type::message);
    if (pk.binary) {
      eio::append_payload_packet(body, true, pk.data);
    } else {
      std::string text;
      eio::append_text_packet(text, pk.type, pk.data);
      eio::append_payload_packet(body, false, text);
    }
  }
  eio::payload again;
  FUZZ_CHECK(again.decode(body) == errc::ok);
  FUZZ_CHECK(again.packets().size() == pl.packets().size());
  for (size_t i = 0; i < pl.packets().size(); ++i) {
    FUZZ_CHECK(again.packets()[i].type == pl.packets()[i].type);
    FUZZ_CHECK(again.packets()[i].binary == pl.packets()[i].binary);
    FUZZ_CHECK(again.packets()[i].data == pl.packets()[i].data);
  }
  return 0;
}
