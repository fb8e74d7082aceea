#include "tools/ferryctl/iso8601.h"

#include <fmt/format.h>

namespace ferry::ferryctl {
namespace {

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant, "chrono-compatible
// low-level date algorithms", days_from_civil).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void civil_from_days(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
}

bool leap(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

unsigned days_in_month(int64_t y, unsigned m) {
  static constexpr unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : days[m - 1];
}

class cursor {
 public:
  explicit cursor(std::string_view s) : _s(s) {}
  bool done() const { return _i == _s.size(); }
  char peek() const { return done() ? '\0' : _s[_i]; }
  bool eat(char c) {
    if (peek() != c) return false;
    ++_i;
    return true;
  }
  // Exactly n decimal digits.
  bool digits(size_t n, unsigned& out) {
    if (_s.size() - _i < n) return false;
    out = 0;
    for (size_t k = 0; k < n; ++k) {
      char c = _s[_i + k];
      if (c < '0' || c > '9') return false;
      out = out * 10 + static_cast<unsigned>(c - '0');
    }
    _i += n;
    return true;
  }
  bool digit_next() const { return !done() && _s[_i] >= '0' && _s[_i] <= '9'; }
  char take() { return _s[_i++]; }

 private:
  std::string_view _s;
  size_t _i = 0;
};

std::optional<int64_t> reject(std::string* why, std::string_view reason) {
  if (why) *why = std::string(reason);
  return std::nullopt;
}

}  // namespace

std::optional<int64_t> parse_iso8601_ms(std::string_view text, std::string* why) {
  cursor c(text);
  unsigned year = 0, month = 0, day = 0;
  if (!c.digits(4, year) || !c.eat('-') || !c.digits(2, month) || !c.eat('-') || !c.digits(2, day))
    return reject(why, "expected a date YYYY-MM-DD");
  if (month < 1 || month > 12) return reject(why, "month out of range");
  if (day < 1 || day > days_in_month(year, month)) return reject(why, "day out of range for that month");
  int64_t days = days_from_civil(year, month, day);
  if (c.done()) return days * 86'400'000;

  if (!(c.eat('T') || c.eat('t') || c.eat(' '))) return reject(why, "expected 'T' between date and time");
  unsigned hour = 0, minute = 0, second = 0, ms = 0;
  if (!c.digits(2, hour) || !c.eat(':') || !c.digits(2, minute)) return reject(why, "expected a time HH:MM[:SS[.fff]]");
  if (c.eat(':')) {
    if (!c.digits(2, second)) return reject(why, "expected seconds SS");
    if (c.eat('.') || c.eat(',')) {
      if (!c.digit_next()) return reject(why, "expected digits after the decimal point");
      unsigned scale = 100;
      while (c.digit_next()) {
        ms += static_cast<unsigned>(c.take() - '0') * scale;
        scale /= 10;
      }
    }
  }
  if (hour > 23) return reject(why, "hour out of range");
  if (minute > 59) return reject(why, "minute out of range");
  if (second > 59) return reject(why, "second out of range (leap seconds are not accepted)");

  int64_t offset_minutes = 0;
  if (c.eat('Z') || c.eat('z')) {
  } else if (c.peek() == '+' || c.peek() == '-') {
    int sign = c.take() == '-' ? -1 : 1;
    unsigned oh = 0, om = 0;
    if (!c.digits(2, oh)) return reject(why, "expected a zone offset +HH:MM");
    if (c.eat(':')) {
      if (!c.digits(2, om)) return reject(why, "expected a zone offset +HH:MM");
    } else if (c.digit_next()) {
      if (!c.digits(2, om)) return reject(why, "expected a zone offset +HHMM");
    }
    if (oh > 23 || om > 59) return reject(why, "zone offset out of range");
    offset_minutes = sign * static_cast<int64_t>(oh * 60 + om);
  } else if (c.done()) {
    return reject(why, "missing time zone: add Z (UTC) or an offset such as +02:00");
  } else {
    return reject(why, "unexpected characters after the time");
  }
  if (!c.done()) return reject(why, "unexpected characters after the time zone");
  int64_t seconds = days * 86'400 + int64_t{hour} * 3600 + int64_t{minute} * 60 + second - offset_minutes * 60;
  return seconds * 1000 + ms;
}

std::string format_iso8601_ms(int64_t ms) {
  int64_t days = ms >= 0 ? ms / 86'400'000 : -((-ms + 86'399'999) / 86'400'000);
  int64_t rest = ms - days * 86'400'000;
  int64_t y = 0;
  unsigned m = 0, d = 0;
  civil_from_days(days, y, m, d);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", y, m, d, rest / 3'600'000, rest / 60'000 % 60,
                     rest / 1000 % 60, rest % 1000);
}

}  // namespace ferry::ferryctl
