// iso8601.h - timestamps for `--from time:...` and for pretty output.
//
// Accepted (ISO 8601 extended format / RFC 3339 profile):
//   2026-11-26                          midnight UTC of that day
//   2026-11-26T10:00Z                   seconds optional
//   2026-11-26T10:00:00Z                'T' may also be 't' or one space; 'Z' may be 'z'
//   2026-11-26T10:00:00.5Z              any number of fraction digits ('.' or ','),
//                                       truncated to milliseconds
//   2026-11-26T12:00:00+02:00           offsets +HH:MM, +HHMM or +HH (also '-')
// A date-time without a zone designator is rejected: local time would make the same
// command mean different instants on different machines. Leap seconds (:60) are rejected.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ferry::ferryctl {

// Milliseconds since the Unix epoch, or nullopt if `text` is not an accepted timestamp
// (then `why`, if given, says what is wrong).
[[nodiscard]] std::optional<int64_t> parse_iso8601_ms(std::string_view text, std::string* why = nullptr);

// "2026-11-26T10:00:00.123Z" (always UTC, always milliseconds).
[[nodiscard]] std::string format_iso8601_ms(int64_t ms);

}  // namespace ferry::ferryctl
