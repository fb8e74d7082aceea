// logging.h - one named logger per module ("eio", "sio", "broker", "storage", ...), one
// process-wide sink. The default sink writes one line per record to stderr:
//   2026-11-26T10:00:00.123Z INFO  broker: listening on 127.0.0.1:7070
// Library code logs through this, never std::cout.
#pragma once

#include <atomic>
#include <functional>
#include <string_view>

#include <fmt/format.h>

namespace ferry::log {

enum class level : int { debug = 0, info = 1, warn = 2, error = 3, off = 4 };

using sink = std::function<void(level, std::string_view module, std::string_view message)>;

// Replaces the sink (nullptr restores stderr). Call before starting threads.
void set_sink(sink s);
void set_level(level l);
[[nodiscard]] level current_level() noexcept;
[[nodiscard]] bool parse_level(std::string_view text, level& out) noexcept;
void write(level l, std::string_view module, std::string_view message);

class logger {
 public:
  explicit constexpr logger(std::string_view module) : _module(module) {}

  template <class... Args>
  void debug(fmt::format_string<Args...> f, Args&&... args) const {
    emit(level::debug, f, std::forward<Args>(args)...);
  }
  template <class... Args>
  void info(fmt::format_string<Args...> f, Args&&... args) const {
    emit(level::info, f, std::forward<Args>(args)...);
  }
  template <class... Args>
  void warn(fmt::format_string<Args...> f, Args&&... args) const {
    emit(level::warn, f, std::forward<Args>(args)...);
  }
  template <class... Args>
  void error(fmt::format_string<Args...> f, Args&&... args) const {
    emit(level::error, f, std::forward<Args>(args)...);
  }
  [[nodiscard]] bool enabled(level l) const noexcept { return l >= current_level(); }

 private:
  template <class... Args>
  void emit(level l, fmt::format_string<Args...> f, Args&&... args) const {
    if (!enabled(l)) return;
    write(l, _module, fmt::format(f, std::forward<Args>(args)...));
  }
  std::string_view _module;
};

}  // namespace ferry::log
