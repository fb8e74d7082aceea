// config.h - ferry-broker configuration: embedded defaults, a TOML file (--config), and
// command-line flags, applied in that order (flags win). ferry.example.toml documents
// every key with its default.
#pragma once

#include <string>
#include <vector>

#include "broker/engine.h"
#include "broker/engineio.h"
#include "broker/socketio.h"
#include "broker/transport.h"
#include "storage/log.h"
#include "storage/logging.h"

namespace ferry::broker {

struct broker_config {
  std::string data_dir = "./ferry-data";
  log::level log_level = log::level::info;
  transport_options listen{.host = "127.0.0.1", .port = 7070};
  eio::options engine;
  sio::options socketio;
  engine_options delivery;
  storage::options storage;
  // [storage] writer_thread: "on" commits on a writer thread, "off" commits on the io
  // thread (storage::options::inline_commit), "auto" picks "off" only when sync = "none"
  // and the process may run on a single CPU. Resolved by resolve_writer_thread().
  std::string writer_thread = "auto";
  bool debug_faults = false;  // tests only: POST /v1/debug/storage-fault toggles write failures
};

// Parses "30s", "500ms", "24h", "7d", "1m" or a bare integer (milliseconds).
[[nodiscard]] bool parse_duration(std::string_view text, std::chrono::milliseconds& out);
// Parses "HOST:PORT" (IPv6 as "[::1]:7070").
[[nodiscard]] bool parse_listen(std::string_view text, std::string& host, uint16_t& port);

// Loads a TOML file over `cfg`. Throws std::runtime_error with the file, key and reason
// on any unknown key, wrong type or invalid value (a start-up error).
void load_toml(const std::string& path, broker_config& cfg);

// Sets storage.inline_commit from writer_thread, the sync mode and `cpus` (the CPUs the
// process may run on).
void resolve_writer_thread(broker_config& cfg, unsigned cpus);

// One line describing the effective settings, for the start-up log.
[[nodiscard]] std::string describe(const broker_config& cfg);

}  // namespace ferry::broker
