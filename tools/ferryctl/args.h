// args.h - ferryctl's exit codes and the pure argument parsers (no I/O, unit-tested).
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "protocol/offset.h"

namespace ferry::ferryctl {

// Process exit codes (README "Exit codes", also printed by --help).
enum class exit_code : int {
  ok = 0,
  usage = 1,         // bad arguments or input; write commands in offline mode; output failure
  not_found = 2,     // unknown topic, consumer, dead-letter topic or namespace
  unavailable = 3,   // broker unreachable / timed out; data directory missing or unreadable
  broker_error = 4,  // the broker answered with an error (4xx/5xx) or an unexpected reply
  corruption = 5,    // storage corruption detected (offline read, or reported by the broker)
};

// The exit-code table as printed in --help.
[[nodiscard]] std::string_view exit_codes_help() noexcept;

// A command failure: one line for stderr and the exit code. Commands throw it; main()
// prints "ferryctl: <message>" and exits with the code. (The pure parsers below return
// nullopt + reason instead.)
class failure : public std::runtime_error {
 public:
  failure(exit_code code, const std::string& message) : std::runtime_error(message), _code(code) {}
  [[nodiscard]] exit_code code() const noexcept { return _code; }

 private:
  exit_code _code;
};

// --from of replay: "earliest" | "latest" | "<epoch:8hex>-<seq:16hex>" (inclusive) |
// "time:<ISO-8601>" | "time:<ms since the epoch>".
struct from_spec {
  enum class kind : uint8_t { earliest, latest, offset, time };
  kind what = kind::earliest;
  protocol::offset off{};  // kind::offset
  int64_t time_ms = 0;     // kind::time
};
[[nodiscard]] std::optional<from_spec> parse_from(std::string_view text, std::string& why);

// An offset argument (--to), with a readable reason on failure.
[[nodiscard]] std::optional<protocol::offset> parse_offset_arg(std::string_view text, std::string& why);

// positions set --to: "earliest" | "latest" | an offset.
[[nodiscard]] bool valid_position_target(std::string_view text, std::string& why);

// publish: defaults for fields a stdin line leaves out.
struct publish_defaults {
  std::string topic;  // --topic
  std::string event;  // --event ("" = let the broker default to "message")
};

// One stdin line {topic?, event?, data?, id?} -> the compact JSON object for the publish
// batch, members in the order topic, event, id, data. Returns "" for a blank line (skip)
// and nullopt + why for bad input (not an object, unknown key, wrong type, no topic).
[[nodiscard]] std::optional<std::string> publish_object_from_line(std::string_view line,
                                                                  const publish_defaults& defaults, std::string& why);

// The flags form: --topic --event --id --data (data must be JSON text; "" = no data).
[[nodiscard]] std::optional<std::string> publish_object_from_flags(std::string_view topic, std::string_view event,
                                                                   std::string_view id, std::string_view data,
                                                                   std::string& why);

}  // namespace ferry::ferryctl
