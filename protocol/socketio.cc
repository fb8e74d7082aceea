#include "protocol/socketio.h"

#include <array>
#include <charconv>

#include <fmt/format.h>

namespace ferry::protocol::sio {
namespace {

inline bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

bool parse_u64(std::string_view digits, uint64_t& out) noexcept {
  if (digits.empty()) return false;
  uint64_t v = 0;
  for (char c : digits) {
    if (!is_digit(c)) return false;
    auto d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  out = v;
  return true;
}

bool payload_valid(packet_type type, json::value v) {
  switch (type) {
    case packet_type::connect:
      return v.is_object();
    case packet_type::disconnect:
      return false;  // DISCONNECT carries no payload
    case packet_type::connect_error:
      return v.is_string() || v.is_object();
    case packet_type::event:
    case packet_type::binary_event: {
      if (!v.is_array()) return false;
      json::array_reader r(v);
      json::value first;
      if (!r.next(first)) return false;
      if (first.is_number()) return true;
      if (!first.is_string()) return false;
      std::string_view body = first.raw.substr(1, first.raw.size() - 2);
      if (body.find('\\') == std::string_view::npos) return !is_reserved_event(body);
      return !is_reserved_event(json::unescape(first));
    }
    case packet_type::ack:
    case packet_type::binary_ack:
      return v.is_array();
  }
  return false;
}

// Decimal digits of v appended to out (the per-packet path avoids fmt's machinery).
void append_uint(std::string& out, uint64_t v) {
  char buf[20];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<size_t>(end - buf));
}

std::string_view trim_leading(std::string_view s) noexcept {
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  return s.substr(i);
}

std::string_view trim_trailing(std::string_view s) noexcept {
  size_t n = s.size();
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r')) --n;
  return s.substr(0, n);
}

}  // namespace

bool is_reserved_event(std::string_view name) noexcept {
  static constexpr std::array<std::string_view, 6> reserved = {
      "connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"};
  for (auto r : reserved)
    if (r == name) return true;
  return false;
}

result<packet> decode(std::string_view text, const decode_limits& limits) {
  if (text.empty()) return errc::empty_packet;
  packet p;
  char t = text[0];
  if (t < '0' || t > '6') return errc::unknown_packet_type;
  p.type = static_cast<packet_type>(t - '0');
  size_t i = 1;

  if (p.type == packet_type::binary_event || p.type == packet_type::binary_ack) {
    size_t dash = text.find('-', i);
    if (dash == std::string_view::npos) return errc::invalid_attachment_count;
    uint64_t n = 0;
    if (!parse_u64(text.substr(i, dash - i), n)) return errc::invalid_attachment_count;
    if (n == 0) return errc::invalid_attachment_count;  // the reference parser requires 1..max
    if (n > limits.max_attachments) return errc::too_many_attachments;
    p.attachments = static_cast<uint32_t>(n);
    i = dash + 1;
  }

  if (i < text.size() && text[i] == '/') {
    size_t comma = text.find(',', i);
    if (comma == std::string_view::npos) {
      p.nsp = text.substr(i);
      i = text.size();
    } else {
      p.nsp = text.substr(i, comma - i);
      i = comma + 1;
    }
  }

  if (i < text.size() && is_digit(text[i])) {
    size_t start = i;
    while (i < text.size() && is_digit(text[i])) ++i;
    uint64_t id = 0;
    if (!parse_u64(text.substr(start, i - start), id) || id > (uint64_t{1} << 53)) return errc::invalid_ack_id;
    p.id = id;
  }

  if (i < text.size()) {
    p.data = text.substr(i);
    auto v = json::parse(p.data, limits.max_json_depth, p.compact, p.elements);
    if (!v) return v.error();
    if (!payload_valid(p.type, *v)) return errc::invalid_payload;
    p.payload = *v;
  } else if (p.type == packet_type::binary_event || p.type == packet_type::binary_ack) {
    return errc::invalid_payload;  // attachments need a payload that refers to them
  }
  // EVENT and ACK without payload are accepted, as the reference parser does; the
  // server ignores such an event and calls an ack with no arguments.
  return p;
}

event_view split_event(const packet& p) noexcept {
  event_view ev;
  if (p.data.empty()) return ev;  // no payload: no name, no arguments
  if (p.elements.count >= 1) {  // recorded by decode: no second scan
    ev.name = p.elements.elements[0];
    if (p.elements.count >= 2) ev.first_arg = p.elements.elements[1];
    const char* after_name = ev.name.raw.data() + ev.name.raw.size();
    const char* end = p.payload.raw.data() + p.payload.raw.size() - 1;  // the closing ']'
    std::string_view rest = trim_leading({after_name, static_cast<size_t>(end - after_name)});
    if (!rest.empty() && rest[0] == ',') rest = trim_leading(rest.substr(1));
    ev.args = trim_trailing(rest);
    return ev;
  }
  json::array_reader r(p.payload);
  (void)r.next(ev.name);
  std::string_view rest = trim_leading(r.rest());
  if (!rest.empty() && rest[0] == ',') rest = trim_leading(rest.substr(1));
  ev.args = trim_trailing(rest);
  if (!ev.args.empty()) ev.first_arg = json::first_value(ev.args);
  return ev;
}

std::string_view array_contents(json::value array) noexcept {
  if (array.raw.size() < 2) return {};
  return trim_trailing(trim_leading(array.raw.substr(1, array.raw.size() - 2)));
}

namespace {
errc check_placeholders_rec(json::value v, uint32_t count) {
  if (v.is_array()) {
    json::array_reader r(v);
    json::value e;
    while (r.next(e))
      if (errc err = check_placeholders_rec(e, count); err != errc::ok) return err;
  } else if (v.is_object()) {
    json::value marker;
    if (json::find_member(v, "_placeholder", marker) && marker.is_true()) {
      json::value num;
      uint64_t n = 0;
      if (!json::find_member(v, "num", num) || !num.is_number() || !json::as_uint64(num, n) || n >= count)
        return errc::invalid_placeholder;
      return errc::ok;
    }
    json::object_reader r(v);
    json::value k, e;
    while (r.next(k, e))
      if (errc err = check_placeholders_rec(e, count); err != errc::ok) return err;
  }
  return errc::ok;
}
}  // namespace

errc check_placeholders(json::value payload, uint32_t count) {
  return check_placeholders_rec(payload, count);
}

void append_header(std::string& out, packet_type type, std::string_view nsp, uint32_t attachments,
                   std::optional<uint64_t> id) {
  out.push_back(static_cast<char>('0' + static_cast<int>(type)));
  if (type == packet_type::binary_event || type == packet_type::binary_ack) {
    append_uint(out, attachments);
    out.push_back('-');
  }
  if (!nsp.empty() && nsp != "/") {
    out.append(nsp);
    out.push_back(',');
  }
  if (id) append_uint(out, *id);
}

void append_event(std::string& out, std::string_view nsp, std::string_view event_json, std::string_view args,
                  uint32_t attachments, std::optional<uint64_t> id) {
  append_header(out, attachments > 0 ? packet_type::binary_event : packet_type::event, nsp, attachments, id);
  out.push_back('[');
  out.append(event_json);
  if (!args.empty()) {
    out.push_back(',');
    out.append(args);
  }
  out.push_back(']');
}

void append_ack(std::string& out, std::string_view nsp, uint64_t id, std::string_view args, uint32_t attachments) {
  append_header(out, attachments > 0 ? packet_type::binary_ack : packet_type::ack, nsp, attachments, id);
  out.push_back('[');
  out.append(args);
  out.push_back(']');
}

void reassembler::reset() noexcept {
  _waiting = false;
  _attachments.clear();
  _text.clear();
  _packet = {};
}

reassembler::status reassembler::add_text(std::string_view text, errc& error) {
  if (_waiting) {
    error = errc::expected_binary;
    reset();
    return status::error;
  }
  _attachments.clear();
  auto p = decode(text, _limits);
  if (!p) {
    error = p.error();
    return status::error;
  }
  _packet = *p;
  bool binary = _packet.type == packet_type::binary_event || _packet.type == packet_type::binary_ack;
  if (binary && _packet.attachments > 0) {
    // Keep our own copy: the frame that carried the header is gone before the attachments arrive.
    _text.assign(text);
    auto again = decode(_text, _limits);
    _packet = *again;  // cannot fail, it just succeeded on the same bytes
    _waiting = true;
    return status::need_binary;
  }
  return finish(error);
}

reassembler::status reassembler::add_binary(std::string_view bytes, errc& error) {
  if (!_waiting) {
    error = errc::unexpected_binary;
    return status::error;
  }
  _attachments.emplace_back(bytes);
  if (_attachments.size() < _packet.attachments) return status::need_binary;
  _waiting = false;
  return finish(error);
}

reassembler::status reassembler::finish(errc& error) {
  bool binary = _packet.type == packet_type::binary_event || _packet.type == packet_type::binary_ack;
  if (binary && !_packet.data.empty()) {
    if (errc e = check_placeholders(_packet.payload, _packet.attachments); e != errc::ok) {
      error = e;
      reset();
      return status::error;
    }
  }
  return status::complete;
}

}  // namespace ferry::protocol::sio
