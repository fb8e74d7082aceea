// base64.h - standard base64 (RFC 4648 section 4, with padding), used for binary
// packets inside HTTP long-polling payloads (engine.io-protocol v4 "HTTP long-polling").
#pragma once

#include <string>
#include <string_view>

namespace ferry::protocol::base64 {

void append_encoded(std::string& out, std::string_view bytes);
[[nodiscard]] std::string encode(std::string_view bytes);
// Strict decode: padding required, no whitespace. False on any invalid input.
[[nodiscard]] bool decode(std::string_view text, std::string& out);

}  // namespace ferry::protocol::base64
