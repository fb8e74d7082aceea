#include "broker/config.h"

#include <charconv>
#include <stdexcept>

#include <fmt/format.h>
#include <toml++/toml.h>

namespace ferry::broker {

bool parse_duration(std::string_view text, std::chrono::milliseconds& out) {
  if (text.empty()) return false;
  size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  if (i == 0) return false;
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + i, n);
  if (ec != std::errc()) return false;
  std::string_view unit = text.substr(i);
  uint64_t mult;
  if (unit.empty() || unit == "ms") mult = 1;
  else if (unit == "s") mult = 1000;
  else if (unit == "m") mult = 60000;
  else if (unit == "h") mult = 3600000;
  else if (unit == "d") mult = 86400000;
  else return false;
  out = std::chrono::milliseconds(n * mult);
  return true;
}

bool parse_listen(std::string_view text, std::string& host, uint16_t& port) {
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view h = text.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  std::string_view p = text.substr(colon + 1);
  unsigned v = 0;
  auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
  if (ec != std::errc() || ptr != p.data() + p.size() || v > 65535) return false;
  host = std::string(h);
  port = static_cast<uint16_t>(v);
  return true;
}

namespace {

struct reader {
  const std::string& file;

  [[noreturn]] void fail(std::string_view key, std::string_view why) const {
    throw std::runtime_error(fmt::format("{}: {}: {}", file, key, why));
  }

  void check_keys(const toml::table& t, std::string_view section, std::initializer_list<std::string_view> allowed) const {
    for (const auto& [k, v] : t) {
      bool ok = false;
      for (auto a : allowed) ok |= (k.str() == a);
      if (!ok) fail(fmt::format("{}.{}", section, k.str()), "unknown key");
    }
  }

  template <class T>
  void integer(const toml::table& t, std::string_view section, std::string_view key, T& out) const {
    auto* n = t.get(key);
    if (!n) return;
    auto v = n->value<int64_t>();
    if (!v || *v < 0) fail(fmt::format("{}.{}", section, key), "expected a non-negative integer");
    out = static_cast<T>(*v);
  }
  void number(const toml::table& t, std::string_view section, std::string_view key, double& out) const {
    auto* n = t.get(key);
    if (!n) return;
    auto v = n->value<double>();
    if (!v || *v < 0) fail(fmt::format("{}.{}", section, key), "expected a non-negative number");
    out = *v;
  }
  void boolean(const toml::table& t, std::string_view section, std::string_view key, bool& out) const {
    auto* n = t.get(key);
    if (!n) return;
    auto v = n->value<bool>();
    if (!v) fail(fmt::format("{}.{}", section, key), "expected true or false");
    out = *v;
  }
  void string(const toml::table& t, std::string_view section, std::string_view key, std::string& out) const {
    auto* n = t.get(key);
    if (!n) return;
    auto v = n->value<std::string>();
    if (!v) fail(fmt::format("{}.{}", section, key), "expected a string");
    out = *v;
  }
  void duration(const toml::table& t, std::string_view section, std::string_view key, std::chrono::milliseconds& out) const {
    auto* n = t.get(key);
    if (!n) return;
    if (auto i = n->value<int64_t>(); i && *i >= 0 && n->is_integer()) {
      out = std::chrono::milliseconds(*i);
      return;
    }
    auto s = n->value<std::string>();
    if (!s || !parse_duration(*s, out))
      fail(fmt::format("{}.{}", section, key), "expected a duration like \"500ms\", \"30s\", \"24h\", \"7d\" or milliseconds");
  }
  void strings(const toml::table& t, std::string_view section, std::string_view key, std::vector<std::string>& out) const {
    auto* n = t.get(key);
    if (!n) return;
    auto* arr = n->as_array();
    if (!arr) fail(fmt::format("{}.{}", section, key), "expected an array of strings");
    out.clear();
    for (const auto& e : *arr) {
      auto s = e.value<std::string>();
      if (!s) fail(fmt::format("{}.{}", section, key), "expected an array of strings");
      out.push_back(*s);
    }
  }

  void namespace_settings(const toml::table& t, std::string_view section, namespace_config& ns) const {
    check_keys(t, section, {"recovery", "offsets", "retention_age", "retention_bytes", "dedupe_window", "ack_timeout",
                            "max_deliver", "max_in_flight", "session_ttl"});
    boolean(t, section, "recovery", ns.recovery);
    boolean(t, section, "offsets", ns.offsets);
    duration(t, section, "retention_age", ns.policy.retention_age);
    integer(t, section, "retention_bytes", ns.policy.retention_bytes);
    duration(t, section, "dedupe_window", ns.policy.dedupe_window);
    duration(t, section, "ack_timeout", ns.ack_timeout);
    integer(t, section, "max_deliver", ns.max_deliver);
    integer(t, section, "max_in_flight", ns.max_in_flight);
    duration(t, section, "session_ttl", ns.session_ttl);
    if (ns.max_deliver == 0) fail(fmt::format("{}.max_deliver", section), "must be at least 1");
    if (ns.max_in_flight == 0) fail(fmt::format("{}.max_in_flight", section), "must be at least 1");
  }
};

}  // namespace

void load_toml(const std::string& path, broker_config& cfg) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    throw std::runtime_error(fmt::format("{}:{}:{}: {}", path, e.source().begin.line, e.source().begin.column,
                                         e.description()));
  }
  reader r{path};
  r.check_keys(root, "", {"server", "storage", "limits", "defaults", "namespaces"});

  if (auto* t = root["server"].as_table()) {
    r.check_keys(*t, "server", {"listen", "data_dir", "log_level", "path", "cors_origins", "cors_credentials",
                                "transports", "allow_upgrades", "ping_interval", "ping_timeout", "upgrade_timeout",
                                "connect_timeout", "max_payload", "max_connections", "dynamic_namespaces"});
    std::string listen;
    r.string(*t, "server", "listen", listen);
    if (!listen.empty() && !parse_listen(listen, cfg.listen.host, cfg.listen.port))
      r.fail("server.listen", "expected HOST:PORT");
    r.string(*t, "server", "data_dir", cfg.data_dir);
    std::string level;
    r.string(*t, "server", "log_level", level);
    if (!level.empty() && !log::parse_level(level, cfg.log_level))
      r.fail("server.log_level", "expected debug, info, warn, error or off");
    r.string(*t, "server", "path", cfg.socketio.path);
    r.strings(*t, "server", "cors_origins", cfg.engine.cors_origins);
    r.boolean(*t, "server", "cors_credentials", cfg.engine.cors_credentials);
    std::vector<std::string> transports;
    r.strings(*t, "server", "transports", transports);
    if (t->get("transports")) {
      cfg.engine.allow_polling = cfg.engine.allow_websocket = false;
      for (const auto& x : transports) {
        if (x == "polling") cfg.engine.allow_polling = true;
        else if (x == "websocket") cfg.engine.allow_websocket = true;
        else r.fail("server.transports", "expected \"polling\" and/or \"websocket\"");
      }
      if (transports.empty()) r.fail("server.transports", "at least one transport");
    }
    r.boolean(*t, "server", "allow_upgrades", cfg.engine.allow_upgrades);
    r.duration(*t, "server", "ping_interval", cfg.engine.ping_interval);
    r.duration(*t, "server", "ping_timeout", cfg.engine.ping_timeout);
    r.duration(*t, "server", "upgrade_timeout", cfg.engine.upgrade_timeout);
    r.duration(*t, "server", "connect_timeout", cfg.socketio.connect_timeout);
    r.integer(*t, "server", "max_payload", cfg.engine.max_payload);
    r.integer(*t, "server", "max_connections", cfg.listen.max_connections);
    r.boolean(*t, "server", "dynamic_namespaces", cfg.delivery.dynamic_namespaces);
  }
  if (auto* t = root["storage"].as_table()) {
    r.check_keys(*t, "storage", {"sync", "block_cache_bytes", "write_buffer_bytes", "max_pending_writes", "writer_thread"});
    std::string sync;
    r.string(*t, "storage", "sync", sync);
    if (!sync.empty() && !storage::parse_sync_mode(sync, cfg.storage.sync))
      r.fail("storage.sync", "expected none, batch or always");
    r.integer(*t, "storage", "block_cache_bytes", cfg.storage.block_cache_bytes);
    r.integer(*t, "storage", "write_buffer_bytes", cfg.storage.write_buffer_bytes);
    r.integer(*t, "storage", "max_pending_writes", cfg.storage.max_pending_writes);
    r.string(*t, "storage", "writer_thread", cfg.writer_thread);
    if (cfg.writer_thread != "auto" && cfg.writer_thread != "on" && cfg.writer_thread != "off")
      r.fail("storage.writer_thread", "expected auto, on or off");
  }
  if (auto* t = root["limits"].as_table()) {
    r.check_keys(*t, "limits", {"max_topics_per_socket", "max_event_bytes", "max_batch_events", "max_pending_publishes",
                                "publish_rate", "publish_burst", "outbound_queue_bytes", "live_high_water",
                                "live_low_water", "max_attachments"});
    r.integer(*t, "limits", "max_topics_per_socket", cfg.delivery.max_topics_per_socket);
    r.integer(*t, "limits", "max_event_bytes", cfg.delivery.max_event_bytes);
    r.integer(*t, "limits", "max_batch_events", cfg.delivery.max_batch_events);
    r.integer(*t, "limits", "max_pending_publishes", cfg.delivery.max_pending_publishes);
    r.number(*t, "limits", "publish_rate", cfg.delivery.publish_rate);
    r.number(*t, "limits", "publish_burst", cfg.delivery.publish_burst);
    r.integer(*t, "limits", "outbound_queue_bytes", cfg.engine.max_buffered_bytes);
    r.integer(*t, "limits", "live_high_water", cfg.delivery.live_high_water);
    r.integer(*t, "limits", "live_low_water", cfg.delivery.live_low_water);
    r.integer(*t, "limits", "max_attachments", cfg.socketio.max_attachments);
  }
  namespace_config defaults = cfg.delivery.namespaces.empty() ? namespace_config{} : cfg.delivery.namespaces.front();
  if (auto* t = root["defaults"].as_table()) r.namespace_settings(*t, "defaults", defaults);
  cfg.delivery.dynamic_defaults = defaults;
  std::vector<namespace_config> list;
  if (auto* t = root["namespaces"].as_table()) {
    for (const auto& [name, node] : *t) {
      auto* nt = node.as_table();
      std::string section = fmt::format("namespaces.\"{}\"", name.str());
      if (!nt) r.fail(section, "expected a table");
      if (name.str().empty() || name.str()[0] != '/') r.fail(section, "namespace names start with '/'");
      namespace_config ns = defaults;
      ns.name = std::string(name.str());
      r.namespace_settings(*nt, section, ns);
      list.push_back(std::move(ns));
    }
  }
  bool has_root = false;
  for (const auto& ns : list) has_root |= ns.name == "/";
  if (!has_root) {
    namespace_config root_ns = defaults;
    root_ns.name = "/";
    list.insert(list.begin(), root_ns);
  }
  cfg.delivery.namespaces = std::move(list);
}

void resolve_writer_thread(broker_config& cfg, unsigned cpus) {
  if (cfg.writer_thread == "off") cfg.storage.inline_commit = true;
  else if (cfg.writer_thread == "on") cfg.storage.inline_commit = false;
  else cfg.storage.inline_commit = cfg.storage.sync == storage::sync_mode::none && cpus <= 1;
}

std::string describe(const broker_config& cfg) {
  std::string ns;
  for (const auto& n : cfg.delivery.namespaces) ns += (ns.empty() ? "" : ",") + n.name;
  return fmt::format(
      "listen={}:{} data_dir={} sync={} writer_thread={} namespaces=[{}] dynamic_namespaces={} transports={}{} ping={}ms/{}ms "
      "max_payload={} max_connections={} cors=[{}]",
      cfg.listen.host, cfg.listen.port, cfg.data_dir, storage::to_string(cfg.storage.sync),
      cfg.storage.inline_commit ? "off" : "on", ns,
      cfg.delivery.dynamic_namespaces, cfg.engine.allow_polling ? "polling," : "",
      cfg.engine.allow_websocket ? "websocket" : "", cfg.engine.ping_interval.count(), cfg.engine.ping_timeout.count(),
      cfg.engine.max_payload, cfg.listen.max_connections, fmt::join(cfg.engine.cors_origins, ","));
}

}  // namespace ferry::broker
