#include "tools/ferryctl/args.h"

#include <fmt/format.h>

#include "protocol/json.h"
#include "tools/ferryctl/iso8601.h"

namespace ferry::ferryctl {

namespace pjson = ferry::protocol::json;

std::string_view exit_codes_help() noexcept {
  return "Exit codes:\n"
         "  0  ok\n"
         "  1  usage error: bad arguments or input, a write command in offline mode\n"
         "  2  not found: unknown topic, consumer, dead-letter topic or namespace\n"
         "  3  broker unreachable or timed out; data directory missing or unreadable\n"
         "  4  the broker replied with an error\n"
         "  5  storage corruption detected\n";
}

std::optional<protocol::offset> parse_offset_arg(std::string_view text, std::string& why) {
  auto off = protocol::parse_offset(text);
  if (!off) {
    why = fmt::format("'{}' is not an offset (expected <epoch:8 hex>-<seq:16 hex>, e.g. 6a8d4a6c-0000000000000042)",
                      text);
    return std::nullopt;
  }
  return *off;
}

std::optional<from_spec> parse_from(std::string_view text, std::string& why) {
  from_spec f;
  if (text == "earliest") {
    f.what = from_spec::kind::earliest;
    return f;
  }
  if (text == "latest") {
    f.what = from_spec::kind::latest;
    return f;
  }
  if (text.starts_with("time:")) {
    std::string_view t = text.substr(5);
    f.what = from_spec::kind::time;
    if (!t.empty() && t.size() <= 18 && t.find_first_not_of("0123456789") == std::string_view::npos) {
      f.time_ms = std::stoll(std::string(t));  // ms since the epoch
      return f;
    }
    std::string reason;
    auto ms = parse_iso8601_ms(t, &reason);
    if (!ms) {
      why = fmt::format("bad time '{}': {} (expected e.g. time:2026-11-26T10:00:00Z)", t, reason);
      return std::nullopt;
    }
    f.time_ms = *ms;
    return f;
  }
  auto off = protocol::parse_offset(text);
  if (!off) {
    why = fmt::format(
        "bad --from '{}': expected earliest, latest, an offset (<epoch:8 hex>-<seq:16 hex>) or time:<ISO-8601>", text);
    return std::nullopt;
  }
  f.what = from_spec::kind::offset;
  f.off = *off;
  return f;
}

bool valid_position_target(std::string_view text, std::string& why) {
  if (text == "earliest" || text == "latest") return true;
  if (protocol::parse_offset(text)) return true;
  why = fmt::format("bad --to '{}': expected earliest, latest or an offset (<epoch:8 hex>-<seq:16 hex>)", text);
  return false;
}

namespace {

std::string build_object(std::string_view topic, std::string_view event, std::string_view id,
                         std::string_view data_json) {
  std::string out = R"({"topic":)";
  pjson::append_quoted(out, topic);
  if (!event.empty()) {
    out += R"(,"event":)";
    pjson::append_quoted(out, event);
  }
  if (!id.empty()) {
    out += R"(,"id":)";
    pjson::append_quoted(out, id);
  }
  if (!data_json.empty()) {
    out += R"(,"data":)";
    out += pjson::is_compact(data_json) ? std::string(data_json) : pjson::minify(data_json);
  }
  out.push_back('}');
  return out;
}

}  // namespace

std::optional<std::string> publish_object_from_line(std::string_view line, const publish_defaults& defaults,
                                                    std::string& why) {
  if (line.find_first_not_of(" \t\r\n") == std::string_view::npos) return std::string();
  // Event data may nest up to the broker's limit; the wrapper object adds one level.
  auto v = pjson::parse(line, pjson::default_max_depth + 1);
  if (!v) {
    why = fmt::format("not valid JSON ({})", protocol::to_string(v.error()));
    return std::nullopt;
  }
  if (!v->is_object()) {
    why = "expected a JSON object {topic?, event?, data?, id?}";
    return std::nullopt;
  }
  std::string topic = defaults.topic, event = defaults.event, id;
  std::string_view data;
  pjson::object_reader r(*v);
  pjson::value key, val;
  while (r.next(key, val)) {
    std::string k = pjson::unescape(key);
    if (k == "topic" || k == "event" || k == "id") {
      if (!val.is_string()) {
        why = fmt::format("\"{}\" must be a string", k);
        return std::nullopt;
      }
      (k == "topic" ? topic : k == "event" ? event : id) = pjson::unescape(val);
    } else if (k == "data") {
      data = val.raw;
    } else {
      why = fmt::format("unknown key \"{}\" (allowed: topic, event, data, id)", k);
      return std::nullopt;
    }
  }
  if (topic.empty()) {
    why = "no topic: give \"topic\" in the line or --topic";
    return std::nullopt;
  }
  return build_object(topic, event, id, data);
}

std::optional<std::string> publish_object_from_flags(std::string_view topic, std::string_view event,
                                                     std::string_view id, std::string_view data, std::string& why) {
  if (topic.empty()) {
    why = "--topic is required";
    return std::nullopt;
  }
  if (!data.empty()) {
    auto v = pjson::parse(data);
    if (!v) {
      why = fmt::format("--data is not valid JSON ({}); quote strings, e.g. --data '\"text\"'",
                        protocol::to_string(v.error()));
      return std::nullopt;
    }
    data = v->raw;
  }
  return build_object(topic, event, id, data);
}

}  // namespace ferry::ferryctl
