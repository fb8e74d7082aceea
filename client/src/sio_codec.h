// sio_codec.h - the client side of the Engine.IO v4 / Socket.IO v5 wire formats, on top
// of the pure codecs in protocol/ (engineio.h, socketio.h, json.h). Pure functions.
//
//  * the Engine.IO open packet (engine.io-protocol v4-current.md "Handshake"):
//    0{"sid":..,"upgrades":[..],"pingInterval":..,"pingTimeout":..,"maxPayload":..}
//  * Socket.IO packets the client sends (socket.io-protocol v5-current.md "Packet
//    encoding format"): CONNECT 0[/nsp,]{auth}, DISCONNECT 1[/nsp,], EVENT 2[/nsp,][id][...],
//    ACK 3[/nsp,]id[...], and their binary forms 5<n>-/6<n>-;
//  * what the client receives: the CONNECT ack {sid, pid?}, CONNECT_ERROR {message, data?}
//    (or a bare string from v2-era servers), EVENT / ACK arrays.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ferry/client/error.h"
#include "protocol/socketio.h"

namespace ferry::client::detail {

class socket_impl;

struct eio_handshake {
  std::string sid;
  std::chrono::milliseconds ping_interval{25000};
  std::chrono::milliseconds ping_timeout{20000};
  uint64_t max_payload = 1000000;
};

// Parses the JSON of an Engine.IO open packet (without the leading '0').
[[nodiscard]] result<eio_handshake> parse_handshake(std::string_view json);

// Socket.IO packets as Engine.IO message payloads, without the Engine.IO '4' prefix.
[[nodiscard]] std::string encode_connect(std::string_view nsp, std::string_view auth_json);
[[nodiscard]] std::string encode_disconnect(std::string_view nsp);
[[nodiscard]] std::string encode_event(std::string_view nsp, std::string_view event, std::string_view args_json,
                                       uint32_t attachments, std::optional<uint64_t> ack_id);
[[nodiscard]] std::string encode_ack(std::string_view nsp, uint64_t ack_id, std::string_view args_json,
                                     uint32_t attachments);

// Validates an emit before it is queued: a name the protocol allows (not a reserved
// event), arguments that form valid JSON, placeholders that match the attachments.
[[nodiscard]] result<void> validate_emit(std::string_view event, std::string_view args_json, size_t attachments);
// The same for ack arguments.
[[nodiscard]] result<void> validate_args(std::string_view args_json, size_t attachments);

// Merges the recovery fields into a CONNECT auth object, as the JS client does
// (Object.assign({pid, offset}, auth): the application's own keys win).
[[nodiscard]] std::string recovery_auth(std::string_view auth_json, std::string_view pid, std::string_view offset);

struct connect_ack {
  std::string sid;
  std::string pid;
};
[[nodiscard]] result<connect_ack> parse_connect_ack(const protocol::sio::packet& p);

// "message" of a CONNECT_ERROR, with its "data" (raw JSON) appended when present.
[[nodiscard]] std::string connect_error_text(const protocol::sio::packet& p);

// A received EVENT or ACK with its own copy of the bytes; message views point into it.
struct message_data {
  std::string text;                    // the packet's JSON array
  std::string event;                   // unescaped event name ("" for acks)
  std::vector<std::string_view> args;  // each argument's raw JSON
  std::string_view args_json;          // all arguments, comma-separated
  std::vector<std::string> attachments;
  std::optional<uint64_t> ack_id;  // the sender wants an ack
  uint64_t connection = 0;         // the socket connection it arrived on
  std::weak_ptr<socket_impl> socket;
  mutable std::atomic<bool> acked{false};

  message_data() = default;
  message_data(const message_data&) = delete;
  message_data& operator=(const message_data&) = delete;
};

// Builds message data from a complete EVENT/BINARY_EVENT/ACK/BINARY_ACK packet.
[[nodiscard]] std::shared_ptr<message_data> make_message_data(const protocol::sio::packet& p,
                                                              std::vector<std::string> attachments);

// If `raw` is a placeholder {"_placeholder":true,"num":N}, N.
[[nodiscard]] std::optional<size_t> placeholder_index(std::string_view raw);

}  // namespace ferry::client::detail
