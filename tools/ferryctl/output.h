// output.h - how ferryctl prints: JSON lines or human-readable text on stdout, and a
// progress bar on stderr.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tools/ferryctl/source.h"

namespace ferry::ferryctl {

enum class format : uint8_t { jsonl, pretty };

// {"offset","topic","event","id","ts","data"[,"attachments"][,"dlq"]}: the same bytes
// as the broker's GET /v1/topics/<topic>/events elements.
void append_event_jsonl(std::string& out, const event_record& e);
// "<offset>  <ISO time>  <topic>  <event>  id=<id>  <data>" (+ attachments, dlq origin).
void append_event_pretty(std::string& out, const event_record& e);

// Thrown when stdout is closed by the reader (EPIPE, e.g. `| head`): stop quietly.
struct output_closed {};

// Buffered writes to stdout. Throws output_closed on EPIPE and failure(usage) on any
// other write error.
class writer {
 public:
  void line(std::string_view text);  // text + '\n'
  void flush();
  ~writer();

 private:
  std::string _buf;
};

// Left-aligned columns separated by two spaces; the header row first.
void print_table(writer& w, const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);

// A one-line progress bar on stderr, redrawn at most 10 times a second:
//   [##########----------]  50%  1234 events  5678-0000000000001234
// Progress is the position of the last printed offset's seq within [first, last].
// Draws nothing unless enabled (stderr is a terminal and the caller wants it).
class progress_bar {
 public:
  progress_bar(bool enabled, uint64_t first_seq, uint64_t last_seq);
  void update(uint64_t seq, uint64_t events);
  void finish();  // erases the bar
  ~progress_bar();

 private:
  void draw(uint64_t seq, uint64_t events);
  bool _enabled;
  bool _drawn = false;
  uint64_t _first, _last;
  std::chrono::steady_clock::time_point _next_draw{};
};

// Whether stderr is a terminal (progress bars are only drawn there).
[[nodiscard]] bool stderr_is_terminal() noexcept;

}  // namespace ferry::ferryctl
