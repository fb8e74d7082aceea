#include "storage/logging.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace ferry::log {
namespace {
std::atomic<int> g_level{static_cast<int>(level::info)};
std::mutex g_mutex;
sink g_sink;

std::string_view name(level l) {
  switch (l) {
    case level::debug: return "DEBUG";
    case level::info: return "INFO ";
    case level::warn: return "WARN ";
    case level::error: return "ERROR";
    case level::off: break;
  }
  return "?    ";
}
}  // namespace

void set_sink(sink s) {
  std::lock_guard lock(g_mutex);
  g_sink = std::move(s);
}

void set_level(level l) { g_level.store(static_cast<int>(l), std::memory_order_relaxed); }

level current_level() noexcept { return static_cast<level>(g_level.load(std::memory_order_relaxed)); }

bool parse_level(std::string_view text, level& out) noexcept {
  if (text == "debug") out = level::debug;
  else if (text == "info") out = level::info;
  else if (text == "warn") out = level::warn;
  else if (text == "error") out = level::error;
  else if (text == "off") out = level::off;
  else return false;
  return true;
}

void write(level l, std::string_view module, std::string_view message) {
  std::lock_guard lock(g_mutex);
  if (g_sink) {
    g_sink(l, module, message);
    return;
  }
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  std::fprintf(stderr, "%s.%03dZ %.*s %.*s: %.*s\n", stamp, static_cast<int>(ms % 1000),
               static_cast<int>(name(l).size()), name(l).data(), static_cast<int>(module.size()), module.data(),
               static_cast<int>(message.size()), message.data());
}

}  // namespace ferry::log
