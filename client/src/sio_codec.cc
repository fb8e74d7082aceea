#include "client/src/sio_codec.h"

#include "protocol/json.h"

namespace ferry::client::detail {

namespace pjson = ferry::protocol::json;
namespace psio = ferry::protocol::sio;

result<eio_handshake> parse_handshake(std::string_view json) {
  auto doc = pjson::parse(json);
  if (!doc || !doc->is_object()) return {errc::protocol_error, "Engine.IO open packet is not a JSON object"};
  eio_handshake h;
  pjson::value v;
  if (!pjson::find_member(*doc, "sid", v) || !v.is_string())
    return {errc::protocol_error, "Engine.IO open packet without a string sid"};
  h.sid = pjson::unescape(v);
  uint64_t n = 0;
  if (!pjson::find_member(*doc, "pingInterval", v) || !v.is_number() || !pjson::as_uint64(v, n) || n == 0)
    return {errc::protocol_error, "Engine.IO open packet without a valid pingInterval"};
  h.ping_interval = std::chrono::milliseconds(static_cast<int64_t>(std::min<uint64_t>(n, INT32_MAX)));
  if (!pjson::find_member(*doc, "pingTimeout", v) || !v.is_number() || !pjson::as_uint64(v, n))
    return {errc::protocol_error, "Engine.IO open packet without a valid pingTimeout"};
  h.ping_timeout = std::chrono::milliseconds(static_cast<int64_t>(std::min<uint64_t>(n, INT32_MAX)));
  // maxPayload is optional (servers before engine.io 6.1 do not send it).
  if (pjson::find_member(*doc, "maxPayload", v) && v.is_number() && pjson::as_uint64(v, n) && n > 0) h.max_payload = n;
  return h;
}

std::string encode_connect(std::string_view nsp, std::string_view auth_json) {
  std::string out;
  psio::append_header(out, psio::packet_type::connect, nsp, 0, std::nullopt);
  if (!auth_json.empty()) out.append(auth_json);
  return out;
}

std::string encode_disconnect(std::string_view nsp) {
  std::string out;
  psio::append_header(out, psio::packet_type::disconnect, nsp, 0, std::nullopt);
  return out;
}

std::string encode_event(std::string_view nsp, std::string_view event, std::string_view args_json, uint32_t attachments,
                         std::optional<uint64_t> ack_id) {
  std::string out;
  out.reserve(16 + nsp.size() + event.size() + args_json.size());
  psio::append_event(out, nsp, pjson::quoted(event), args_json, attachments, ack_id);
  return out;
}

std::string encode_ack(std::string_view nsp, uint64_t ack_id, std::string_view args_json, uint32_t attachments) {
  std::string out;
  out.reserve(16 + nsp.size() + args_json.size());
  psio::append_ack(out, nsp, ack_id, args_json, attachments);
  return out;
}

result<void> validate_args(std::string_view args_json, size_t attachments) {
  std::string array = "[";
  array.append(args_json);
  array.push_back(']');
  auto doc = pjson::parse(array);
  if (!doc)
    return {errc::invalid_argument, "arguments are not valid JSON: " + std::string(protocol::to_string(doc.error()))};
  if (attachments > 0 && psio::check_placeholders(*doc, static_cast<uint32_t>(attachments)) != protocol::errc::ok)
    return {errc::invalid_argument, "a binary placeholder refers to a missing attachment"};
  return {};
}

result<void> validate_emit(std::string_view event, std::string_view args_json, size_t attachments) {
  if (psio::is_reserved_event(event))
    return {errc::invalid_argument, "\"" + std::string(event) + "\" is a reserved event name"};
  return validate_args(args_json, attachments);
}

std::string recovery_auth(std::string_view auth_json, std::string_view pid, std::string_view offset) {
  std::string out = "{\"pid\":";
  pjson::append_quoted(out, pid);
  if (!offset.empty()) {
    out += ",\"offset\":";
    pjson::append_quoted(out, offset);
  }
  // Later keys win in JSON.parse (and in the broker's find_member), so appending the
  // application's members after ours gives Object.assign semantics.
  auto doc = pjson::parse(auth_json);
  if (doc && doc->is_object()) {
    std::string_view inner = doc->raw.substr(1, doc->raw.size() - 2);
    size_t i = 0;
    while (i < inner.size() && (inner[i] == ' ' || inner[i] == '\n' || inner[i] == '\t' || inner[i] == '\r')) ++i;
    if (i < inner.size()) {
      out.push_back(',');
      out.append(inner);
    }
  }
  out.push_back('}');
  return out;
}

result<connect_ack> parse_connect_ack(const psio::packet& p) {
  if (p.data.empty() || !p.payload.is_object())
    return {errc::protocol_error, "CONNECT without a payload (a Socket.IO v2 server? this client speaks v5)"};
  connect_ack a;
  pjson::value v;
  if (!pjson::find_member(p.payload, "sid", v) || !v.is_string())
    return {errc::protocol_error, "CONNECT ack without a sid"};
  a.sid = pjson::unescape(v);
  if (pjson::find_member(p.payload, "pid", v) && v.is_string()) a.pid = pjson::unescape(v);
  return a;
}

std::string connect_error_text(const psio::packet& p) {
  if (p.data.empty()) return "connection refused by the server";
  if (p.payload.is_string()) return pjson::unescape(p.payload);
  std::string out;
  pjson::value v;
  if (pjson::find_member(p.payload, "message", v) && v.is_string())
    out = pjson::unescape(v);
  else
    out = "connection refused by the server";
  if (pjson::find_member(p.payload, "data", v)) {
    out += " (data: ";
    out.append(v.raw);
    out += ")";
  }
  return out;
}

std::shared_ptr<message_data> make_message_data(const psio::packet& p, std::vector<std::string> attachments) {
  auto m = std::make_shared<message_data>();
  m->text.assign(p.data);
  m->attachments = std::move(attachments);
  m->ack_id = p.id;
  if (p.data.empty() || !p.payload.is_array()) return m;
  const char* base = p.data.data();
  auto rebase = [&](std::string_view v) { return std::string_view(m->text.data() + (v.data() - base), v.size()); };
  bool is_event = p.type == psio::packet_type::event || p.type == psio::packet_type::binary_event;
  pjson::array_reader r(p.payload);
  pjson::value e;
  bool first = true;
  const char* args_begin = nullptr;
  const char* args_end = nullptr;
  while (r.next(e)) {
    if (first && is_event) {
      first = false;
      m->event = e.is_string() ? pjson::unescape(e) : std::string(e.raw);
      continue;
    }
    first = false;
    m->args.push_back(rebase(e.raw));
    if (!args_begin) args_begin = e.raw.data();
    args_end = e.raw.data() + e.raw.size();
  }
  if (args_begin) m->args_json = rebase(std::string_view(args_begin, static_cast<size_t>(args_end - args_begin)));
  return m;
}

std::optional<size_t> placeholder_index(std::string_view raw) {
  auto doc = pjson::parse(raw);
  if (!doc || !doc->is_object()) return std::nullopt;
  pjson::value marker, num;
  uint64_t n = 0;
  if (!pjson::find_member(*doc, "_placeholder", marker) || !marker.is_true()) return std::nullopt;
  if (!pjson::find_member(*doc, "num", num) || !num.is_number() || !pjson::as_uint64(num, n)) return std::nullopt;
  return static_cast<size_t>(n);
}

}  // namespace ferry::client::detail
