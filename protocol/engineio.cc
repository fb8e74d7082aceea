#include "protocol/engineio.h"

#include <fmt/format.h>

#include "protocol/base64.h"
#include "protocol/json.h"

namespace ferry::protocol::eio {

result<packet> decode_text(std::string_view frame) noexcept {
  if (frame.empty()) return errc::empty_packet;
  char t = frame[0];
  if (t < '0' || t > '6') return errc::unknown_packet_type;
  return packet{static_cast<packet_type>(t), false, frame.substr(1)};
}

errc payload::decode(std::string_view body) {
  _packets.clear();
  _decoded.clear();
  // Views into _decoded must stay valid: reserve one slot per binary part ("b" after a
  // separator, or at the start) so the vector never reallocates.
  size_t binaries = !body.empty() && body[0] == 'b' ? 1 : 0;
  for (size_t i = 0; i + 1 < body.size(); ++i)
    if (body[i] == record_separator && body[i + 1] == 'b') ++binaries;
  _decoded.reserve(binaries);
  size_t start = 0;
  for (;;) {
    size_t end = body.find(record_separator, start);
    std::string_view part = body.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (!part.empty() && part[0] == 'b') {
      std::string bytes;
      if (!base64::decode(part.substr(1), bytes)) {
        _packets.clear();
        return errc::invalid_base64;
      }
      _decoded.push_back(std::move(bytes));
      _packets.push_back({packet_type::message, true, _decoded.back()});
    } else {
      auto p = decode_text(part);
      if (!p) {
        _packets.clear();
        return p.error();
      }
      _packets.push_back(*p);
    }
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return errc::ok;
}

void append_text_packet(std::string& out, packet_type type, std::string_view data) {
  out.push_back(static_cast<char>(type));
  out.append(data);
}

void append_payload_packet(std::string& out, bool binary, std::string_view encoded_text_or_bytes) {
  if (!out.empty()) out.push_back(record_separator);
  if (binary) {
    out.push_back('b');
    base64::append_encoded(out, encoded_text_or_bytes);
  } else {
    out.append(encoded_text_or_bytes);
  }
}

std::string encode_open(const handshake& h) {
  std::string out = "0{\"sid\":";
  json::append_quoted(out, h.sid);
  out += h.upgrade_to_websocket ? R"(,"upgrades":["websocket"])" : R"(,"upgrades":[])";
  out += fmt::format(R"(,"pingInterval":{},"pingTimeout":{},"maxPayload":{}}})", h.ping_interval_ms,
                     h.ping_timeout_ms, h.max_payload);
  return out;
}

}  // namespace ferry::protocol::eio
