// libFuzzer target for protocol/json.h: json::parse and json::parse_first on arbitrary
// bytes, then every reader on what they accepted, with the properties the broker relies on.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "protocol/json.h"

namespace json = ferry::protocol::json;

namespace {

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Walks a validated value with the readers; every piece they return must itself be a
// valid document of the announced kind.
void walk(json::value v, unsigned depth) {
  FUZZ_CHECK(depth <= json::default_max_depth);
  auto alone = json::parse(v.raw);
  FUZZ_CHECK(alone.ok());
  FUZZ_CHECK(alone->type == v.type);
  FUZZ_CHECK(alone->raw == v.raw);

  switch (v.type) {
    case json::kind::array: {
      json::array_reader r(v);
      json::value e;
      while (r.next(e)) walk(e, depth + 1);
      FUZZ_CHECK(r.rest().empty() || r.rest().find_first_not_of(" \t\r\n") == std::string_view::npos);
      break;
    }
    case json::kind::object: {
      json::object_reader r(v);
      json::value k, e;
      while (r.next(k, e)) {
        FUZZ_CHECK(k.is_string());
        std::string key = json::unescape(k);
        json::value found;
        FUZZ_CHECK(json::find_member(v, key, found));  // finds this key (or a later duplicate)
        walk(e, depth + 1);
      }
      break;
    }
    case json::kind::string: {
      std::string text = json::unescape(v);
      FUZZ_CHECK(json::string_equals(v, text));
      // quoting the decoded text gives a JSON string that decodes to the same text
      std::string q = json::quoted(text);
      auto again = json::parse(q);
      FUZZ_CHECK(again.ok() && again->is_string());
      FUZZ_CHECK(json::unescape(*again) == text);
      FUZZ_CHECK(json::is_compact(q));
      break;
    }
    case json::kind::number: {
      uint64_t u = 0;
      int64_t i = 0;
      bool is_u = json::as_uint64(v, u);
      bool is_i = json::as_int64(v, i);
      if (is_u && is_i) FUZZ_CHECK(static_cast<uint64_t>(i) == u);
      // an integer has one JSON spelling (no leading zeros), except for the sign of -0
      if (is_u) FUZZ_CHECK(std::to_string(u) == v.raw);
      if (is_i) FUZZ_CHECK(std::to_string(i) == v.raw || v.raw == "-0");
      break;
    }
    case json::kind::boolean: FUZZ_CHECK(v.raw == "true" || v.raw == "false"); break;
    case json::kind::null: FUZZ_CHECK(v.raw == "null"); break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);

  // parse_first: the leading value, which is then a complete document by itself
  auto first = json::parse_first(text);
  if (first.ok()) {
    FUZZ_CHECK(first->raw.data() >= text.data() &&
               first->raw.data() + first->raw.size() <= text.data() + text.size());
    for (const char* p = text.data(); p < first->raw.data(); ++p) FUZZ_CHECK(is_ws(*p));
    auto alone = json::parse(first->raw);
    FUZZ_CHECK(alone.ok() && alone->type == first->type && alone->raw == first->raw);
  }

  auto r = json::parse(text);
  if (r.ok()) FUZZ_CHECK(first.ok() && first->raw == r->raw);
  if (!r.ok()) {
    FUZZ_CHECK(r.error() == ferry::protocol::errc::invalid_json || r.error() == ferry::protocol::errc::json_too_deep);
    return 0;
  }
  // the value is the input minus surrounding whitespace
  FUZZ_CHECK(r->raw.data() >= text.data() && r->raw.data() + r->raw.size() <= text.data() + text.size());
  for (const char* p = text.data(); p < r->raw.data(); ++p) FUZZ_CHECK(is_ws(*p));
  walk(*r, 0);

  std::string m = json::minify(text);
  FUZZ_CHECK(json::is_compact(m));
  FUZZ_CHECK(json::minify(m) == m);
  FUZZ_CHECK(json::is_compact(text) == (m == text));
  auto rm = json::parse(m);
  FUZZ_CHECK(rm.ok() && rm->type == r->type);
  return 0;
}
