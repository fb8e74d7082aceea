#include "client/src/ferry_codec.h"

#include <array>

#include <fmt/format.h>

#include "protocol/json.h"
#include "protocol/offset.h"
#include "protocol/socketio.h"

namespace ferry::client::detail {

namespace pjson = ferry::protocol::json;

namespace {

bool has_control_chars(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

constexpr std::array<std::string_view, 4> broker_reserved = {"subscribe", "unsubscribe", "publish", "commit"};

std::string rejected_text(pjson::value reply, std::string& code) {
  pjson::value err, v;
  std::string message;
  if (pjson::find_member(reply, "error", err) && err.is_object()) {
    if (pjson::find_member(err, "code", v) && v.is_string()) code = pjson::unescape(v);
    if (pjson::find_member(err, "message", v) && v.is_string()) message = pjson::unescape(v);
  }
  if (code.empty()) code = "unknown";
  return message.empty() ? code : code + ": " + message;
}

std::optional<pjson::value> parse_object(std::string_view text) {
  auto v = pjson::parse(text);
  if (!v || !v->is_object()) return std::nullopt;
  return *v;
}

std::string string_member(pjson::value obj, std::string_view key) {
  pjson::value v;
  if (pjson::find_member(obj, key, v) && v.is_string()) return pjson::unescape(v);
  return {};
}

}  // namespace

result<void> validate_outgoing(std::string_view topic, std::string_view event, std::string_view id,
                               std::string_view data_json) {
  auto bad = [](std::string m) { return result<void>(errc::invalid_argument, std::move(m)); };
  if (topic.empty() || topic.size() > max_topic_bytes || has_control_chars(topic))
    return bad(fmt::format("a topic is 1 to {} bytes without control characters", max_topic_bytes));
  if (topic[0] == '$') return bad("topics starting with '$' are reserved for the broker");
  if (event.empty() || event.size() > max_event_name_bytes || has_control_chars(event))
    return bad(fmt::format("an event name is 1 to {} bytes without control characters", max_event_name_bytes));
  if (event[0] == '$' || protocol::sio::is_reserved_event(event))
    return bad(fmt::format("event name \"{}\" is reserved", event));
  for (auto r : broker_reserved)
    if (r == event) return bad(fmt::format("event name \"{}\" is reserved", event));
  if (id.size() > max_id_bytes) return bad(fmt::format("an id is at most {} bytes", max_id_bytes));
  auto v = pjson::parse(data_json);
  if (!v) return bad(fmt::format("data is not valid JSON ({})", protocol::to_string(v.error())));
  return {};
}

std::string encode_publish_item(std::string_view topic, std::string_view event, std::string_view data_json,
                                std::string_view id) {
  std::string out;
  out.reserve(40 + topic.size() + event.size() + data_json.size() + id.size());
  out += R"({"topic":)";
  pjson::append_quoted(out, topic);
  out += R"(,"event":)";
  pjson::append_quoted(out, event);
  out += R"(,"data":)";
  if (pjson::is_compact(data_json)) {
    out.append(data_json);
  } else {
    out += pjson::minify(data_json);
  }
  out += R"(,"id":)";
  pjson::append_quoted(out, id);
  out.push_back('}');
  return out;
}

result<publish_reply> parse_publish_reply(std::string_view first_arg, size_t count) {
  auto obj = parse_object(first_arg);
  if (!obj) return {errc::protocol_error, "publish reply is not a JSON object"};
  pjson::value ok;
  if (!pjson::find_member(*obj, "ok", ok) || ok.type != pjson::kind::boolean)
    return {errc::protocol_error, "publish reply without \"ok\""};
  publish_reply r;
  if (!ok.is_true()) {
    r.ok = false;
    r.message = rejected_text(*obj, r.code);
    return r;
  }
  pjson::value offsets, dups;
  if (pjson::find_member(*obj, "offsets", offsets) && offsets.is_array()) {
    (void)pjson::find_member(*obj, "duplicates", dups);
    pjson::array_reader ro(offsets);
    std::optional<pjson::array_reader> rd;
    if (dups.is_array()) rd.emplace(dups);
    pjson::value o, d;
    while (ro.next(o)) {
      if (!o.is_string()) return {errc::protocol_error, "publish reply offset is not a string"};
      publish_item_result item;
      item.offset = pjson::unescape(o);
      if (rd && rd->next(d)) item.duplicate = d.is_true();
      r.items.push_back(std::move(item));
    }
  } else {
    pjson::value o, d;
    if (!pjson::find_member(*obj, "offset", o) || !o.is_string())
      return {errc::protocol_error, "publish reply without offset(s)"};
    publish_item_result item;
    item.offset = pjson::unescape(o);
    item.duplicate = pjson::find_member(*obj, "duplicate", d) && d.is_true();
    r.items.push_back(std::move(item));
  }
  if (r.items.size() != count)
    return {errc::protocol_error, fmt::format("publish reply has {} results for {} events", r.items.size(), count)};
  return r;
}

bool retriable_publish_error(std::string_view code) noexcept {
  static constexpr std::array<std::string_view, 6> retriable = {"overloaded",    "rate_limited", "storage_unavailable",
                                                                "shutting_down", "storage_full", "unknown"};
  for (auto c : retriable)
    if (c == code) return true;
  return false;
}

std::string encode_subscribe(std::string_view topic, const start_position& from, std::string_view consumer,
                             delivery_mode mode) {
  std::string out = R"({"topic":)";
  pjson::append_quoted(out, topic);
  switch (from.where) {
    case start_position::kind::latest:
      out += R"(,"from":"latest")";
      break;
    case start_position::kind::earliest:
      out += R"(,"from":"earliest")";
      break;
    case start_position::kind::offset:
      out += R"(,"from":)";
      pjson::append_quoted(out, from.offset);
      break;
    case start_position::kind::time:
      fmt::format_to(std::back_inserter(out), R"(,"from":{{"time":{}}})", from.time_ms);
      break;
  }
  if (!consumer.empty()) {
    out += R"(,"consumer":)";
    pjson::append_quoted(out, consumer);
  }
  out += mode == delivery_mode::ack ? R"(,"mode":"ack"})" : R"(,"mode":"auto"})";
  return out;
}

std::string encode_topic_request(std::string_view topic) {
  std::string out = R"({"topic":)";
  pjson::append_quoted(out, topic);
  out.push_back('}');
  return out;
}

std::string encode_commit(std::string_view topic, std::string_view offset) {
  std::string out = R"({"topic":)";
  pjson::append_quoted(out, topic);
  out += R"(,"offset":)";
  pjson::append_quoted(out, offset);
  out.push_back('}');
  return out;
}

result<void> parse_ok_reply(std::string_view first_arg) {
  auto obj = parse_object(first_arg);
  if (!obj) return {errc::protocol_error, "reply is not a JSON object"};
  pjson::value ok;
  if (!pjson::find_member(*obj, "ok", ok) || ok.type != pjson::kind::boolean)
    return {errc::protocol_error, "reply without \"ok\""};
  if (ok.is_true()) return {};
  std::string code;
  return {errc::rejected, rejected_text(*obj, code)};
}

result<subscribe_ack> parse_subscribe_reply(std::string_view first_arg) {
  auto r = parse_ok_reply(first_arg);
  if (!r) return r.err();
  auto obj = parse_object(first_arg);
  subscribe_ack a;
  a.topic = string_member(*obj, "topic");
  a.head = string_member(*obj, "head");
  a.position = string_member(*obj, "position");
  return a;
}

std::optional<event> parse_delivery(const sio::message& m) {
  // [<data>, {topic, id, ts}, "<offset>"?]
  if (m.size() < 2 || m.size() > 3) return std::nullopt;
  auto meta = parse_object(m.arg(1));
  if (!meta) return std::nullopt;
  event e;
  pjson::value v;
  if (!pjson::find_member(*meta, "topic", v) || !v.is_string()) return std::nullopt;
  e.topic = pjson::unescape(v);
  if (pjson::find_member(*meta, "id", v)) {
    if (v.is_string())
      e.id = pjson::unescape(v);
    else
      e.id = std::string(v.raw);
  }
  if (pjson::find_member(*meta, "ts", v) && v.is_number()) (void)pjson::as_int64(v, e.ts);
  e.name = std::string(m.event());
  e.data = std::string(m.arg(0));
  if (m.size() == 3) {
    auto off = m.string_arg(2);
    if (!off) return std::nullopt;
    e.offset = std::move(*off);
  }
  e.attachments = m.attachments();
  return e;
}

std::optional<gap_info> parse_gap(const sio::message& m) {
  if (m.size() < 1) return std::nullopt;
  auto obj = parse_object(m.arg(0));
  if (!obj) return std::nullopt;
  gap_info g;
  g.topic = string_member(*obj, "topic");
  g.from = string_member(*obj, "from");
  g.first = string_member(*obj, "first");
  g.reason = string_member(*obj, "reason");
  return g;
}

bool offset_after(std::string_view a, std::string_view b, bool& comparable) noexcept {
  auto oa = protocol::parse_offset(a);
  auto ob = protocol::parse_offset(b);
  comparable = oa && ob && oa->epoch == ob->epoch;
  if (!comparable) return false;
  return oa->seq > ob->seq;
}

}  // namespace ferry::client::detail
