// logging.h - the client module's logger: formats with fmt and hands the line to the
// application's log_sink. Lines below the minimum level are not formatted. Never throws:
// a sink that throws is ignored (logging must not break the caller).
#pragma once

#include <string>
#include <utility>

#include <fmt/format.h>

#include "ferry/client/log.h"

namespace ferry::client::detail {

class logger {
 public:
  logger() = default;
  logger(log_sink sink, log_level min, std::string prefix)
      : _sink(std::move(sink)), _min(min), _prefix(std::move(prefix)) {}

  [[nodiscard]] bool enabled(log_level l) const noexcept { return _sink && l >= _min; }

  template <class... A>
  void log(log_level l, fmt::format_string<A...> f, A&&... a) const noexcept {
    if (!enabled(l)) return;
    try {
      std::string line = _prefix;
      fmt::format_to(std::back_inserter(line), f, std::forward<A>(a)...);
      _sink(l, line);
    } catch (...) {  // NOLINT(bugprone-empty-catch): a failing sink must not break the caller
    }
  }
  template <class... A>
  void debug(fmt::format_string<A...> f, A&&... a) const noexcept {
    log(log_level::debug, f, std::forward<A>(a)...);
  }
  template <class... A>
  void info(fmt::format_string<A...> f, A&&... a) const noexcept {
    log(log_level::info, f, std::forward<A>(a)...);
  }
  template <class... A>
  void warn(fmt::format_string<A...> f, A&&... a) const noexcept {
    log(log_level::warn, f, std::forward<A>(a)...);
  }
  template <class... A>
  void error(fmt::format_string<A...> f, A&&... a) const noexcept {
    log(log_level::error, f, std::forward<A>(a)...);
  }

 private:
  log_sink _sink;
  log_level _min = log_level::info;
  std::string _prefix;
};

}  // namespace ferry::client::detail
