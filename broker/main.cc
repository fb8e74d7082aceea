// ferry-broker: the Ferry broker process.
#include <sched.h>
#include <sys/resource.h>

#include <algorithm>
#include <csignal>
#include <cstdio>

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <CLI/CLI.hpp>

#include "broker/config.h"
#include "broker/engine.h"
#include "broker/http_api.h"
#include "broker/http_server.h"
#include "broker/socketio.h"
#include "storage/log.h"
#include "storage/logging.h"

#ifndef FERRY_VERSION
#define FERRY_VERSION "dev"
#endif

using namespace ferry;
using namespace ferry::broker;

namespace {
constexpr log::logger logger("broker");

void raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }
}
// CPUs this process may run on (taskset, cgroup cpusets); at least 1.
unsigned usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  return std::max(1, CPU_COUNT(&set));
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ferry-broker " FERRY_VERSION
               ": a Socket.IO v4 broker with a durable event log and at-least-once delivery.\n"
               "Settings come from embedded defaults, then --config FILE (TOML, see ferry.example.toml), then flags."};
  app.set_version_flag("--version", FERRY_VERSION);
  std::string config_path, listen, data_dir, sync, log_level;
  std::vector<std::string> cors;
  bool dynamic = false, debug_faults = false;
  app.add_option("-c,--config", config_path, "TOML configuration file")->check(CLI::ExistingFile);
  app.add_option("-l,--listen", listen, "HOST:PORT to listen on (default 127.0.0.1:7070; port 0 picks a free one)");
  app.add_option("-d,--data-dir", data_dir, "data directory (default ./ferry-data)");
  app.add_option("--sync", sync, "durability of publish acks: none | batch | always (default none)");
  app.add_option("--log-level", log_level, "debug | info | warn | error | off (default info)");
  app.add_option("--cors-origin", cors, "allowed CORS origin (repeatable; \"*\" for any)");
  app.add_flag("--dynamic-namespaces", dynamic, "accept any namespace, configured like [defaults]");
  app.add_flag("--debug-storage-faults", debug_faults, "tests only: enable POST /v1/debug/storage-fault")->group("");
  CLI11_PARSE(app, argc, argv);

  broker_config cfg;
  try {
    if (!config_path.empty()) load_toml(config_path, cfg);
    if (!listen.empty() && !parse_listen(listen, cfg.listen.host, cfg.listen.port))
      throw std::runtime_error("--listen: expected HOST:PORT, got '" + listen + "'");
    if (!data_dir.empty()) cfg.data_dir = data_dir;
    if (!sync.empty() && !storage::parse_sync_mode(sync, cfg.storage.sync))
      throw std::runtime_error("--sync: expected none, batch or always, got '" + sync + "'");
    if (!log_level.empty() && !log::parse_level(log_level, cfg.log_level))
      throw std::runtime_error("--log-level: expected debug, info, warn, error or off");
    if (!cors.empty()) cfg.engine.cors_origins = cors;
    if (dynamic) cfg.delivery.dynamic_namespaces = true;
    cfg.debug_faults = debug_faults;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ferry-broker: %s\n", e.what());
    return 2;
  }
  log::set_level(cfg.log_level);
  raise_fd_limit();

  asio::io_context io(1);
  std::shared_ptr<storage::fault_injector> faults;
  if (cfg.debug_faults) {
    faults = std::make_shared<storage::fault_injector>();
    cfg.storage.faults = faults;
  }
  resolve_writer_thread(cfg, usable_cpus());
  cfg.storage.dispatch = [&io](std::function<void()> fn) { asio::post(io, std::move(fn)); };
  auto opened = storage::log::open(cfg.data_dir, cfg.storage);
  if (!opened) {
    std::fprintf(stderr, "ferry-broker: cannot open data directory %s: %.*s\n", cfg.data_dir.c_str(),
                 static_cast<int>(storage::to_string(opened.error()).size()), storage::to_string(opened.error()).data());
    return 1;
  }
  std::unique_ptr<storage::log> log_store = std::move(*opened);

  // WebSocket messages and POST bodies are bounded by maxPayload; the transport's own
  // limit sits above it so that Engine.IO can answer oversize bodies itself.
  cfg.listen.max_message_bytes = cfg.engine.max_payload;
  cfg.listen.max_http_body_bytes = cfg.engine.max_payload * 2 + 4096;
  cfg.engine.path = cfg.socketio.path;
  int exit_code = 0;
  try {
    http_server http(io, cfg.listen);
    sio::server sio_server(io, http, cfg.socketio, cfg.engine);
    engine eng(io, sio_server, *log_store, cfg.delivery);
    http_api api(http, eng, sio_server, faults);
    // Installed before anything announces the broker, so that a SIGTERM right after the
    // start-up line drains instead of killing the process.
    asio::signal_set signals(io, SIGINT, SIGTERM);
    asio::steady_timer drain(io);
    http.start();
    logger.info("ferry-broker {} started: {} port={} epoch={:08x}", FERRY_VERSION, describe(cfg), http.port(),
                log_store->epoch());
    std::printf("ferry-broker listening on %s:%u\n", cfg.listen.host.c_str(), static_cast<unsigned>(http.port()));
    std::fflush(stdout);

    signals.async_wait([&](const asio::error_code& ec, int sig) {
      if (ec) return;
      logger.info("received {}: draining", sig == SIGINT ? "SIGINT" : "SIGTERM");
      http.stop_accepting();
      eng.shutdown();
      // Give close frames and final responses a moment to leave.
      drain.expires_after(std::chrono::milliseconds(300));
      drain.async_wait([&](const asio::error_code&) { io.stop(); });
    });
    io.run();
  } catch (const std::exception& e) {
    logger.error("fatal: {}", e.what());
    exit_code = 1;
  }
  auto flushed = log_store->flush();
  log_store.reset();
  logger.info("ferry-broker {} stopped (final flush: {})", FERRY_VERSION, storage::to_string(flushed));
  return exit_code;
}
