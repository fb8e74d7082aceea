// libFuzzer target for protocol/socketio.h.
//
// The input is used twice: whole, as one text packet for sio::decode; and as a sequence
// of Engine.IO messages for a reassembler, split on the byte 0xFF (which never occurs in
// UTF-8 text): a piece starting with 0x01 is a binary message (the rest of the piece),
// any other piece is a text message. Seeds look like
//   51-["a",{"_placeholder":true,"num":0}] 0xFF 0x01 <attachment bytes>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "protocol/json.h"
#include "protocol/socketio.h"

namespace sio = ferry::protocol::sio;
namespace json = ferry::protocol::json;
using ferry::protocol::errc;

namespace {

bool is_binary_type(sio::packet_type t) {
  return t == sio::packet_type::binary_event || t == sio::packet_type::binary_ack;
}

// Properties of any packet decode() accepted.
void check_packet(const sio::packet& p) {
  FUZZ_CHECK(!p.nsp.empty() && p.nsp[0] == '/');
  FUZZ_CHECK(p.nsp.find(',') == std::string_view::npos);
  if (!is_binary_type(p.type)) FUZZ_CHECK(p.attachments == 0);
  FUZZ_CHECK(p.attachments <= sio::decode_limits{}.max_attachments);
  if (p.id) FUZZ_CHECK(*p.id <= (uint64_t{1} << 53));

  switch (p.type) {
    case sio::packet_type::event:
    case sio::packet_type::binary_event: {
      // EVENT without payload is accepted (as the reference parser does); BINARY_* is not
      if (p.data.empty()) {
        FUZZ_CHECK(p.type == sio::packet_type::event);
        FUZZ_CHECK(sio::split_event(p).name.raw.empty());
        break;
      }
      FUZZ_CHECK(p.payload.is_array());
      auto ev = sio::split_event(p);
      FUZZ_CHECK(ev.name.is_number() || ev.name.is_string());
      if (ev.name.is_string()) FUZZ_CHECK(!sio::is_reserved_event(json::unescape(ev.name)));
      // name and arguments put back together are the same array
      std::string rebuilt = "[" + std::string(ev.name.raw) + (ev.args.empty() ? "" : ",") + std::string(ev.args) + "]";
      auto again = json::parse(rebuilt);
      FUZZ_CHECK(again.ok());
      FUZZ_CHECK(json::minify(again->raw) == json::minify(p.payload.raw));
      break;
    }
    case sio::packet_type::ack:
    case sio::packet_type::binary_ack: {
      if (p.data.empty()) {  // ACK without payload: accepted like the reference, no arguments
        FUZZ_CHECK(p.type == sio::packet_type::ack);
        break;
      }
      FUZZ_CHECK(p.payload.is_array());
      std::string rebuilt = "[" + std::string(sio::array_contents(p.payload)) + "]";
      auto again = json::parse(rebuilt);
      FUZZ_CHECK(again.ok() && again->is_array());
      break;
    }
    case sio::packet_type::connect:
      FUZZ_CHECK(p.data.empty() || p.payload.is_object());
      break;
    case sio::packet_type::connect_error:
      FUZZ_CHECK(p.data.empty() || p.payload.is_object() || p.payload.is_string());
      break;
    case sio::packet_type::disconnect:
      FUZZ_CHECK(p.data.empty());
      break;
  }
  if (!p.data.empty()) {
    errc e = sio::check_placeholders(p.payload, p.attachments);
    FUZZ_CHECK(e == errc::ok || e == errc::invalid_placeholder);
  }

  // Encoding the decoded fields and decoding again gives the same fields.
  std::string text;
  sio::append_header(text, p.type, p.nsp, p.attachments, p.id);
  text += p.data;
  auto q = sio::decode(text);
  FUZZ_CHECK(q.ok());
  FUZZ_CHECK(q->type == p.type);
  FUZZ_CHECK(q->nsp == p.nsp);
  FUZZ_CHECK(q->id == p.id);
  FUZZ_CHECK(q->attachments == p.attachments);
  FUZZ_CHECK(q->data == p.data);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);

  if (auto p = sio::decode(input); p.ok()) check_packet(*p);

  sio::reassembler re;
  size_t start = 0;
  for (;;) {
    size_t end = input.find('\xff', start);
    std::string_view piece = input.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    // Each message in its own exact-size buffer, released after the call, so that the
    // reassembler keeping a view into a message it does not own shows up under ASan.
    bool binary = !piece.empty() && piece[0] == '\x01';
    if (binary) piece.remove_prefix(1);
    auto owned = std::make_unique<char[]>(piece.size());
    if (!piece.empty()) std::memcpy(owned.get(), piece.data(), piece.size());
    std::string_view message(owned.get(), piece.size());
    errc e = errc::ok;
    auto s = binary ? re.add_binary(message, e) : re.add_text(message, e);
    switch (s) {
      case sio::reassembler::status::need_binary:
        FUZZ_CHECK(re.waiting_for_binary());
        FUZZ_CHECK(re.attachments().size() < re.current().attachments);
        break;
      case sio::reassembler::status::complete:
        FUZZ_CHECK(!re.waiting_for_binary());
        check_packet(re.current());
        if (is_binary_type(re.current().type)) {
          FUZZ_CHECK(re.attachments().size() == re.current().attachments);
          FUZZ_CHECK(sio::check_placeholders(re.current().payload, re.current().attachments) == errc::ok);
        }
        break;
      case sio::reassembler::status::error:
        FUZZ_CHECK(e != errc::ok);
        FUZZ_CHECK(!re.waiting_for_binary());  // an error always abandons the packet
        break;
    }
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return 0;
}
