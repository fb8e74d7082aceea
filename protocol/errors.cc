#include "protocol/errors.h"

namespace ferry::protocol {

std::string_view to_string(errc e) noexcept {
  switch (e) {
    case errc::ok: return "ok";
    case errc::empty_packet: return "empty packet";
    case errc::unknown_packet_type: return "unknown packet type";
    case errc::invalid_base64: return "invalid base64 in binary packet";
    case errc::invalid_attachment_count: return "invalid attachment count";
    case errc::too_many_attachments: return "too many attachments";
    case errc::invalid_namespace: return "invalid namespace";
    case errc::invalid_ack_id: return "invalid ack id";
    case errc::invalid_json: return "invalid JSON";
    case errc::json_too_deep: return "JSON nested too deeply";
    case errc::invalid_payload: return "invalid payload for packet type";
    case errc::unexpected_binary: return "binary data while not reconstructing a packet";
    case errc::expected_binary: return "text packet while attachments are missing";
    case errc::invalid_placeholder: return "illegal attachments";
    case errc::invalid_offset: return "invalid offset";
  }
  return "unknown error";
}

}  // namespace ferry::protocol
