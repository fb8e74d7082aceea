// support.h - helpers shared by the protocol unit tests: exact-size input buffers (so
// that ASan reports any read past the end of a frame), a seeded random source, a random
// JSON generator, and the two streaming accumulators used to feed codecs input that
// arrives in arbitrary chunks.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/json.h"

namespace ferry::protocol::test {

// A heap copy of `text` with no spare byte after it: a decoder that reads one byte too far
// trips AddressSanitizer instead of reading the next character of a longer string.
class exact_buffer {
 public:
  explicit exact_buffer(std::string_view text)
      : _size(text.size()), _bytes(std::make_unique<char[]>(text.size() == 0 ? 1 : text.size())) {
    if (_size > 0) std::memcpy(_bytes.get(), text.data(), _size);
  }
  // For size 0 the view still points at a live (1-byte) allocation it must not read.
  [[nodiscard]] std::string_view view() const noexcept { return {_bytes.get(), _size}; }

 private:
  size_t _size;
  std::unique_ptr<char[]> _bytes;
};

// Deterministic randomness: every test seeds its own generator so failures reproduce.
class random_source {
 public:
  explicit random_source(uint64_t seed) : _gen(seed) {}

  // Uniform in [lo, hi].
  uint64_t between(uint64_t lo, uint64_t hi) { return std::uniform_int_distribution<uint64_t>(lo, hi)(_gen); }
  bool chance(unsigned percent) { return between(1, 100) <= percent; }

  std::string bytes(size_t n) {
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>(between(0, 255));
    return s;
  }

  // A random Unicode scalar value (never a surrogate), biased towards the interesting
  // ranges: ASCII incl. control characters, 2-, 3- and 4-byte UTF-8.
  uint32_t code_point() {
    switch (between(0, 5)) {
      case 0: return static_cast<uint32_t>(between(0, 0x1F));
      case 1:
      case 2: return static_cast<uint32_t>(between(0x20, 0x7F));
      case 3: return static_cast<uint32_t>(between(0x80, 0x7FF));
      case 4: {
        auto cp = static_cast<uint32_t>(between(0x800, 0xFFFF - 0x800));
        return cp >= 0xD800 ? cp + 0x800 : cp;  // skip the surrogate block
      }
      default: return static_cast<uint32_t>(between(0x10000, 0x10FFFF));
    }
  }

  std::string utf8_string(size_t max_code_points) {
    std::string s;
    size_t n = between(0, max_code_points);
    for (size_t i = 0; i < n; ++i) append_utf8(s, code_point());
    return s;
  }

  static void append_utf8(std::string& out, uint32_t cp) {
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

  // Random cut points splitting [0, size) into non-empty chunks.
  std::vector<size_t> chunk_sizes(size_t size, size_t max_chunk) {
    std::vector<size_t> sizes;
    while (size > 0) {
      size_t n = between(1, std::min(size, max_chunk));
      sizes.push_back(n);
      size -= n;
    }
    return sizes;
  }

 private:
  std::mt19937_64 _gen;
};

// A random JSON value written the way JSON.stringify writes it (compact, strings escaped
// by json::quoted). `kind_of_root` lets callers ask for an array or object at the top.
struct generated_json {
  std::string text;
  json::kind type = json::kind::null;
};

inline generated_json random_json(random_source& rnd, unsigned depth_left,
                                  std::optional<json::kind> root = std::nullopt) {
  generated_json g;
  auto pick = root ? static_cast<unsigned>(*root)
                   : static_cast<unsigned>(rnd.between(0, depth_left > 0 ? 5 : 3));
  g.type = static_cast<json::kind>(pick);
  switch (g.type) {
    case json::kind::null: g.text = "null"; break;
    case json::kind::boolean: g.text = rnd.chance(50) ? "true" : "false"; break;
    case json::kind::number: {
      // one draw per statement: the order in which operands of + are evaluated is
      // unspecified, and the sequence must not depend on the compiler
      uint64_t a = rnd.between(0, 3);
      uint64_t b = rnd.between(1, UINT64_MAX);
      uint64_t c = rnd.between(0, 999);
      bool negative_exponent = rnd.chance(50);
      switch (a) {
        case 0: g.text = std::to_string(b % 1001); break;
        case 1: g.text = "-" + std::to_string(b); break;
        case 2: g.text = std::to_string(b % 100) + "." + std::to_string(c); break;
        default: g.text = std::to_string(b % 9 + 1) + "e" + (negative_exponent ? "-" : "+") + std::to_string(c % 31); break;
      }
      break;
    }
    case json::kind::string: g.text = json::quoted(rnd.utf8_string(12)); break;
    case json::kind::array: {
      g.text = "[";
      size_t n = depth_left > 0 ? rnd.between(0, 4) : 0;
      for (size_t i = 0; i < n; ++i) {
        if (i > 0) g.text += ',';
        g.text += random_json(rnd, depth_left - 1).text;
      }
      g.text += ']';
      break;
    }
    case json::kind::object: {
      g.text = "{";
      size_t n = depth_left > 0 ? rnd.between(0, 4) : 0;
      for (size_t i = 0; i < n; ++i) {
        if (i > 0) g.text += ',';
        g.text += json::quoted(rnd.utf8_string(6));
        g.text += ':';
        g.text += random_json(rnd, depth_left - 1).text;
      }
      g.text += '}';
      break;
    }
  }
  return g;
}

// Inserts random insignificant whitespace between the tokens of compact JSON.
inline std::string sprinkle_whitespace(random_source& rnd, std::string_view compact) {
  static constexpr char ws[] = {' ', '\t', '\n', '\r'};
  std::string out;
  bool in_string = false;
  auto maybe_ws = [&] {
    while (rnd.chance(30)) out.push_back(ws[rnd.between(0, 3)]);
  };
  maybe_ws();
  for (size_t i = 0; i < compact.size(); ++i) {
    char c = compact[i];
    if (in_string) {
      out.push_back(c);
      if (c == '\\') out.push_back(compact[++i]);
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    if (c == ',' || c == ':' || c == ']' || c == '}') maybe_ws();
    out.push_back(c);
    if (c == ',' || c == ':' || c == '[' || c == '{') maybe_ws();
  }
  maybe_ws();
  return out;
}

// Collects an HTTP request body that arrives in pieces, framed by its Content-Length (as
// a long-polling POST is). Only a complete body is handed to the payload decoder.
class http_body_accumulator {
 public:
  explicit http_body_accumulator(size_t content_length) : _expected(content_length) {}

  // False if the chunk overruns the announced length (a framing error).
  [[nodiscard]] bool feed(std::string_view chunk) {
    if (chunk.size() > _expected - _body.size()) return false;
    _body.append(chunk);
    return true;
  }
  [[nodiscard]] bool complete() const noexcept { return _body.size() == _expected; }
  [[nodiscard]] const std::string& body() const noexcept { return _body; }

 private:
  size_t _expected;
  std::string _body;
};

// The length-prefixed framing of Engine.IO v4 over a byte stream (v4-current.md
// "WebTransport"): 1, 3 or 9 header bytes whose top bit says binary, then the frame.
// Used here to push concatenated frames through the codecs in random chunks.
struct stream_frame {
  bool binary = false;
  std::string bytes;
};

inline void append_stream_frame(std::string& out, bool binary, std::string_view bytes) {
  size_t n = bytes.size();
  auto flag = static_cast<unsigned char>(binary ? 0x80 : 0);
  if (n < 126) {
    out.push_back(static_cast<char>(flag | n));
  } else if (n < 65536) {
    out.push_back(static_cast<char>(flag | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xFF));
  } else {
    out.push_back(static_cast<char>(flag | 127));
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((static_cast<uint64_t>(n) >> (8 * i)) & 0xFF));
  }
  out.append(bytes);
}

class frame_accumulator {
 public:
  // Appends a chunk and moves every frame it completes to `out`.
  void feed(std::string_view chunk, std::vector<stream_frame>& out) {
    _buffer.append(chunk);
    for (;;) {
      if (_buffer.empty()) return;
      auto h = static_cast<unsigned char>(_buffer[0]);
      size_t header = 1;
      uint64_t length = h & 0x7F;
      if (length == 126) header = 3;
      if (length == 127) header = 9;
      if (_buffer.size() < header) return;
      if (header > 1) {
        length = 0;
        for (size_t i = 1; i < header; ++i) length = (length << 8) | static_cast<unsigned char>(_buffer[i]);
      }
      if (_buffer.size() - header < length) return;
      out.push_back({(h & 0x80) != 0, _buffer.substr(header, length)});
      _buffer.erase(0, header + length);
    }
  }
  [[nodiscard]] size_t pending_bytes() const noexcept { return _buffer.size(); }

 private:
  std::string _buffer;
};

}  // namespace ferry::protocol::test
