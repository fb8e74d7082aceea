// errors.h - the protocol module's error codes. Decoders never throw on bad input;
// they return one of these.
#pragma once

#include <cstdint>
#include <string_view>

#include "protocol/result.h"

namespace ferry::protocol {

enum class errc : uint8_t {
  ok = 0,
  // Engine.IO (engine.io-protocol v4-current.md, "Packet encoding")
  empty_packet,              // a zero-length text packet
  unknown_packet_type,       // first character is not a known packet type
  invalid_base64,            // 'b' packet whose body is not base64
  // Socket.IO (socket.io-protocol v5-current.md, "Packet encoding format")
  invalid_attachment_count,  // BINARY_* header without "<n>-"
  too_many_attachments,      // more attachments than decode_limits allows
  invalid_namespace,         // namespace not terminated or malformed
  invalid_ack_id,            // ack id overflow
  invalid_json,              // payload is not a JSON value
  json_too_deep,             // nesting exceeds decode_limits::max_json_depth
  invalid_payload,           // JSON valid but the wrong shape for this packet type
  unexpected_binary,         // binary frame while not reassembling a packet
  expected_binary,           // text frame while attachments are still missing
  invalid_placeholder,       // placeholder num out of range
  // Offsets
  invalid_offset,            // not an offset string produced by Ferry
};

[[nodiscard]] std::string_view to_string(errc e) noexcept;

template <class T>
using result = ferry::result<T, errc>;

}  // namespace ferry::protocol
