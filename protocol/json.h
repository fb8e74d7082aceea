// json.h - a strict, allocation-free JSON scanner (RFC 8259) that keeps byte spans.
//
// Why hand-written: the broker relays event payloads without re-serialising them, so it
// needs the exact bytes of each value, and it must reject malformed JSON before relaying
// it to other clients (whose parsers would otherwise choke). simdjson's on-demand API
// skips values without fully validating them and its DOM loses the spans; nlohmann
// allocates a tree. This scanner validates a complete document in one pass and gives
// `value{kind, raw}` spans pointing into the caller's buffer.
//
// Contract: parse() accepts any byte sequence and never reads out of bounds. The
// readers (array_reader, object_reader, ...) must only be given values that came out of
// parse() (they rely on the text being valid).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/errors.h"

namespace ferry::protocol::json {

enum class kind : uint8_t { null, boolean, number, string, array, object };

struct value {
  kind type = kind::null;
  std::string_view raw;  // the exact bytes of the value (strings include their quotes)

  [[nodiscard]] bool is_string() const noexcept { return type == kind::string; }
  [[nodiscard]] bool is_object() const noexcept { return type == kind::object; }
  [[nodiscard]] bool is_array() const noexcept { return type == kind::array; }
  [[nodiscard]] bool is_number() const noexcept { return type == kind::number; }
  [[nodiscard]] bool is_true() const noexcept { return type == kind::boolean && raw == "true"; }
};

// Default nesting limit; deeper documents are rejected with errc::json_too_deep.
inline constexpr unsigned default_max_depth = 64;

// Validates that `text` holds exactly one JSON value (surrounding whitespace allowed).
// Strings must be valid UTF-8 and contain no raw control characters.
[[nodiscard]] result<value> parse(std::string_view text, unsigned max_depth = default_max_depth);
// As parse(); also reports whether the text holds no insignificant whitespace (what
// JSON.stringify produces), so relays can skip minify().
[[nodiscard]] result<value> parse(std::string_view text, unsigned max_depth, bool& compact);

// The first few elements of a top-level array, recorded while parse() walks it, so that
// callers need not scan the text again to find them.
struct array_index {
  static constexpr size_t capacity = 2;
  value elements[capacity];
  size_t count = 0;  // elements recorded (at most capacity); more may follow
};
[[nodiscard]] result<value> parse(std::string_view text, unsigned max_depth, bool& compact, array_index& index);

// Scans one JSON value at the start of `text` (after optional whitespace) and ignores
// what follows it, e.g. the first element of a comma-separated argument list.
[[nodiscard]] result<value> parse_first(std::string_view text, unsigned max_depth = default_max_depth);

// The first value of text that is already known to be valid JSON, e.g. the argument
// list of a decoded packet (no validation, no allocation).
[[nodiscard]] value first_value(std::string_view valid_text) noexcept;

// Walks the elements of a validated array.
class array_reader {
 public:
  explicit array_reader(value array) noexcept;
  // Stores the next element in `out`; false at the end.
  bool next(value& out) noexcept;
  // Bytes after the element last returned by next() (up to but excluding ']').
  [[nodiscard]] std::string_view rest() const noexcept;

 private:
  const char* _p;
  const char* _end;
};

// Walks the members of a validated object.
class object_reader {
 public:
  explicit object_reader(value object) noexcept;
  // Stores the next member; `key` is the raw key including quotes.
  bool next(value& key, value& out) noexcept;

 private:
  const char* _p;
  const char* _end;
};

// Finds the member named `key` (compared after unescaping) in a validated object. With
// duplicate keys the last one wins, as in JSON.parse.
[[nodiscard]] bool find_member(value object, std::string_view key, value& out);

// Decodes a validated string value to UTF-8 (escapes resolved).
[[nodiscard]] std::string unescape(value string);
// Compares a validated string value with `text` without allocating.
[[nodiscard]] bool string_equals(value string, std::string_view text);

// Integer reads of a validated number; false if it has a fraction/exponent or overflows.
[[nodiscard]] bool as_uint64(value number, uint64_t& out) noexcept;
[[nodiscard]] bool as_int64(value number, int64_t& out) noexcept;

// Appends `text` (UTF-8) as a JSON string literal, escaped like JSON.stringify.
void append_quoted(std::string& out, std::string_view text);
[[nodiscard]] std::string quoted(std::string_view text);

// True if the text has no insignificant whitespace outside strings (what JSON.stringify
// produces). Callers use it to decide whether a relay needs minify().
[[nodiscard]] bool is_compact(std::string_view valid_json) noexcept;
// Removes insignificant whitespace from valid JSON, keeping everything else byte-exact.
[[nodiscard]] std::string minify(std::string_view valid_json);

}  // namespace ferry::protocol::json
