// log.h - logging through a sink the application supplies. The library never writes to
// stdout/stderr itself; without a sink it is silent.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

#include "ferry/client/export.h"

namespace ferry::client {

enum class log_level : uint8_t { debug, info, warn, error };

[[nodiscard]] FERRY_CLIENT_API std::string_view to_string(log_level l) noexcept;

// Called on the io_context thread that runs the client (or, for messages from publish()
// and constructors, on the calling thread). Must not block and must not throw; the
// message is only valid during the call.
using log_sink = std::function<void(log_level level, std::string_view message)>;

}  // namespace ferry::client
