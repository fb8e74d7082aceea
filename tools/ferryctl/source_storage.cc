// Offline source: the data directory, opened as a read-only RocksDB secondary
// (storage/log.h, options::read_only), which is safe while a broker writes to it.
// Values are computed exactly as the broker's HTTP API computes them, so that online and
// offline output agree.
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <system_error>

#include <fmt/format.h>

#include "protocol/base64.h"
#include "protocol/json.h"
#include "storage/log.h"
#include "tools/ferryctl/args.h"
#include "tools/ferryctl/source.h"

namespace ferry::ferryctl {
namespace {

namespace pjson = ferry::protocol::json;

std::string_view view(const flatbuffers::String* s) {
  return s ? std::string_view(s->data(), s->size()) : std::string_view();
}

class offline_source final : public source {
 public:
  offline_source(std::unique_ptr<storage::log> log, std::string dir, std::string nsp)
      : _log(std::move(log)), _dir(std::move(dir)), _nsp(std::move(nsp)) {}

  bool online() const noexcept override { return false; }
  std::string where() const override { return "data directory " + _dir; }
  const std::string& namespace_name() const noexcept override { return _nsp; }
  uint32_t epoch() override { return _log->epoch(); }

  std::vector<topic_row> topics() override {
    uint32_t ns = ns_id();
    std::vector<topic_row> out;
    for (const auto& t : _log->topics(ns))
      out.push_back({t.name, {epoch(), t.last_seq}, {epoch(), t.first_seq + 1}, t.count, t.bytes, t.created_ms});
    return out;
  }

  protocol::offset namespace_head() override { return {epoch(), _log->head(ns_id())}; }

  events_page read(const std::string& topic, uint64_t from_seq, size_t limit) override {
    uint32_t ns = ns_id();
    // As the HTTP API: never before what retention keeps; from is inclusive.
    uint64_t after = std::max(_log->low_water(ns), from_seq > 0 ? from_seq - 1 : 0);
    events_page page;
    page.next_seq = after + 1;
    auto tid = _log->find_topic(ns, topic);
    if (!tid) return page;
    std::vector<storage::stored_event> evs;
    storage::errc e = _log->read(ns, *tid, after, std::clamp<size_t>(limit, 1, 10000), 16 << 20, evs);
    if (e == storage::errc::corruption) {
      throw failure(exit_code::corruption,
                    fmt::format("corrupt record in topic {} after offset {} ({})", topic,
                                protocol::format_offset({epoch(), evs.empty() ? after : evs.back().seq}), where()));
    }
    if (e != storage::errc::ok)
      throw failure(exit_code::unavailable, fmt::format("reading {}: {}", where(), storage::to_string(e)));
    for (const auto& ev : evs) page.events.push_back(to_record(ev));
    if (!evs.empty()) page.next_seq = evs.back().seq + 1;
    return page;
  }

  uint64_t seq_before_time(int64_t ts_ms) override { return _log->seq_before_time(ns_id(), ts_ms); }

  std::vector<position_row> positions(const std::string& consumer) override {
    uint32_t ns = ns_id();
    std::vector<position_row> out;
    for (const auto& p : _log->positions(ns)) {
      if (!consumer.empty() && p.consumer != consumer) continue;
      auto t = _log->topic(ns, p.topic_id);
      if (!t) continue;
      // The broker's lag (engine::consumer_lag): events of the topic after the position,
      // from the ordinal of the event at the position; a position that is not one of
      // the topic's events counts the whole topic (an upper bound).
      uint64_t lag = 0;
      if (p.seq < t->last_seq) {
        auto ev = p.seq > 0 ? _log->get(ns, p.topic_id, p.seq)
                            : storage::result<storage::stored_event>(storage::errc::not_found);
        if (!ev && ev.error() == storage::errc::corruption) {
          throw failure(exit_code::corruption, fmt::format("corrupt record in topic {} at offset {} ({})", t->name,
                                                           protocol::format_offset({epoch(), p.seq}), where()));
        }
        uint64_t ordinal = ev ? ev->event()->ordinal() : 0;
        lag = t->count > ordinal ? t->count - ordinal : 0;
        if (!ev && p.seq > 0) lag = t->count;
      }
      out.push_back({p.consumer, t->name, {epoch(), p.seq}, {epoch(), t->last_seq}, lag, p.updated_ms, std::nullopt});
    }
    return out;
  }

  std::vector<dlq_row> dlq() override {
    uint32_t ns = ns_id();
    std::vector<dlq_row> out;
    for (const auto& t : _log->topics(ns)) {
      if (!t.name.starts_with("$dlq.")) continue;
      uint64_t redriven = 0;
      if (auto p = _log->get_position(ns, "$redrive", t.id)) redriven = *p;
      out.push_back({t.name, t.name.substr(5), t.count, {epoch(), t.last_seq}, {epoch(), redriven}});
    }
    return out;
  }

  std::string stats_json() override {
    std::string out = R"({"ok":true,"mode":"offline","data_dir":)";
    pjson::append_quoted(out, _dir);
    out += fmt::format(R"(,"epoch":"{:08x}","namespaces":[)", epoch());
    uint64_t all_events = 0, all_bytes = 0, all_topics = 0;
    bool first = true;
    for (const auto& [name, id] : _log->namespaces()) {
      uint64_t events = 0, bytes = 0, dlq_events = 0;
      auto ts = _log->topics(id);
      for (const auto& t : ts) {
        events += t.count;
        bytes += t.bytes;
        if (t.name.starts_with("$dlq.")) dlq_events += t.count;
      }
      all_events += events;
      all_bytes += bytes;
      all_topics += ts.size();
      if (!first) out.push_back(',');
      first = false;
      out += R"({"name":)";
      pjson::append_quoted(out, name);
      out += fmt::format(
          R"(,"head":"{}","first":"{}","topics":{},"events":{},"bytes":{},"dead_letters":{},"consumers":{}}})",
          protocol::format_offset({epoch(), _log->head(id)}),
          protocol::format_offset({epoch(), _log->low_water(id) + 1}), ts.size(), events, bytes, dlq_events,
          count_consumers(id));
    }
    out += fmt::format(R"(],"topics":{},"events":{},"bytes":{},"corrupt_records":{}}})", all_topics, all_events,
                       all_bytes, _log->stats().corrupt_records);
    return out;
  }

  void refresh() override {
    storage::errc e = _log->refresh();
    if (e == storage::errc::corruption) throw failure(exit_code::corruption, fmt::format("{} is corrupt", where()));
    if (e != storage::errc::ok)
      throw failure(exit_code::unavailable, fmt::format("catching up with {}: {}", where(), storage::to_string(e)));
  }

 private:
  uint32_t ns_id() {
    auto id = _log->find_namespace(_nsp);
    if (!id) throw failure(exit_code::not_found, fmt::format("namespace {} does not exist in {}", _nsp, where()));
    return *id;
  }

  size_t count_consumers(uint32_t ns) {
    std::vector<std::string> names;
    for (const auto& p : _log->positions(ns))
      if (p.consumer != "$redrive" && (names.empty() || names.back() != p.consumer)) names.push_back(p.consumer);
    return names.size();
  }

  event_record to_record(const storage::stored_event& ev) {
    const schema::Event* e = ev.event();
    event_record rec;
    rec.offset = {epoch(), ev.seq};
    rec.topic = std::string(view(e->topic()));
    rec.event = std::string(view(e->event()));
    rec.id = view(e->id()).empty() ? protocol::format_offset(rec.offset) : std::string(view(e->id()));
    rec.ts_ms = e->ts_ms();
    rec.data = view(e->data()).empty() ? std::string("null") : std::string(view(e->data()));
    if (e->attachments()) {
      for (const auto* a : *e->attachments()) {
        rec.attachments.push_back(
            a && a->bytes()
                ? protocol::base64::encode({reinterpret_cast<const char*>(a->bytes()->data()), a->bytes()->size()})
                : std::string());
      }
    }
    if (e->origin_topic()) {
      rec.dlq = dlq_info{std::string(view(e->origin_topic())), protocol::format_offset({epoch(), e->origin_seq()}),
                         std::string(view(e->dlq_reason())), e->deliveries()};
    }
    return rec;
  }

  std::unique_ptr<storage::log> _log;
  std::string _dir;
  std::string _nsp;
};

}  // namespace

std::unique_ptr<source> open_offline(const std::string& dir, const std::string& nsp) {
  namespace fs = std::filesystem;
  std::error_code ec;
  auto st = fs::status(dir, ec);
  if (ec || !fs::exists(st))
    throw failure(exit_code::unavailable, fmt::format("data directory {} does not exist", dir));
  if (!fs::is_directory(st)) throw failure(exit_code::unavailable, fmt::format("{} is not a directory", dir));
  if (::access(dir.c_str(), R_OK | X_OK) != 0) {
    throw failure(exit_code::unavailable,
                  fmt::format("cannot read data directory {}: {}", dir, std::generic_category().message(errno)));
  }
  if (!fs::exists(fs::path(dir) / "CURRENT", ec)) {
    throw failure(exit_code::unavailable,
                  fmt::format("{} is not a Ferry data directory (no RocksDB database in it)", dir));
  }

  storage::options o;
  o.read_only = true;
  o.block_cache_bytes = 8 << 20;  // a CLI reads each record once
  auto opened = storage::log::open(dir, o);
  if (!opened) {
    storage::errc e = opened.error();
    if (e == storage::errc::corruption) {
      throw failure(
          exit_code::corruption,
          fmt::format("data directory {} is corrupt (the database or its metadata failed verification)", dir));
    }
    if (e == storage::errc::not_found)
      throw failure(exit_code::unavailable, fmt::format("{} is not a Ferry data directory", dir));
    throw failure(exit_code::unavailable, fmt::format("cannot open data directory {}: {}", dir, storage::to_string(e)));
  }
  return std::make_unique<offline_source>(std::move(*opened), dir, nsp);
}

}  // namespace ferry::ferryctl
