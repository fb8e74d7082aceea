// socketio.h - Socket.IO protocol v5 codec (docs/socket.io-protocol/v5-current.md).
//
// Pure: a text packet in, a `packet` (views into the input) or an error code out.
// Binary packets (BINARY_EVENT / BINARY_ACK) are followed by their attachments as
// separate Engine.IO binary messages; `reassembler` collects them.
//
// Packet format (v5-current.md "Packet encoding format"):
//   <type>[<attachments>-][<namespace>,][<ack id>][JSON payload]
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/errors.h"
#include "protocol/json.h"

namespace ferry::protocol::sio {

enum class packet_type : uint8_t {
  connect = 0,
  disconnect = 1,
  event = 2,
  ack = 3,
  connect_error = 4,
  binary_event = 5,
  binary_ack = 6,
};

struct packet {
  packet_type type = packet_type::event;
  std::string_view nsp = "/";
  std::optional<uint64_t> id;  // ack id
  uint32_t attachments = 0;    // only for binary_event / binary_ack
  std::string_view data;       // raw JSON payload; empty when absent
  json::value payload;         // validated view of `data` (meaningless when data is empty)
  bool compact = false;        // `data` has no insignificant whitespace
  json::array_index elements;  // first elements of the payload array (event name, first argument)
};

struct decode_limits {
  uint32_t max_attachments = 10;                   // a BINARY_* packet announcing more is rejected
  unsigned max_json_depth = json::default_max_depth;
};

// Event names a client may not use (socket.io-parser RESERVED_EVENTS).
[[nodiscard]] bool is_reserved_event(std::string_view name) noexcept;

// Decodes a text packet and validates its payload for the packet type the way the
// reference parser does (isPayloadValid): CONNECT takes an object, DISCONNECT nothing,
// CONNECT_ERROR a string or object, EVENT a non-empty array starting with a string (not
// reserved) or number, ACK an array.
[[nodiscard]] result<packet> decode(std::string_view text, const decode_limits& limits = {});

// For an EVENT/BINARY_EVENT packet: the event name element and the raw text of the
// remaining arguments without brackets (`1,"2"` for `["ev",1,"2"]`). Without a payload
// the name is empty (raw size 0).
struct event_view {
  json::value name;
  std::string_view args;
  json::value first_arg;  // the first argument (raw empty if none)
};
[[nodiscard]] event_view split_event(const packet& p) noexcept;
// For an ACK/BINARY_ACK packet: the array contents without brackets.
[[nodiscard]] std::string_view array_contents(json::value array) noexcept;

// Checks every {"_placeholder":true,"num":N} in `payload` references 0 <= N < count.
[[nodiscard]] errc check_placeholders(json::value payload, uint32_t count);

// Appends a packet header: type, "<n>-" for attachments > 0 (binary types), "<nsp>,"
// unless the namespace is "/", and the ack id.
void append_header(std::string& out, packet_type type, std::string_view nsp, uint32_t attachments,
                   std::optional<uint64_t> id);

// Appends a complete event packet: header + ["<event>",<args>] where `event_json` is the
// already quoted event name and `args` raw comma-separated JSON (may be empty).
void append_event(std::string& out, std::string_view nsp, std::string_view event_json, std::string_view args,
                  uint32_t attachments = 0, std::optional<uint64_t> id = std::nullopt);
// Appends an ack packet: header + [<args>].
void append_ack(std::string& out, std::string_view nsp, uint64_t id, std::string_view args, uint32_t attachments = 0);

// Collects a BINARY_* packet and its attachments. Feed every Engine.IO message of one
// connection in order; a text message while attachments are missing is an error, as is
// a binary message when none is expected.
class reassembler {
 public:
  enum class status : uint8_t { complete, need_binary, error };

  explicit reassembler(decode_limits limits = {}) : _limits(limits) {}

  // On `complete`, packet() is valid until the next add_*(). For non-binary packets it
  // views into `text`, which must stay alive until then.
  [[nodiscard]] status add_text(std::string_view text, errc& error);
  [[nodiscard]] status add_binary(std::string_view bytes, errc& error);

  [[nodiscard]] const packet& current() const noexcept { return _packet; }
  [[nodiscard]] std::vector<std::string>& attachments() noexcept { return _attachments; }
  [[nodiscard]] bool waiting_for_binary() const noexcept { return _waiting; }
  void reset() noexcept;

 private:
  status finish(errc& error);

  decode_limits _limits;
  packet _packet;
  std::string _text;  // owned copy of a BINARY_* header while attachments arrive
  std::vector<std::string> _attachments;
  bool _waiting = false;
};

}  // namespace ferry::protocol::sio
