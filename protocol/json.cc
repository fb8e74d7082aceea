#include "protocol/json.h"

#include <cstring>

namespace ferry::protocol::json {
namespace {

inline bool is_ws(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Skips string content that needs no attention: printable ASCII other than '"' and '\\'.
// Eight bytes per step (SWAR); returns the first byte that needs a closer look, or end.
inline const char* skip_plain(const char* p, const char* end) noexcept {
  constexpr uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
  while (end - p >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    uint64_t special = ((q - ones) & ~q) | ((b - ones) & ~b) | ((w - ones * 0x20) & ~w) | w;
    if ((special & highs) != 0) break;
    p += 8;
  }
  while (p < end) {
    auto c = static_cast<unsigned char>(*p);
    if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
    ++p;
  }
  return p;
}
inline bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
inline int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The validating scanner. Every method advances _p past what it accepted, or returns
// an error with _p somewhere inside the bad token.
class scanner {
 public:
  scanner(const char* begin, const char* end, unsigned max_depth) noexcept
      : _p(begin), _end(end), _max_depth(max_depth) {}

  void skip_ws() noexcept {
    const char* from = _p;
    while (_p < _end && is_ws(*_p)) ++_p;
    _saw_ws |= _p != from;
  }
  [[nodiscard]] bool saw_whitespace() const noexcept { return _saw_ws; }

  errc scan_value(value& out, unsigned depth) noexcept {
    skip_ws();
    if (_p >= _end) return errc::invalid_json;
    const char* start = _p;
    errc e = errc::ok;
    switch (*_p) {
      case '{':
        out.type = kind::object;
        e = scan_object(depth + 1);
        break;
      case '[':
        out.type = kind::array;
        e = scan_array(depth + 1);
        break;
      case '"':
        out.type = kind::string;
        e = scan_string();
        break;
      case 't':
        out.type = kind::boolean;
        e = literal("true");
        break;
      case 'f':
        out.type = kind::boolean;
        e = literal("false");
        break;
      case 'n':
        out.type = kind::null;
        e = literal("null");
        break;
      default:
        out.type = kind::number;
        e = scan_number();
        break;
    }
    if (e != errc::ok) return e;
    out.raw = std::string_view(start, static_cast<size_t>(_p - start));
    return errc::ok;
  }

  const char* pos() const noexcept { return _p; }
  const char* end() const noexcept { return _end; }

 private:
  errc literal(std::string_view word) noexcept {
    if (static_cast<size_t>(_end - _p) < word.size() || std::memcmp(_p, word.data(), word.size()) != 0)
      return errc::invalid_json;
    _p += word.size();
    return errc::ok;
  }

  errc scan_number() noexcept {
    if (_p < _end && *_p == '-') ++_p;
    if (_p >= _end) return errc::invalid_json;
    if (*_p == '0') {
      ++_p;
    } else if (*_p >= '1' && *_p <= '9') {
      while (_p < _end && is_digit(*_p)) ++_p;
    } else {
      return errc::invalid_json;
    }
    if (_p < _end && *_p == '.') {
      ++_p;
      if (_p >= _end || !is_digit(*_p)) return errc::invalid_json;
      while (_p < _end && is_digit(*_p)) ++_p;
    }
    if (_p < _end && (*_p == 'e' || *_p == 'E')) {
      ++_p;
      if (_p < _end && (*_p == '+' || *_p == '-')) ++_p;
      if (_p >= _end || !is_digit(*_p)) return errc::invalid_json;
      while (_p < _end && is_digit(*_p)) ++_p;
    }
    return errc::ok;
  }

  // Validates one UTF-8 sequence starting at a byte >= 0x80 (RFC 3629 table).
  errc scan_utf8() noexcept {
    auto b0 = static_cast<unsigned char>(*_p);
    size_t need = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      need = 1;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      need = 2;
      if (b0 == 0xE0) lo = 0xA0;
      if (b0 == 0xED) hi = 0x9F;  // no UTF-16 surrogates encoded in UTF-8
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      need = 3;
      if (b0 == 0xF0) lo = 0x90;
      if (b0 == 0xF4) hi = 0x8F;
    } else {
      return errc::invalid_json;
    }
    if (static_cast<size_t>(_end - _p) <= need) return errc::invalid_json;
    auto b1 = static_cast<unsigned char>(_p[1]);
    if (b1 < lo || b1 > hi) return errc::invalid_json;
    for (size_t i = 2; i <= need; ++i) {
      auto b = static_cast<unsigned char>(_p[i]);
      if (b < 0x80 || b > 0xBF) return errc::invalid_json;
    }
    _p += need + 1;
    return errc::ok;
  }

  errc scan_string() noexcept {
    ++_p;  // opening quote
    while (_p < _end) {
      _p = skip_plain(_p, _end);
      if (_p >= _end) break;
      auto c = static_cast<unsigned char>(*_p);
      if (c == '"') {
        ++_p;
        return errc::ok;
      }
      if (c == '\\') {
        ++_p;
        if (_p >= _end) return errc::invalid_json;
        switch (*_p) {
          case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            ++_p;
            break;
          case 'u':
            if (_end - _p < 5) return errc::invalid_json;
            for (int i = 1; i <= 4; ++i)
              if (hex_value(_p[i]) < 0) return errc::invalid_json;
            _p += 5;
            break;
          default:
            return errc::invalid_json;
        }
      } else if (c < 0x20) {
        return errc::invalid_json;
      } else if (c < 0x80) {
        ++_p;
      } else if (errc e = scan_utf8(); e != errc::ok) {
        return e;
      }
    }
    return errc::invalid_json;
  }

  errc scan_array(unsigned depth) noexcept {
    if (depth > _max_depth) return errc::json_too_deep;
    ++_p;  // '['
    skip_ws();
    if (_p < _end && *_p == ']') {
      ++_p;
      return errc::ok;
    }
    for (;;) {
      value v;
      if (errc e = scan_value(v, depth); e != errc::ok) return e;
      if (depth == 1 && _index && _index->count < array_index::capacity) _index->elements[_index->count++] = v;
      skip_ws();
      if (_p >= _end) return errc::invalid_json;
      if (*_p == ',') {
        ++_p;
        continue;
      }
      if (*_p == ']') {
        ++_p;
        return errc::ok;
      }
      return errc::invalid_json;
    }
  }

  errc scan_object(unsigned depth) noexcept {
    if (depth > _max_depth) return errc::json_too_deep;
    ++_p;  // '{'
    skip_ws();
    if (_p < _end && *_p == '}') {
      ++_p;
      return errc::ok;
    }
    for (;;) {
      skip_ws();
      if (_p >= _end || *_p != '"') return errc::invalid_json;
      if (errc e = scan_string(); e != errc::ok) return e;
      skip_ws();
      if (_p >= _end || *_p != ':') return errc::invalid_json;
      ++_p;
      value v;
      if (errc e = scan_value(v, depth); e != errc::ok) return e;
      skip_ws();
      if (_p >= _end) return errc::invalid_json;
      if (*_p == ',') {
        ++_p;
        continue;
      }
      if (*_p == '}') {
        ++_p;
        return errc::ok;
      }
      return errc::invalid_json;
    }
  }

  const char* _p;
  const char* _end;
  unsigned _max_depth;
  bool _saw_ws = false;

 public:
  array_index* _index = nullptr;  // when set, the root array's first elements are recorded
};

// Skips the rest of a string whose opening quote was consumed; returns past the closing quote.
const char* skip_valid_string(const char* p, const char* end) noexcept {
  for (;;) {
    p = skip_plain(p, end);
    if (p >= end) return end;
    if (*p == '"') return p + 1;
    p += *p == '\\' ? 2 : 1;  // an escape, or a UTF-8 / control byte (valid text has no control bytes)
  }
}

// Scans one value of already validated text without validating it again: strings are
// skipped eight bytes at a time and containers by bracket depth, so the readers below
// cost a fraction of parse(). Only ever given text that parse() accepted.
value next_value(const char*& p, const char* end) noexcept {
  value v;
  while (p < end && is_ws(*p)) ++p;
  if (p >= end) return v;
  const char* start = p;
  switch (*p) {
    case '"':
      v.type = kind::string;
      p = skip_valid_string(p + 1, end);
      break;
    case '{':
    case '[': {
      v.type = *p == '{' ? kind::object : kind::array;
      int depth = 0;
      while (p < end) {
        char c = *p++;
        if (c == '"') {
          p = skip_valid_string(p, end);
        } else if (c == '{' || c == '[') {
          ++depth;
        } else if (c == '}' || c == ']') {
          if (--depth == 0) break;
        }
      }
      break;
    }
    case 't':
    case 'f':
      v.type = kind::boolean;
      p += *p == 't' ? 4 : 5;
      break;
    case 'n':
      v.type = kind::null;
      p += 4;
      break;
    default:
      v.type = kind::number;
      while (p < end && *p != ',' && *p != ']' && *p != '}' && *p != ':' && !is_ws(*p)) ++p;
      break;
  }
  if (p > end) p = end;
  v.raw = std::string_view(start, static_cast<size_t>(p - start));
  return v;
}

const char* skip_ws(const char* p, const char* end) noexcept {
  while (p < end && is_ws(*p)) ++p;
  return p;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

uint32_t read_hex4(const char* p) noexcept {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 4) | static_cast<uint32_t>(hex_value(p[i]));
  return v;
}

}  // namespace

result<value> parse(std::string_view text, unsigned max_depth, bool& compact) {
  scanner s(text.data(), text.data() + text.size(), max_depth);
  value v;
  if (errc e = s.scan_value(v, 0); e != errc::ok) return e;
  s.skip_ws();
  if (s.pos() != s.end()) return errc::invalid_json;
  compact = !s.saw_whitespace();
  return v;
}

result<value> parse(std::string_view text, unsigned max_depth, bool& compact, array_index& index) {
  scanner s(text.data(), text.data() + text.size(), max_depth);
  index.count = 0;
  s._index = &index;
  value v;
  if (errc e = s.scan_value(v, 0); e != errc::ok) return e;
  s.skip_ws();
  if (s.pos() != s.end()) return errc::invalid_json;
  compact = !s.saw_whitespace();
  if (!v.is_array()) index.count = 0;
  return v;
}

result<value> parse(std::string_view text, unsigned max_depth) {
  bool compact = false;
  return parse(text, max_depth, compact);
}

result<value> parse_first(std::string_view text, unsigned max_depth) {
  scanner s(text.data(), text.data() + text.size(), max_depth);
  value v;
  if (errc e = s.scan_value(v, 0); e != errc::ok) return e;
  return v;
}

value first_value(std::string_view valid_text) noexcept {
  const char* p = valid_text.data();
  return next_value(p, p + valid_text.size());
}

array_reader::array_reader(value array) noexcept
    : _p(array.raw.data() + 1), _end(array.raw.data() + array.raw.size() - 1) {}

bool array_reader::next(value& out) noexcept {
  _p = skip_ws(_p, _end);
  if (_p < _end && *_p == ',') _p = skip_ws(_p + 1, _end);
  if (_p >= _end) return false;
  out = next_value(_p, _end);
  return true;
}

std::string_view array_reader::rest() const noexcept {
  return {_p, static_cast<size_t>(_end - _p)};
}

object_reader::object_reader(value object) noexcept
    : _p(object.raw.data() + 1), _end(object.raw.data() + object.raw.size() - 1) {}

bool object_reader::next(value& key, value& out) noexcept {
  _p = skip_ws(_p, _end);
  if (_p < _end && *_p == ',') _p = skip_ws(_p + 1, _end);
  if (_p >= _end) return false;
  key = next_value(_p, _end);
  _p = skip_ws(_p, _end);
  ++_p;  // ':'
  out = next_value(_p, _end);
  return true;
}

bool find_member(value object, std::string_view key, value& out) {
  // JSON.parse keeps the last of duplicate keys. Returning the first one would let a
  // payload pass our checks (e.g. a binary placeholder's "num") and then mean something
  // else to the JavaScript peers it is relayed to, so scan to the end.
  object_reader r(object);
  value k, v;
  bool found = false;
  while (r.next(k, v)) {
    if (string_equals(k, key)) {
      out = v;
      found = true;
    }
  }
  return found;
}

std::string unescape(value string) {
  std::string out;
  const char* p = string.raw.data() + 1;
  const char* end = string.raw.data() + string.raw.size() - 1;
  out.reserve(static_cast<size_t>(end - p));
  while (p < end) {
    if (*p != '\\') {
      const char* run = p;
      while (p < end && *p != '\\') ++p;
      out.append(run, static_cast<size_t>(p - run));
      continue;
    }
    ++p;
    switch (*p) {
      case 'b': out.push_back('\b'); ++p; break;
      case 'f': out.push_back('\f'); ++p; break;
      case 'n': out.push_back('\n'); ++p; break;
      case 'r': out.push_back('\r'); ++p; break;
      case 't': out.push_back('\t'); ++p; break;
      case 'u': {
        uint32_t cp = read_hex4(p + 1);
        p += 5;
        if (cp >= 0xD800 && cp <= 0xDBFF && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
          uint32_t lo = read_hex4(p + 2);
          if (lo >= 0xDC00 && lo <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            p += 6;
          }
        }
        if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;  // lone surrogate: what a UTF-8 encoder emits
        append_utf8(out, cp);
        break;
      }
      default: out.push_back(*p); ++p; break;  // '"', '\\', '/'
    }
  }
  return out;
}

bool string_equals(value string, std::string_view text) {
  std::string_view body = string.raw.substr(1, string.raw.size() - 2);
  if (body.find('\\') == std::string_view::npos) return body == text;
  return unescape(string) == text;
}

bool as_uint64(value number, uint64_t& out) noexcept {
  std::string_view s = number.raw;
  if (s.empty() || s[0] == '-') return false;
  uint64_t v = 0;
  for (char c : s) {
    if (!is_digit(c)) return false;
    auto d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  out = v;
  return true;
}

bool as_int64(value number, int64_t& out) noexcept {
  std::string_view s = number.raw;
  bool negative = !s.empty() && s[0] == '-';
  value magnitude{kind::number, negative ? s.substr(1) : s};
  uint64_t u = 0;
  if (!as_uint64(magnitude, u)) return false;
  if (negative) {
    if (u > static_cast<uint64_t>(INT64_MAX) + 1) return false;
    out = static_cast<int64_t>(0 - u);
  } else {
    if (u > static_cast<uint64_t>(INT64_MAX)) return false;
    out = static_cast<int64_t>(u);
  }
  return true;
}

void append_quoted(std::string& out, std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  out.push_back('"');
  size_t run = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(text.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\b': out.append("\\b"); break;
      case '\f': out.append("\\f"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      default: {
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};
        out.append(esc, 6);
      }
    }
  }
  out.append(text.data() + run, text.size() - run);
  out.push_back('"');
}

std::string quoted(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  append_quoted(out, text);
  return out;
}

bool is_compact(std::string_view valid_json) noexcept {
  const char* p = valid_json.data();
  const char* end = p + valid_json.size();
  while (p < end) {
    char c = *p++;
    if (is_ws(c)) return false;
    if (c != '"') continue;
    for (;;) {  // inside a string: only '"' and escapes matter
      p = skip_plain(p, end);
      if (p >= end) return true;
      if (*p == '"') {
        ++p;
        break;
      }
      p += *p == '\\' ? 2 : 1;
    }
  }
  return true;
}

std::string minify(std::string_view valid_json) {
  std::string out;
  out.reserve(valid_json.size());
  bool in_string = false;
  for (size_t i = 0; i < valid_json.size(); ++i) {
    char c = valid_json[i];
    if (in_string) {
      out.push_back(c);
      if (c == '\\' && i + 1 < valid_json.size()) out.push_back(valid_json[++i]);
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
      out.push_back(c);
    } else if (!is_ws(c)) {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace ferry::protocol::json
