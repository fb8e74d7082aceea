// engineio.h - Engine.IO protocol v4 codec (docs/engine.io-protocol/v4-current.md).
//
// Pure functions: bytes in, packets or an error code out. Nothing here touches sockets.
// Text packets are "<type digit><data>"; binary packets travel as binary WebSocket frames
// or, inside an HTTP long-polling payload, as "b<base64>". Payload packets are separated by
// the record separator 0x1e.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/errors.h"

namespace ferry::protocol::eio {

inline constexpr char record_separator = '\x1e';

// v4-current.md "Protocol" > "Packet types".
enum class packet_type : char {
  open = '0',
  close = '1',
  ping = '2',
  pong = '3',
  message = '4',
  upgrade = '5',
  noop = '6',
};

// A decoded packet; `data` views into the decoder's input (or, for polling payloads,
// into decoded storage owned by the payload).
struct packet {
  packet_type type = packet_type::noop;
  bool binary = false;  // only message packets can be binary
  std::string_view data;
};

// Decodes one packet carried by a WebSocket text frame.
[[nodiscard]] result<packet> decode_text(std::string_view frame) noexcept;

// A WebSocket binary frame is always a binary message packet.
[[nodiscard]] inline packet decode_binary(std::string_view frame) noexcept {
  return {packet_type::message, true, frame};
}

// A decoded HTTP long-polling payload. Text packets view into the request body; binary
// packets view into `_decoded`, so the body must outlive the payload.
class payload {
 public:
  payload() = default;
  payload(const payload&) = delete;  // packets view into this object's storage
  payload& operator=(const payload&) = delete;

  [[nodiscard]] const std::vector<packet>& packets() const noexcept { return _packets; }

  // Splits `body` on 0x1e and decodes every packet. On error the payload is left empty.
  [[nodiscard]] errc decode(std::string_view body);

 private:
  std::vector<packet> _packets;
  std::vector<std::string> _decoded;
};

// Appends "<type><data>" (a text packet as sent in a WebSocket text frame).
void append_text_packet(std::string& out, packet_type type, std::string_view data = {});

// Appends one packet to a polling payload under construction: a separator if `out` is
// not empty, then the text packet, or "b" + base64 for binary data.
void append_payload_packet(std::string& out, bool binary, std::string_view encoded_text_or_bytes);

// The open packet's JSON (v4-current.md "Handshake"), key order as the reference server.
struct handshake {
  std::string_view sid;
  bool upgrade_to_websocket = false;
  uint32_t ping_interval_ms = 25000;
  uint32_t ping_timeout_ms = 20000;
  uint64_t max_payload = 1000000;
};
[[nodiscard]] std::string encode_open(const handshake& h);

}  // namespace ferry::protocol::eio
