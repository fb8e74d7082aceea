#include "tools/ferryctl/output.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>

#include "protocol/json.h"
#include "tools/ferryctl/args.h"
#include "tools/ferryctl/iso8601.h"

namespace ferry::ferryctl {

namespace pjson = ferry::protocol::json;

void append_event_jsonl(std::string& out, const event_record& e) {
  out += R"({"offset":")";
  protocol::append_offset(out, e.offset);
  out += R"(","topic":)";
  pjson::append_quoted(out, e.topic);
  out += R"(,"event":)";
  pjson::append_quoted(out, e.event);
  out += R"(,"id":)";
  pjson::append_quoted(out, e.id);
  fmt::format_to(std::back_inserter(out), R"(,"ts":{},"data":)", e.ts_ms);
  out += e.data.empty() ? std::string_view("null") : std::string_view(e.data);
  if (!e.attachments.empty()) {
    out += R"(,"attachments":[)";
    for (size_t i = 0; i < e.attachments.size(); ++i) {
      if (i) out.push_back(',');
      pjson::append_quoted(out, e.attachments[i]);
    }
    out.push_back(']');
  }
  if (e.dlq) {
    out += R"(,"dlq":{"topic":)";
    pjson::append_quoted(out, e.dlq->topic);
    out += R"(,"offset":)";
    pjson::append_quoted(out, e.dlq->offset);
    out += R"(,"reason":)";
    pjson::append_quoted(out, e.dlq->reason);
    fmt::format_to(std::back_inserter(out), R"(,"deliveries":{}}})", e.dlq->deliveries);
  }
  out.push_back('}');
}

void append_event_pretty(std::string& out, const event_record& e) {
  protocol::append_offset(out, e.offset);
  out += "  ";
  out += format_iso8601_ms(e.ts_ms);
  out += "  ";
  out += e.topic;
  out += "  ";
  out += e.event;
  out += "  id=";
  out += e.id;
  out += "  ";
  out += e.data.empty() ? std::string_view("null") : std::string_view(e.data);
  if (!e.attachments.empty())
    fmt::format_to(std::back_inserter(out), "  (+{} binary attachments)", e.attachments.size());
  if (e.dlq) {
    fmt::format_to(std::back_inserter(out), "  [dead letter of {} {}: {}, {} deliveries]", e.dlq->topic, e.dlq->offset,
                   e.dlq->reason, e.dlq->deliveries);
  }
}

void writer::line(std::string_view text) {
  _buf.append(text);
  _buf.push_back('\n');
  if (_buf.size() >= (64 << 10)) flush();
}

void writer::flush() {
  size_t done = 0;
  while (done < _buf.size()) {
    ssize_t n = ::write(STDOUT_FILENO, _buf.data() + done, _buf.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      _buf.clear();
      if (errno == EPIPE) throw output_closed{};
      throw failure(exit_code::usage, fmt::format("cannot write to stdout: {}", std::strerror(errno)));
    }
    done += static_cast<size_t>(n);
  }
  _buf.clear();
}

writer::~writer() {
  // Best effort; errors were reported by explicit flushes.
  size_t done = 0;
  while (done < _buf.size()) {
    ssize_t n = ::write(STDOUT_FILENO, _buf.data() + done, _buf.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
}

void print_table(writer& w, const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size());
  for (size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size() && i < width.size(); ++i) width[i] = std::max(width[i], r[i].size());
  auto emit = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (size_t i = 0; i < cells.size(); ++i) {
      line += cells[i];
      if (i + 1 < cells.size()) line.append(width[i] - cells[i].size() + 2, ' ');
    }
    w.line(line);
  };
  emit(header);
  for (const auto& r : rows) emit(r);
}

bool stderr_is_terminal() noexcept {
  return ::isatty(STDERR_FILENO) == 1;
}

progress_bar::progress_bar(bool enabled, uint64_t first_seq, uint64_t last_seq)
    : _enabled(enabled && last_seq >= first_seq), _first(first_seq), _last(last_seq) {
  if (_enabled) draw(first_seq > 0 ? first_seq - 1 : 0, 0);
}

void progress_bar::update(uint64_t seq, uint64_t events) {
  if (!_enabled) return;
  auto now = std::chrono::steady_clock::now();
  if (now < _next_draw) return;
  _next_draw = now + std::chrono::milliseconds(100);
  draw(seq, events);
}

void progress_bar::draw(uint64_t seq, uint64_t events) {
  constexpr int width = 30;
  double span = static_cast<double>(_last - _first + 1);
  double done = seq < _first ? 0.0 : static_cast<double>(std::min(seq, _last) - _first + 1) / span;
  int filled = static_cast<int>(done * width);
  std::string bar = fmt::format("\r[{}{}] {:3d}%  {} events", std::string(filled, '#'),
                                std::string(width - filled, '-'), static_cast<int>(done * 100), events);
  (void)!::write(STDERR_FILENO, bar.data(), bar.size());
  _drawn = true;
}

void progress_bar::finish() {
  if (!_enabled || !_drawn) return;
  static constexpr std::string_view clear = "\r\033[K";
  (void)!::write(STDERR_FILENO, clear.data(), clear.size());
  _drawn = false;
}

progress_bar::~progress_bar() {
  finish();
}

}  // namespace ferry::ferryctl
