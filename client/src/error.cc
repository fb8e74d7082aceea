#include "ferry/client/error.h"

#include "ferry/client/log.h"
#include "ferry/client/version.h"

namespace ferry::client {

std::string_view to_string(errc e) noexcept {
  switch (e) {
    case errc::ok:
      return "ok";
    case errc::invalid_argument:
      return "invalid argument";
    case errc::invalid_url:
      return "invalid URL";
    case errc::connection_failed:
      return "connection failed";
    case errc::connect_timeout:
      return "connect timeout";
    case errc::connect_error:
      return "connection refused by the server (CONNECT_ERROR)";
    case errc::disconnected:
      return "disconnected";
    case errc::server_disconnect:
      return "disconnected by the server";
    case errc::ping_timeout:
      return "ping timeout";
    case errc::protocol_error:
      return "protocol error";
    case errc::reconnect_failed:
      return "reconnection failed";
    case errc::timeout:
      return "timed out";
    case errc::closed:
      return "closed";
    case errc::outbox_full:
      return "outbox full";
    case errc::dropped:
      return "dropped from a full outbox";
    case errc::would_block:
      return "would block the io_context thread";
    case errc::rejected:
      return "rejected by the broker";
    case errc::too_many_pending:
      return "too many pending acks";
    case errc::buffer_full:
      return "send buffer full";
    case errc::spool_error:
      return "spool I/O error";
    case errc::spool_corrupt:
      return "spool record corrupt";
    case errc::not_subscribed:
      return "not subscribed";
  }
  return "unknown error";
}

std::string_view to_string(log_level l) noexcept {
  switch (l) {
    case log_level::debug:
      return "debug";
    case log_level::info:
      return "info";
    case log_level::warn:
      return "warn";
    case log_level::error:
      return "error";
  }
  return "unknown";
}

std::string error::what() const {
  std::string out(to_string(code));
  if (!message.empty()) {
    out += ": ";
    out += message;
  }
  return out;
}

namespace {
class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "ferry.client"; }
  std::string message(int ev) const override { return std::string(to_string(static_cast<errc>(ev))); }
};
}  // namespace

const std::error_category& client_category() noexcept {
  static const category c;
  return c;
}

const char* version() noexcept {
  return FERRY_CLIENT_VERSION;
}

}  // namespace ferry::client
