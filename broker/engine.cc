#include "broker/engine.h"

#include <algorithm>
#include <charconv>
#include <deque>
#include <map>

#include <asio/post.hpp>
#include <fmt/format.h>

#include "broker/random.h"
#include "protocol/json.h"
#include "protocol/offset.h"
#include "protocol/socketio.h"
#include "storage/logging.h"

namespace ferry::broker {

namespace pjson = ferry::protocol::json;
namespace psio = ferry::protocol::sio;
using storage::delivery_mode;

namespace {
constexpr log::logger logger("broker");

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// {"ok":false,"error":{"code":"<code>","message":"<message>"}}
std::string error_reply(std::string_view code, std::string_view message) {
  std::string out = R"({"ok":false,"error":{"code":)";
  pjson::append_quoted(out, code);
  out += R"(,"message":)";
  pjson::append_quoted(out, message);
  out += "}}";
  return out;
}

std::string_view storage_error_code(storage::errc e) {
  switch (e) {
    case storage::errc::overloaded: return "overloaded";
    case storage::errc::no_space: return "storage_full";
    case storage::errc::too_many_topics: return "too_many_topics";
    case storage::errc::closed: return "shutting_down";
    default: return "storage_unavailable";
  }
}

bool valid_name_chars(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}

constexpr std::string_view reserved_events[] = {"subscribe", "unsubscribe", "publish", "commit"};

bool reserved_event(std::string_view name) {
  if (psio::is_reserved_event(name) || (!name.empty() && name[0] == '$')) return true;
  for (auto r : reserved_events)
    if (r == name) return true;
  return false;
}

}  // namespace

// ---------------------------------------------------------------------------------
// runtime state

struct engine::subscription {
  std::weak_ptr<session_rt> session;
  std::string topic;
  uint32_t topic_id = 0;  // 0 until the topic has its first event
  delivery_mode mode = delivery_mode::automatic;
  std::string consumer;   // named consumer ("" = the session's own position)
  uint64_t from_seq = 0;
  uint64_t history_end = 0;
  uint64_t history_next = 0;  // last history seq sent; history pending while < history_end
  int64_t from_time_ms = 0;   // from {"time":..}: events older than this are skipped
  uint64_t last_sent = 0;     // auto: last seq sent on this topic
  bool position_dirty = false;
  // merged catch-up buffer (auto)
  std::deque<storage::stored_event> buffer;
  uint64_t buffer_after = 0;  // last seq read into the buffer
  // ack mode
  uint64_t cursor = 0;     // last seq sent
  uint64_t committed = 0;  // every seq <= committed is acked (or dead-lettered)
  std::map<uint64_t, uint32_t> in_flight;  // seq -> deliveries so far
  std::deque<uint64_t> redeliver;          // seqs whose ack timed out
  bool removed = false;

  [[nodiscard]] uint64_t threshold() const noexcept { return std::max(from_seq, history_end); }
  [[nodiscard]] bool history_pending() const noexcept {
    return mode == delivery_mode::automatic && history_next < history_end && from_seq < history_end;
  }
};

struct engine::topic_rt {
  std::string name;
  uint32_t id = 0;
  std::vector<subscription*> auto_subs;
  std::vector<subscription*> ack_subs;
};

struct engine::session_rt : std::enable_shared_from_this<engine::session_rt> {
  enum class state : uint8_t { connecting, catching_up, live, closed };
  ns_rt* ns = nullptr;
  std::weak_ptr<sio::socket> sock;
  sio::socket* raw = nullptr;
  std::string pid;
  std::string consumer;
  bool offsets = true;
  std::vector<std::shared_ptr<subscription>> subs;
  uint64_t cursor = 0;  // session (merged) cursor: last seq of the auto stream sent
  uint64_t base = 0;
  state st = state::connecting;
  bool pump_scheduled = false;
  bool sent_offset = false;
  std::function<void()> on_caught_up;  // sends the CONNECT ack of a recovery
  size_t pending_publishes = 0;
  double tokens = 0;
  std::chrono::steady_clock::time_point refill{};
  std::unique_ptr<asio::steady_timer> timer;

  subscription* find(std::string_view topic) {
    for (auto& s : subs)
      if (s->topic == topic) return s.get();
    return nullptr;
  }
};

struct engine::ns_rt {
  namespace_config cfg;
  uint32_t id = 0;
  sio::namespace_* nsp = nullptr;
  uint64_t head = 0;
  uint32_t epoch = 0;
  std::unordered_map<std::string, std::unique_ptr<topic_rt>> topics;  // by name
  std::unordered_map<uint32_t, topic_rt*> topics_by_id;
  std::unordered_map<std::string, session_rt*> sessions;  // pid -> owner (recovery)
  std::vector<std::weak_ptr<session_rt>> all_sessions;      // for periodic work

  [[nodiscard]] std::string offset(uint64_t seq) const { return protocol::format_offset({epoch, seq}); }
};

// ---------------------------------------------------------------------------------

engine::engine(asio::io_context& io, sio::server& sio, storage::log& log, engine_options opts)
    : _io(io), _sio(sio), _log(log), _opts(std::move(opts)), _retention_timer(io), _position_timer(io) {
  for (const auto& cfg : _opts.namespaces) setup_namespace(_sio.of(cfg.name), cfg);
  if (_opts.dynamic_namespaces) {
    _sio.allow_namespaces([](std::string_view name, const std::string&) { return !name.empty() && name[0] == '/'; },
                          [this](sio::namespace_& nsp) {
                            namespace_config cfg = _opts.dynamic_defaults;
                            cfg.name = nsp.name();
                            setup_namespace(nsp, cfg);
                          });
  }
  tick_retention();
  tick_positions();
}

engine::~engine() { *_alive = false; }

std::optional<uint32_t> engine::namespace_id(std::string_view nsp) const {
  auto it = _namespaces.find(std::string(nsp));
  if (it == _namespaces.end()) return std::nullopt;
  return it->second->id;
}

engine::ns_rt& engine::setup_namespace(sio::namespace_& nsp, const namespace_config& cfg) {
  auto id = _log.namespace_id(cfg.name);
  if (!id) throw std::runtime_error(fmt::format("cannot create namespace {}: {}", cfg.name, to_string(id.error())));
  _log.set_policy(*id, cfg.policy);
  auto rt = std::make_unique<ns_rt>();
  rt->cfg = cfg;
  rt->id = *id;
  rt->nsp = &nsp;
  rt->head = _log.head(*id);
  rt->epoch = _log.epoch();
  for (const auto& t : _log.topics(*id)) link_topic(*rt, topic_for(*rt, t.name), t.id);
  ns_rt& ns = *rt;
  _namespaces[cfg.name] = std::move(rt);
  nsp.options.send_pid = cfg.recovery;

  nsp.set_connect_hook([this, &ns](const sio::socket_ptr& s, std::function<void(sio::connect_outcome)> done) {
    on_connect(ns, s, std::move(done));
  });
  auto with_session = [](auto member) {
    return [member](const sio::socket_ptr& s, sio::message& m, sio::responder r) {
      auto st = std::static_pointer_cast<session_rt>(s->data);
      if (st && st->st != session_rt::state::closed) member(*st, m, std::move(r));
    };
  };
  nsp.on("subscribe", with_session([this](session_rt& s, sio::message& m, sio::responder r) { on_subscribe(s, m, std::move(r)); }));
  nsp.on("unsubscribe", with_session([this](session_rt& s, sio::message& m, sio::responder r) { on_unsubscribe(s, m, std::move(r)); }));
  nsp.on("commit", with_session([this](session_rt& s, sio::message& m, sio::responder r) { on_commit(s, m, std::move(r)); }));
  nsp.on("publish", with_session([this](session_rt& s, sio::message& m, sio::responder r) { on_publish(s, m, std::move(r)); }));
  logger.info("namespace {}: recovery {}, offsets {}, retention {} ms / {} bytes, dedupe window {} ms", cfg.name,
              cfg.recovery ? "on" : "off", cfg.offsets ? "on" : "off", cfg.policy.retention_age.count(),
              cfg.policy.retention_bytes, cfg.policy.dedupe_window.count());
  return ns;
}

engine::topic_rt& engine::topic_for(ns_rt& ns, const std::string& name) {
  auto it = ns.topics.find(name);
  if (it != ns.topics.end()) return *it->second;
  auto t = std::make_unique<topic_rt>();
  t->name = name;
  auto& ref = *t;
  ns.topics.emplace(name, std::move(t));
  return ref;
}

void engine::link_topic(ns_rt& ns, topic_rt& t, uint32_t id) {
  if (t.id == id) return;
  t.id = id;
  ns.topics_by_id[id] = &t;
  for (auto* s : t.auto_subs) s->topic_id = id;
  for (auto* s : t.ack_subs) s->topic_id = id;
}

// ---------------------------------------------------------------------------------
// publish

void engine::on_publish(session_rt& s, sio::message& m, sio::responder reply) {
  // The payload is the first argument; the decoder validated the whole packet, so it is
  // taken without scanning it again. Anything after it is ignored. The reply is the ack.
  pjson::value v = m.first_arg();
  if (v.raw.empty()) {
    ++_stats.publish_errors;
    reply.send(error_reply("invalid_payload", "publish expects a JSON object or an array of objects"));
    return;
  }
  do_publish(*s.ns, &s, v, m.compact(), m.attachments(),
             [reply](std::string json) mutable { reply.send(std::move(json)); });
}

void engine::publish(std::string_view nsp, std::string_view payload, std::vector<std::string> attachments,
                     std::function<void(std::string)> reply) {
  auto it = _namespaces.find(std::string(nsp));
  if (it == _namespaces.end()) {
    reply(error_reply("unknown_namespace", fmt::format("namespace {} is not served", nsp)));
    return;
  }
  bool compact = false;
  auto doc = pjson::parse(payload, pjson::default_max_depth, compact);
  if (!doc) {
    ++_stats.publish_errors;
    reply(error_reply("invalid_payload", "publish expects a JSON object or an array of objects"));
    return;
  }
  do_publish(*it->second, nullptr, *doc, compact, attachments, std::move(reply));
}

void engine::do_publish(ns_rt& ns, session_rt* from, pjson::value doc, bool compact,
                        std::vector<std::string>& attachments, std::function<void(std::string)> reply) {
  auto fail = [&](std::string_view code, std::string_view message) {
    ++_stats.publish_errors;
    reply(error_reply(code, message));
  };
  if (_shutting_down) return fail("shutting_down", "the broker is shutting down");
  bool batch = doc.is_array();
  std::vector<pjson::value> items;
  if (batch) {
    pjson::array_reader r(doc);
    pjson::value v;
    while (r.next(v)) items.push_back(v);
    if (items.empty()) return fail("invalid_payload", "empty publish batch");
    if (items.size() > _opts.max_batch_events)
      return fail("too_large", fmt::format("a batch holds at most {} events", _opts.max_batch_events));
    if (!attachments.empty()) return fail("invalid_payload", "binary attachments need a single-event publish");
  } else {
    items.push_back(doc);
  }
  std::vector<storage::event_input> events;
  events.reserve(items.size());
  for (const auto& item : items) {
    if (!item.is_object()) return fail("invalid_payload", "each published event must be a JSON object");
    // One pass over the members; a repeated key keeps its last value, as JSON.parse does.
    pjson::value topic_v, event_v, id_v, data_v, key, val;
    bool has_topic = false, has_event = false, has_id = false, has_data = false;
    for (pjson::object_reader r(item); r.next(key, val);) {
      // Keys are compared raw (with quotes); only a key with an escape needs unescaping.
      bool plain = key.raw.find('\\') == std::string_view::npos;
      auto is = [&](std::string_view quoted, std::string_view name) {
        return plain ? key.raw == quoted : pjson::string_equals(key, name);
      };
      if (is(R"("topic")", "topic")) has_topic = true, topic_v = val;
      else if (is(R"("event")", "event")) has_event = true, event_v = val;
      else if (is(R"("id")", "id")) has_id = true, id_v = val;
      else if (is(R"("data")", "data")) has_data = true, data_v = val;
    }
    storage::event_input ev;
    pjson::value v;
    if (!has_topic || !topic_v.is_string()) return fail("invalid_topic", "\"topic\" must be a string");
    ev.topic = pjson::unescape(topic_v);
    if (ev.topic.empty() || ev.topic.size() > _opts.max_topic_bytes || !valid_name_chars(ev.topic))
      return fail("invalid_topic", fmt::format("a topic is 1 to {} bytes without control characters", _opts.max_topic_bytes));
    if (ev.topic[0] == '$') return fail("reserved_topic", "topics starting with '$' are reserved for the broker");
    if (has_event) {
      if (!event_v.is_string()) return fail("invalid_event", "\"event\" must be a string");
      ev.event = pjson::unescape(event_v);
    } else {
      ev.event = "message";
    }
    if (ev.event.empty() || ev.event.size() > _opts.max_event_name_bytes || !valid_name_chars(ev.event))
      return fail("invalid_event", fmt::format("an event name is 1 to {} bytes", _opts.max_event_name_bytes));
    if (reserved_event(ev.event)) return fail("reserved_event", fmt::format("event name \"{}\" is reserved", ev.event));
    if (has_id) {
      v = id_v;
      if (v.is_string()) ev.id = pjson::unescape(v);
      else if (v.is_number()) ev.id = std::string(v.raw);
      else if (v.type != pjson::kind::null) return fail("invalid_id", "\"id\" must be a string or a number");
      if (ev.id.size() > _opts.max_id_bytes)
        return fail("invalid_id", fmt::format("an id is at most {} bytes", _opts.max_id_bytes));
    }
    if (has_data) {
      v = data_v;
      ev.data = compact || pjson::is_compact(v.raw) ? std::string(v.raw) : pjson::minify(v.raw);
      if (!attachments.empty()) {
        if (psio::check_placeholders(v, static_cast<uint32_t>(attachments.size())) != protocol::errc::ok)
          return fail("invalid_payload", "attachment placeholder out of range");
        ev.attachments = attachments;
      }
    }
    size_t bytes = ev.data.size();
    for (const auto& a : ev.attachments) bytes += a.size();
    if (bytes > _opts.max_event_bytes)
      return fail("too_large", fmt::format("an event carries at most {} bytes", _opts.max_event_bytes));
    events.push_back(std::move(ev));
  }

  std::weak_ptr<session_rt> weak;
  if (from) {
    if (from->pending_publishes >= _opts.max_pending_publishes)
      return fail("overloaded", "too many publishes awaiting the durable write on this connection");
    if (_opts.publish_rate > 0) {
      auto now = std::chrono::steady_clock::now();
      double burst = _opts.publish_burst > 0 ? _opts.publish_burst : _opts.publish_rate;
      if (from->refill.time_since_epoch().count() == 0) from->tokens = burst;
      else from->tokens = std::min(burst, from->tokens + std::chrono::duration<double>(now - from->refill).count() * _opts.publish_rate);
      from->refill = now;
      if (from->tokens < static_cast<double>(events.size()))
        return fail("rate_limited", fmt::format("at most {} events/s per connection", _opts.publish_rate));
      from->tokens -= static_cast<double>(events.size());
    }
    ++from->pending_publishes;
    weak = from->weak_from_this();
  }
  auto alive = _alive;
  ns_rt* nsp = &ns;
  _log.append(ns.id, std::move(events),
              [this, alive, nsp, weak, batch, reply = std::move(reply)](storage::append_result& r,
                                                                        std::vector<storage::event_input>& evs) {
                if (!*alive) return;
                if (auto s = weak.lock(); s && s->pending_publishes > 0) --s->pending_publishes;
                if (r.status != storage::errc::ok) {
                  ++_stats.publish_errors;
                  reply(error_reply(storage_error_code(r.status), storage::to_string(r.status)));
                  return;
                }
                for (size_t i = 0; i < r.events.size(); ++i) {
                  const auto& a = r.events[i];
                  if (a.duplicate) {
                    ++_stats.duplicates;
                    continue;
                  }
                  ++_stats.published;
                  on_committed(*nsp, a.topic_id, evs[i], a.seq, r.ts_ms);
                }
                std::string out = R"({"ok":true,)";
                if (batch) {
                  out += R"("offsets":[)";
                  for (size_t i = 0; i < r.events.size(); ++i) {
                    if (i) out.push_back(',');
                    out.push_back('"');
                    protocol::append_offset(out, {nsp->epoch, r.events[i].seq});
                    out.push_back('"');
                  }
                  out += R"(],"duplicates":[)";
                  for (size_t i = 0; i < r.events.size(); ++i) {
                    if (i) out.push_back(',');
                    out += r.events[i].duplicate ? "true" : "false";
                  }
                  out += "]}";
                } else {
                  out += R"("offset":")";
                  protocol::append_offset(out, {nsp->epoch, r.events[0].seq});
                  out += r.events[0].duplicate ? R"(","duplicate":true})" : R"(","duplicate":false})";
                }
                reply(std::move(out));
              });
}

namespace {

// The arguments of a delivery after the event name: <data>,{"topic":..,"id":..,"ts":..}[,"<offset>"]
void append_delivery_args(std::string& out, std::string_view data, std::string_view topic, std::string_view id,
                          int64_t ts, protocol::offset off, bool with_offset) {
  out.append(data.empty() ? std::string_view("null") : data);
  out += R"(,{"topic":)";
  pjson::append_quoted(out, topic);
  out += R"(,"id":)";
  if (id.empty()) {
    out.push_back('"');
    protocol::append_offset(out, off);
    out.push_back('"');
  } else {
    pjson::append_quoted(out, id);
  }
  out += R"(,"ts":)";
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, ts);
  out.append(digits, static_cast<size_t>(end - digits));
  out.push_back('}');
  if (with_offset) {
    out += R"(,")";
    protocol::append_offset(out, off);
    out.push_back('"');
  }
}

sio::packet_frames delivery_frames(std::string_view nsp, std::string_view event, std::string_view data,
                                   std::string_view topic, std::string_view id, int64_t ts, protocol::offset off,
                                   bool with_offset, const std::vector<std::string>& attachments) {
  std::string text;
  text.reserve(64 + nsp.size() + event.size() + data.size() + topic.size() + id.size());
  text.push_back('4');
  psio::append_header(text, attachments.empty() ? psio::packet_type::event : psio::packet_type::binary_event, nsp,
                      static_cast<uint32_t>(attachments.size()), std::nullopt);
  text.push_back('[');
  pjson::append_quoted(text, event);
  text.push_back(',');
  append_delivery_args(text, data, topic, id, ts, off, with_offset);
  text.push_back(']');
  sio::packet_frames f;
  f.text = make_frame(std::move(text), false);
  for (const auto& a : attachments) f.binary.push_back(make_frame(a, true));
  return f;
}

std::string_view fb_view(const flatbuffers::String* s) { return s ? std::string_view(s->data(), s->size()) : std::string_view(); }

std::vector<std::string> fb_attachments(const schema::Event* e) {
  std::vector<std::string> out;
  if (e->attachments())
    for (const auto* a : *e->attachments())
      if (a && a->bytes()) out.emplace_back(reinterpret_cast<const char*>(a->bytes()->data()), a->bytes()->size());
  return out;
}

}  // namespace

void engine::on_committed(ns_rt& ns, uint32_t topic_id, const storage::event_input& ev, uint64_t seq, int64_t ts) {
  if (seq > ns.head) ns.head = seq;
  topic_rt* t;
  if (auto it = ns.topics_by_id.find(topic_id); it != ns.topics_by_id.end()) {
    t = it->second;
  } else {
    t = &topic_for(ns, ev.topic);
    link_topic(ns, *t, topic_id);
  }
  // Frames are built lazily, once per variant, and shared by every live recipient.
  std::optional<sio::packet_frames> with_offset, without_offset;
  protocol::offset off{ns.epoch, seq};
  for (subscription* sub : t->auto_subs) {
    auto s = sub->session.lock();
    if (!s || s->st != session_rt::state::live) continue;
    if (seq <= sub->threshold() || (sub->from_time_ms && ts < sub->from_time_ms)) continue;
    if (s->raw->buffered_bytes() > _opts.live_high_water) {
      // Slow consumer: leave live fan-out and catch up from the log.
      ++_stats.slow_consumer_cuts;
      s->st = session_rt::state::catching_up;
      schedule_pump(*s, std::chrono::milliseconds(1));
      continue;
    }
    auto& frames = s->offsets ? with_offset : without_offset;
    if (!frames) frames = delivery_frames(ns.nsp->name(), ev.event, ev.data, ev.topic, ev.id, ts, off, s->offsets, ev.attachments);
    s->raw->send(*frames);
    s->cursor = seq;
    sub->last_sent = seq;
    if (!sub->consumer.empty()) sub->position_dirty = true;
    s->sent_offset |= s->offsets;
    ++_stats.delivered;
  }
  for (subscription* sub : t->ack_subs) {
    auto s = sub->session.lock();
    if (s && s->st != session_rt::state::closed) schedule_pump(*s);
  }
}

// ---------------------------------------------------------------------------------
// catch-up, history and ack-mode delivery (the pump)

void engine::schedule_pump(session_rt& s, std::chrono::milliseconds delay) {
  if (s.pump_scheduled || s.st == session_rt::state::closed) return;
  s.pump_scheduled = true;
  std::weak_ptr<session_rt> weak = s.weak_from_this();
  auto alive = _alive;
  if (delay.count() == 0) {
    asio::post(_io, [this, weak, alive] {
      if (!*alive) return;
      if (auto p = weak.lock()) pump(*p);
    });
    return;
  }
  if (!s.timer) s.timer = std::make_unique<asio::steady_timer>(_io);
  s.timer->expires_after(delay);
  s.timer->async_wait([this, weak, alive](const asio::error_code& ec) {
    if (ec || !*alive) return;
    if (auto p = weak.lock()) pump(*p);
  });
}

void engine::send_stored(session_rt& s, const storage::stored_event& e, bool with_offset) {
  const schema::Event* ev = e.event();
  auto frames = delivery_frames(s.ns->nsp->name(), fb_view(ev->event()), fb_view(ev->data()), fb_view(ev->topic()),
                                fb_view(ev->id()), ev->ts_ms(), {s.ns->epoch, e.seq}, with_offset, fb_attachments(ev));
  s.raw->send(frames);
  s.sent_offset |= with_offset;
  ++_stats.replayed;
}

void engine::pump(session_rt& s) {
  s.pump_scheduled = false;
  if (s.st == session_rt::state::closed) return;
  auto sock = s.sock.lock();
  if (!sock || !sock->transport_open()) {
    on_disconnect(s, sio::disconnect_reason::transport_close);
    return;
  }
  if (s.raw->buffered_bytes() > _opts.live_low_water) {
    schedule_pump(s, std::chrono::milliseconds(2));  // let the socket drain first
    return;
  }
  size_t budget = _opts.replay_chunk_events;
  bool more = false;
  for (auto& sub : s.subs)
    if (sub->mode == delivery_mode::ack) more |= pump_ack(s, *sub, budget);
  if (s.st == session_rt::state::connecting || s.st == session_rt::state::catching_up) {
    bool histories_done = true;
    for (auto& sub : s.subs) {
      if (!sub->history_pending()) continue;
      if (pump_history(s, *sub, budget)) {
        histories_done = false;
        break;  // one phase at a time; the session stream stays paused
      }
    }
    if (histories_done) {
      if (pump_merged(s, budget)) {
        maybe_caught_up(s);
      } else {
        more = true;
      }
    } else {
      more = true;
    }
  }
  if (more) schedule_pump(s);
}

bool engine::pump_history(session_rt& s, subscription& sub, size_t& budget) {
  ns_rt& ns = *s.ns;
  if (sub.topic_id == 0 || budget == 0) {
    if (sub.topic_id == 0) sub.history_next = sub.history_end;  // no events yet: nothing to replay
    return sub.history_pending();
  }
  if (uint64_t lost = lost_upto(ns, sub); sub.history_next < lost) {
    report_gap(s, sub, sub.history_next, lost);
    sub.history_next = lost;
  }
  std::vector<storage::stored_event> evs;
  auto e = _log.read(ns.id, sub.topic_id, sub.history_next, std::min(budget, _opts.replay_chunk_events),
                     _opts.replay_chunk_bytes, evs);
  if (e != storage::errc::ok) {
    logger.error("history read failed for topic {}: {}", sub.topic, storage::to_string(e));
    schedule_pump(s, std::chrono::milliseconds(100));
    return true;
  }
  for (const auto& ev : evs) {
    if (ev.seq > sub.history_end) {
      sub.history_next = sub.history_end;
      return false;
    }
    sub.history_next = ev.seq;
    --budget;
    if (sub.from_time_ms && ev.event()->ts_ms() < sub.from_time_ms) continue;
    send_stored(s, ev, s.offsets);
    sub.last_sent = ev.seq;
    if (!sub.consumer.empty()) sub.position_dirty = true;
  }
  if (evs.size() < std::min(budget + evs.size(), _opts.replay_chunk_events) || evs.empty())
    sub.history_next = sub.history_end;  // read everything there is
  return sub.history_pending();
}

bool engine::pump_merged(session_rt& s, size_t& budget) {
  ns_rt& ns = *s.ns;
  uint64_t head = ns.head;
  // Retention removed events this session had not received: say so, never skip silently.
  for (auto& sub : s.subs) {
    if (sub->mode != delivery_mode::automatic || sub->topic_id == 0) continue;
    uint64_t pos = std::max({s.cursor, sub->threshold(), sub->buffer_after});
    if (uint64_t lost = lost_upto(ns, *sub); pos < lost) {
      report_gap(s, *sub, pos, lost);
      sub->buffer.clear();
      sub->buffer_after = lost;
    }
  }
  while (budget > 0) {
    subscription* best = nullptr;
    for (auto& sp : s.subs) {
      subscription& sub = *sp;
      if (sub.mode != delivery_mode::automatic || sub.topic_id == 0) continue;
      uint64_t after = std::max({s.cursor, sub.threshold(), sub.buffer_after});
      if (sub.buffer.empty() && after < head) {
        std::vector<storage::stored_event> evs;
        auto e = _log.read(ns.id, sub.topic_id, after, _opts.replay_chunk_events, _opts.replay_chunk_bytes, evs);
        if (e != storage::errc::ok) {
          logger.error("catch-up read failed for topic {}: {}", sub.topic, storage::to_string(e));
          return false;
        }
        sub.buffer_after = evs.empty() || evs.back().seq >= head ? head : evs.back().seq;
        for (auto& ev : evs)
          if (ev.seq <= head) sub.buffer.push_back(std::move(ev));
      }
      while (!sub.buffer.empty() && sub.buffer.front().seq <= std::max(s.cursor, sub.threshold())) sub.buffer.pop_front();
      if (!sub.buffer.empty() && (!best || sub.buffer.front().seq < best->buffer.front().seq)) best = &sub;
    }
    if (!best) {
      s.cursor = std::max(s.cursor, head);
      return true;  // caught up with the head
    }
    storage::stored_event ev = std::move(best->buffer.front());
    best->buffer.pop_front();
    s.cursor = ev.seq;
    --budget;
    if (best->from_time_ms && ev.event()->ts_ms() < best->from_time_ms) continue;
    send_stored(s, ev, s.offsets);
    best->last_sent = ev.seq;
    if (!best->consumer.empty()) best->position_dirty = true;
    if (s.raw->buffered_bytes() > _opts.live_high_water) return false;
  }
  return false;
}

uint64_t engine::lost_upto(const ns_rt& ns, const subscription& sub) const {
  if (sub.topic_id == 0) return 0;
  auto t = _log.topic(ns.id, sub.topic_id);
  return t ? t->first_seq : 0;
}

void engine::report_gap(session_rt& s, const subscription& sub, uint64_t from, uint64_t lost) {
  ++_stats.gaps;
  std::string gap = R"({"topic":)";
  pjson::append_quoted(gap, sub.topic);
  gap += fmt::format(R"(,"from":"{}","first":"{}","reason":"retention"}})", s.ns->offset(from + 1),
                     s.ns->offset(lost + 1));
  s.raw->emit("$gap", gap);
}

void engine::maybe_caught_up(session_rt& s) {
  for (auto& sub : s.subs) {
    sub->buffer.clear();
    sub->buffer_after = 0;
  }
  go_live(s);
}

void engine::go_live(session_rt& s) {
  s.st = session_rt::state::live;
  if (auto done = std::move(s.on_caught_up)) {
    s.on_caught_up = nullptr;
    done();
  }
}

bool engine::pump_ack(session_rt& s, subscription& sub, size_t& budget) {
  ns_rt& ns = *s.ns;
  if (sub.topic_id == 0) return false;
  while (budget > 0 && sub.in_flight.size() < ns.cfg.max_in_flight) {
    if (!sub.redeliver.empty()) {
      uint64_t seq = sub.redeliver.front();
      sub.redeliver.pop_front();
      auto it = sub.in_flight.find(seq);
      if (it == sub.in_flight.end()) continue;
      auto ev = _log.get(ns.id, sub.topic_id, seq);
      if (!ev) {  // removed by retention meanwhile
        sub.in_flight.erase(it);
        advance_committed(s, sub);
        continue;
      }
      ++it->second;
      ++_stats.redelivered;
      send_ack_delivery(s, sub, *ev, it->second);
      --budget;
      continue;
    }
    if (sub.cursor >= ns.head) return false;
    if (uint64_t lost = lost_upto(ns, sub); sub.cursor < lost) {
      report_gap(s, sub, sub.cursor, lost);
      sub.cursor = lost;
      advance_committed(s, sub);
    }
    size_t want = std::min({budget, _opts.replay_chunk_events, static_cast<size_t>(ns.cfg.max_in_flight - sub.in_flight.size())});
    std::vector<storage::stored_event> evs;
    auto e = _log.read(ns.id, sub.topic_id, sub.cursor, want, _opts.replay_chunk_bytes, evs);
    if (e != storage::errc::ok) {
      logger.error("ack-mode read failed for topic {}: {}", sub.topic, storage::to_string(e));
      return false;
    }
    if (evs.empty()) {
      sub.cursor = ns.head;
      return false;
    }
    for (const auto& ev : evs) {
      if (ev.seq > ns.head) return false;
      sub.cursor = ev.seq;
      --budget;
      if (sub.from_time_ms && ev.event()->ts_ms() < sub.from_time_ms) {
        advance_committed(s, sub);
        continue;
      }
      sub.in_flight[ev.seq] = 1;
      send_ack_delivery(s, sub, ev, 1);
    }
  }
  return budget == 0;
}

void engine::send_ack_delivery(session_rt& s, subscription& sub, const storage::stored_event& e, uint32_t deliveries) {
  const schema::Event* ev = e.event();
  sio::args a;
  append_delivery_args(a.json, fb_view(ev->data()), fb_view(ev->topic()), fb_view(ev->id()), ev->ts_ms(),
                       {s.ns->epoch, e.seq}, s.offsets);
  a.binary = fb_attachments(ev);
  std::weak_ptr<session_rt> ws = s.weak_from_this();
  std::weak_ptr<subscription> wsub;
  for (auto& p : s.subs)
    if (p.get() == &sub) wsub = p;
  uint64_t seq = e.seq;
  auto alive = _alive;
  (void)deliveries;
  s.raw->emit_with_ack(fb_view(ev->event()), a, s.ns->cfg.ack_timeout, [this, alive, ws, wsub, seq](sio::message* reply) {
    if (!*alive) return;
    auto sp = ws.lock();
    auto subp = wsub.lock();
    if (!sp || !subp || subp->removed || sp->st == session_rt::state::closed) return;
    if (reply) on_delivery_acked(*sp, *subp, seq);
    else if (sp->raw->connected() || sp->st == session_rt::state::connecting) on_delivery_timeout(*sp, *subp, seq);
  });
  ++_stats.delivered;
}

void engine::on_delivery_acked(session_rt& s, subscription& sub, uint64_t seq) {
  if (sub.in_flight.erase(seq) == 0) return;
  ++_stats.acks;
  advance_committed(s, sub);
  schedule_pump(s);
}

void engine::on_delivery_timeout(session_rt& s, subscription& sub, uint64_t seq) {
  auto it = sub.in_flight.find(seq);
  if (it == sub.in_flight.end()) return;
  if (it->second >= s.ns->cfg.max_deliver) {
    dead_letter(s, sub, seq, it->second);
    return;
  }
  sub.redeliver.push_back(seq);
  schedule_pump(s);
}

void engine::dead_letter(session_rt& s, subscription& sub, uint64_t seq, uint32_t deliveries) {
  ns_rt& ns = *s.ns;
  auto ev = _log.get(ns.id, sub.topic_id, seq);
  std::weak_ptr<session_rt> ws = s.weak_from_this();
  std::weak_ptr<subscription> wsub;
  for (auto& p : s.subs)
    if (p.get() == &sub) wsub = p;
  auto finish = [this, ws, wsub, seq] {
    auto sp = ws.lock();
    auto subp = wsub.lock();
    if (!sp || !subp || subp->removed) return;
    subp->in_flight.erase(seq);
    advance_committed(*sp, *subp);
    schedule_pump(*sp);
  };
  if (!ev) {
    finish();
    return;
  }
  const schema::Event* e = ev->event();
  storage::event_input dlq;
  dlq.topic = "$dlq." + (sub.consumer.empty() ? "session-" + s.pid : sub.consumer);
  dlq.event = std::string(fb_view(e->event()));
  dlq.id = std::string(fb_view(e->id()));
  if (!dlq.id.empty()) dlq.id = "dlq:" + dlq.id;  // its own dedupe key, distinct from the original's
  dlq.data = std::string(fb_view(e->data()));
  dlq.attachments = fb_attachments(e);
  dlq.origin_topic = sub.topic;
  dlq.origin_seq = seq;
  dlq.deliveries = deliveries;
  dlq.dlq_reason = fmt::format("not acknowledged after {} deliveries (ack_timeout {} ms)", deliveries,
                               ns.cfg.ack_timeout.count());
  std::vector<storage::event_input> evs;
  evs.push_back(std::move(dlq));
  auto alive = _alive;
  ns_rt* nsp = &ns;
  _log.append(ns.id, std::move(evs),
              [this, alive, nsp, finish](storage::append_result& r, std::vector<storage::event_input>& in) {
                if (!*alive) return;
                if (r.status != storage::errc::ok) {
                  logger.error("dead-lettering failed: {}; will retry after the next timeout", storage::to_string(r.status));
                  return;  // stays in flight; the next timeout retries
                }
                ++_stats.dead_lettered;
                if (!r.events[0].duplicate) on_committed(*nsp, r.events[0].topic_id, in[0], r.events[0].seq, r.ts_ms);
                finish();
              });
}

void engine::advance_committed(session_rt& s, subscription& sub) {
  uint64_t c = sub.cursor;
  if (!sub.in_flight.empty()) c = std::min(c, sub.in_flight.begin()->first - 1);
  if (c <= sub.committed) return;
  sub.committed = c;
  if (!sub.consumer.empty()) _log.put_position(s.ns->id, sub.consumer, sub.topic_id, c);
  sub.position_dirty = sub.consumer.empty();  // session-owned positions are saved with the session
}

// ---------------------------------------------------------------------------------
// subscribe / unsubscribe / commit

void engine::on_subscribe(session_rt& s, sio::message& m, sio::responder reply) {
  ns_rt& ns = *s.ns;
  auto fail = [&](std::string_view code, std::string_view msg) { reply.send(error_reply(code, msg)); };
  auto first = pjson::parse_first(m.args_json());
  if (!first || !first->is_object()) return fail("invalid_payload", "subscribe expects {topic, from?, consumer?, mode?}");
  pjson::value req = *first;
  pjson::value v;
  if (!pjson::find_member(req, "topic", v) || !v.is_string()) return fail("invalid_topic", "\"topic\" must be a string");
  std::string topic = pjson::unescape(v);
  if (topic.empty() || topic.size() > _opts.max_topic_bytes + 64 || !valid_name_chars(topic))
    return fail("invalid_topic", "invalid topic name");
  std::string consumer = s.consumer;
  if (pjson::find_member(req, "consumer", v)) {
    if (!v.is_string()) return fail("invalid_consumer", "\"consumer\" must be a string");
    consumer = pjson::unescape(v);
    if (consumer.size() > _opts.max_topic_bytes || !valid_name_chars(consumer))
      return fail("invalid_consumer", "invalid consumer name");
  }
  delivery_mode mode = delivery_mode::automatic;
  if (pjson::find_member(req, "mode", v)) {
    if (v.is_string() && pjson::string_equals(v, "ack")) mode = delivery_mode::ack;
    else if (!(v.is_string() && pjson::string_equals(v, "auto"))) return fail("invalid_mode", "\"mode\" is \"auto\" or \"ack\"");
  }
  if (auto* existing = s.find(topic)) {
    // Idempotent: report the existing subscription.
    std::string out = R"({"ok":true,"topic":)";
    pjson::append_quoted(out, topic);
    auto ti = existing->topic_id ? _log.topic(ns.id, existing->topic_id) : std::nullopt;
    out += fmt::format(R"(,"head":"{}","position":"{}"}})", ns.offset(ti ? ti->last_seq : 0),
                       ns.offset(existing->mode == delivery_mode::ack ? existing->committed : std::max(existing->last_sent, existing->threshold())));
    return reply.send(out);
  }
  if (s.subs.size() >= _opts.max_topics_per_socket)
    return fail("too_many_topics", fmt::format("at most {} subscriptions per socket", _opts.max_topics_per_socket));

  topic_rt& t = topic_for(ns, topic);
  uint64_t lost = 0;  // the topic's events at or below this were removed by retention
  if (t.id)
    if (auto ti = _log.topic(ns.id, t.id)) lost = ti->first_seq;
  uint64_t from = ns.head;  // "latest"
  int64_t from_time = 0;
  bool gap = false;
  std::optional<uint64_t> stored;
  if (!consumer.empty() && t.id) {
    auto p = _log.get_position(ns.id, consumer, t.id);
    if (p) stored = *p;
  }
  if (stored) {
    from = *stored;
  } else if (pjson::find_member(req, "from", v)) {
    if (v.is_string() && pjson::string_equals(v, "latest")) {
      from = ns.head;
    } else if (v.is_string() && pjson::string_equals(v, "earliest")) {
      from = lost;  // the earliest kept: not a gap
    } else if (v.is_string()) {
      auto off = protocol::parse_offset(pjson::unescape(v));
      if (!off) return fail("invalid_offset", "unparseable offset");
      if (off->epoch != ns.epoch) return fail("epoch_mismatch", "the offset belongs to another data directory");
      if (off->seq > ns.head + 1) return fail("beyond_head", "the offset is beyond the head of the log");
      from = off->seq > 0 ? off->seq - 1 : 0;  // inclusive: start at that offset
    } else if (v.is_object()) {
      pjson::value tv;
      int64_t ms = 0;
      if (!pjson::find_member(v, "time", tv) || !tv.is_number() || !pjson::as_int64(tv, ms))
        return fail("invalid_from", "from: {\"time\": <ms since epoch>}");
      from = _log.seq_before_time(ns.id, ms);
      from_time = ms;
    } else {
      return fail("invalid_from", "from is \"latest\", \"earliest\", an offset or {\"time\": ms}");
    }
  }
  if (from < lost) {
    gap = true;
    from = lost;
  }
  auto sub = std::make_shared<subscription>();
  sub->session = s.weak_from_this();
  sub->topic = topic;
  sub->topic_id = t.id;
  sub->mode = mode;
  sub->consumer = consumer;
  sub->from_seq = from;
  sub->from_time_ms = from_time;
  if (mode == delivery_mode::automatic) {
    sub->history_end = s.cursor;
    sub->history_next = from;
    sub->last_sent = from;
    t.auto_subs.push_back(sub.get());
  } else {
    sub->history_end = from;
    sub->history_next = from;
    sub->cursor = from;
    sub->committed = from;
    t.ack_subs.push_back(sub.get());
  }
  s.subs.push_back(sub);
  ++_stats.subscriptions;
  if (gap) {
    ++_stats.gaps;
    std::string g = R"({"topic":)";
    pjson::append_quoted(g, topic);
    g += fmt::format(R"(,"first":"{}","reason":"retention"}})", ns.offset(lost + 1));
    s.raw->emit("$gap", g);
  }
  if (sub->history_pending() && s.st == session_rt::state::live) s.st = session_rt::state::catching_up;
  std::string out = R"({"ok":true,"topic":)";
  pjson::append_quoted(out, topic);
  auto ti = t.id ? _log.topic(ns.id, t.id) : std::nullopt;
  out += fmt::format(R"(,"head":"{}","position":"{}"}})", ns.offset(ti ? ti->last_seq : 0), ns.offset(from));
  std::weak_ptr<session_rt> ws = s.weak_from_this();
  auto alive = _alive;
  // Reply once the subscription is durable, so a broker crash cannot forget it.
  save_session(s, [this, alive, ws, reply, out](storage::errc e) mutable {
    if (!*alive) return;
    auto sp = ws.lock();
    if (e != storage::errc::ok) {
      reply.send(error_reply(storage_error_code(e), storage::to_string(e)));
      return;
    }
    reply.send(out);
    if (!sp || sp->st == session_rt::state::closed) return;
    // Seed the client's recovery offset if it has none yet (socket.io#5538).
    if (sp->offsets && sp->ns->cfg.recovery && !sp->sent_offset && sp->st == session_rt::state::live) {
      sp->raw->emit("$offset", fmt::format("\"{}\"", sp->ns->offset(sp->cursor)));
      sp->sent_offset = true;
    }
  });
  schedule_pump(s);
}

void engine::on_unsubscribe(session_rt& s, sio::message& m, sio::responder reply) {
  auto first = pjson::parse_first(m.args_json());
  pjson::value v;
  if (!first || !first->is_object() || !pjson::find_member(*first, "topic", v) || !v.is_string())
    return reply.send(error_reply("invalid_payload", "unsubscribe expects {topic}"));
  std::string topic = pjson::unescape(v);
  auto it = std::find_if(s.subs.begin(), s.subs.end(), [&](const auto& p) { return p->topic == topic; });
  if (it == s.subs.end()) return reply.send(error_reply("not_subscribed", "no subscription to that topic"));
  auto sub = *it;
  sub->removed = true;
  auto& t = topic_for(*s.ns, topic);
  std::erase(t.auto_subs, sub.get());
  std::erase(t.ack_subs, sub.get());
  if (!sub->consumer.empty() && sub->mode == delivery_mode::automatic && sub->topic_id && sub->last_sent > 0)
    _log.put_position(s.ns->id, sub->consumer, sub->topic_id, sub->last_sent);
  s.subs.erase(it);
  if (_stats.subscriptions) --_stats.subscriptions;
  auto alive = _alive;
  save_session(s, [alive, reply](storage::errc e) mutable {
    if (!*alive) return;
    reply.send(e == storage::errc::ok ? std::string(R"({"ok":true})") : error_reply(storage_error_code(e), storage::to_string(e)));
  });
}

void engine::on_commit(session_rt& s, sio::message& m, sio::responder reply) {
  ns_rt& ns = *s.ns;
  auto first = pjson::parse_first(m.args_json());
  pjson::value v, o;
  if (!first || !first->is_object() || !pjson::find_member(*first, "topic", v) || !v.is_string() ||
      !pjson::find_member(*first, "offset", o) || !o.is_string())
    return reply.send(error_reply("invalid_payload", "commit expects {topic, offset}"));
  subscription* sub = s.find(pjson::unescape(v));
  if (!sub) return reply.send(error_reply("not_subscribed", "commit needs a subscription to the topic"));
  auto off = protocol::parse_offset(pjson::unescape(o));
  if (!off) return reply.send(error_reply("invalid_offset", "unparseable offset"));
  if (off->epoch != ns.epoch) return reply.send(error_reply("epoch_mismatch", "the offset belongs to another data directory"));
  auto ti = sub->topic_id ? _log.topic(ns.id, sub->topic_id) : std::nullopt;
  if (!ti || off->seq > ti->last_seq) return reply.send(error_reply("beyond_head", "cannot commit beyond the head of the topic"));
  if (sub->mode == delivery_mode::ack) {
    for (auto it = sub->in_flight.begin(); it != sub->in_flight.end() && it->first <= off->seq;) it = sub->in_flight.erase(it);
    std::erase_if(sub->redeliver, [&](uint64_t x) { return x <= off->seq; });
    sub->cursor = std::max(sub->cursor, off->seq);
    advance_committed(s, *sub);
    schedule_pump(s);
  } else {
    sub->last_sent = std::max(sub->last_sent, off->seq);
    if (!sub->consumer.empty()) _log.put_position(ns.id, sub->consumer, sub->topic_id, off->seq);
  }
  reply.send(R"({"ok":true})");
}

// ---------------------------------------------------------------------------------
// sessions: connect, recovery, disconnect

void engine::on_connect(ns_rt& ns, const sio::socket_ptr& sock, std::function<void(sio::connect_outcome)> done) {
  if (_shutting_down) {
    done({sio::connect_error{"server shutting down", ""}, ""});
    return;
  }
  auto s = std::make_shared<session_rt>();
  s->ns = &ns;
  s->sock = sock;
  s->raw = sock.get();
  s->offsets = ns.cfg.offsets;
  sock->data = s;
  ++_stats.sessions;
  ns.all_sessions.push_back(s);

  std::string pid, offset_text;
  bool has_offset = false;
  auto auth = pjson::parse(sock->handshake().auth);
  if (auth && auth->is_object()) {
    pjson::value v;
    if (pjson::find_member(*auth, "pid", v) && v.is_string()) pid = pjson::unescape(v);
    if (pjson::find_member(*auth, "offset", v) && v.is_string()) {
      offset_text = pjson::unescape(v);
      has_offset = true;
    }
    if (pjson::find_member(*auth, "consumer", v) && v.is_string()) s->consumer = pjson::unescape(v);
    if (pjson::find_member(*auth, "offsets", v) && v.type == pjson::kind::boolean && !v.is_true()) s->offsets = false;
  }

  std::optional<storage::session_record> rec;
  if (ns.cfg.recovery && !pid.empty()) {
    auto r = _log.get_session(pid);
    if (r && r->nsp == ns.cfg.name) rec = std::move(*r);
  }
  bool recovered = false;
  std::string gap_reason;
  if (rec) {
    // Where did the client stop? Its CSR offset names the last event it received.
    uint64_t s_seq = rec->base;
    bool trusted = true;
    if (has_offset) {
      auto off = protocol::parse_offset(offset_text);
      if (!off) {
        trusted = false;
        gap_reason = "invalid_offset";
      } else if (off->epoch != ns.epoch) {
        trusted = false;
        gap_reason = "epoch";
      } else if (off->seq > ns.head) {
        trusted = false;
        gap_reason = "beyond_head";
      } else {
        s_seq = off->seq;
      }
    }
    s->pid = rec->pid;
    if (s->consumer.empty()) s->consumer = rec->consumer;
    if (!rec->offsets_enabled) s->offsets = false;
    s->base = rec->base;
    // The subscription whose history phase delivered that event, if any.
    const storage::subscription_record* in_history = nullptr;
    for (const auto& r : rec->subscriptions) {
      if (r.mode != delivery_mode::automatic || !(r.from_seq < s_seq && s_seq <= r.history_end)) continue;
      auto tid = _log.find_topic(ns.id, r.topic);
      if (tid && _log.get(ns.id, *tid, s_seq)) {
        in_history = &r;
        break;
      }
    }
    uint64_t m_new = in_history ? in_history->history_end : s_seq;
    if (!trusted) m_new = std::max(rec->cursor, rec->base);
    s->cursor = m_new;
    for (const auto& r : rec->subscriptions) {
      auto sub = std::make_shared<subscription>();
      sub->session = s;
      sub->topic = r.topic;
      sub->consumer = r.consumer;
      sub->mode = r.mode;
      sub->from_seq = r.from_seq;
      topic_rt& t = topic_for(ns, r.topic);
      sub->topic_id = t.id;
      if (r.mode == delivery_mode::automatic) {
        sub->history_end = r.history_end;
        if (&r == in_history) {
          sub->history_next = s_seq;
        } else if (r.history_end > m_new) {
          sub->history_end = m_new;  // its history phase comes again, with the stream paused at m_new
          sub->history_next = r.from_seq;
        } else {
          sub->history_next = r.history_end;
        }
        sub->last_sent = std::max(sub->threshold(), m_new);
        t.auto_subs.push_back(sub.get());
      } else {
        uint64_t pos = r.position;
        if (!r.consumer.empty() && t.id) {
          auto p = _log.get_position(ns.id, r.consumer, t.id);
          if (p) pos = *p;
        }
        sub->history_end = r.history_end;
        sub->cursor = sub->committed = pos;
        t.ack_subs.push_back(sub.get());
      }
      s->subs.push_back(std::move(sub));
      ++_stats.subscriptions;
    }
    // Events the client still needs that retention removed: the session comes back with
    // its subscriptions, but not as a recovery (recovered:false), and a $gap says what is gone.
    bool gap = false;
    for (auto& sub : s->subs) {
      uint64_t lost = lost_upto(ns, *sub);
      if (lost == 0) continue;
      if (sub->mode == delivery_mode::automatic) {
        bool history = sub->history_pending();
        uint64_t pos = history ? sub->history_next : std::max(m_new, sub->threshold());
        if (pos >= lost) continue;
        report_gap(*s, *sub, pos, lost);
        if (history) sub->history_next = lost;
        else sub->buffer_after = lost;
      } else {
        if (sub->committed >= lost) continue;
        report_gap(*s, *sub, sub->committed, lost);
        sub->cursor = sub->committed = lost;
      }
      gap = true;
    }
    recovered = trusted && !gap;
    // A stale socket of the same session (its transport has not timed out yet) is evicted
    // first (socket.io#4880); it no longer owns the session record.
    if (auto it = ns.sessions.find(s->pid); it != ns.sessions.end() && it->second != s.get()) {
      session_rt* stale = it->second;
      ns.sessions.erase(it);
      if (auto old = stale->sock.lock()) {
        stale->pid.clear();
        old->disconnect(true);
      }
    }
    if (recovered) {
      sock->set_recovered(rec->sid);
      ++_stats.recoveries;
    } else {
      ++_stats.recovery_failures;
      _log.delete_session(rec->pid);  // the session continues under a new pid
      s->pid = random_id();           // a new pid tells the client it was not recovered
    }
  } else {
    if (!pid.empty()) ++_stats.recovery_failures;
    if (ns.cfg.recovery) s->pid = random_id();
    s->base = s->cursor = ns.head;
  }
  if (!s->pid.empty()) ns.sessions[s->pid] = s.get();
  s->raw->on_disconnect([this, weak = std::weak_ptr<session_rt>(s)](const sio::socket_ptr&, sio::disconnect_reason r) {
    if (auto p = weak.lock()) on_disconnect(*p, r);
  });
  if (!gap_reason.empty()) {
    ++_stats.gaps;
    s->raw->emit("$gap", fmt::format(R"({{"first":"{}","reason":"{}"}})", ns.offset(_log.low_water(ns.id) + 1), gap_reason));
  }

  std::weak_ptr<session_rt> weak = s;
  auto alive = _alive;
  auto finish = [this, alive, weak, done = std::move(done)]() mutable {
    if (!*alive) return;
    auto sp = weak.lock();
    if (!sp || sp->st == session_rt::state::closed) {
      done({sio::connect_error{"connection closed", ""}, ""});
      return;
    }
    std::string pid = sp->pid;
    sp->on_caught_up = [done = std::move(done), pid]() mutable { done({std::nullopt, pid}); };
    sp->st = session_rt::state::catching_up;
    pump(*sp);  // missed events go out before the CONNECT ack; the ack follows when caught up
  };
  // A new session is persisted once it has something to recover: at its first subscribe
  // (before the subscribe ack) or when it disconnects. A recovered one is saved now.
  if (ns.cfg.recovery && rec) {
    save_session(*s, [finish = std::move(finish)](storage::errc) mutable { finish(); });
  } else {
    finish();
  }
}

void engine::on_disconnect(session_rt& s, sio::disconnect_reason reason) {
  if (s.st == session_rt::state::closed) return;
  auto keep = s.shared_from_this();
  bool was_connecting = s.st == session_rt::state::connecting || s.on_caught_up != nullptr;
  s.st = session_rt::state::closed;
  if (s.timer) s.timer->cancel();
  ns_rt& ns = *s.ns;
  for (auto& sub : s.subs) {
    sub->removed = true;
    auto& t = topic_for(ns, sub->topic);
    std::erase(t.auto_subs, sub.get());
    std::erase(t.ack_subs, sub.get());
    if (!sub->consumer.empty() && sub->mode == delivery_mode::automatic && sub->topic_id && sub->position_dirty)
      _log.put_position(ns.id, sub->consumer, sub->topic_id, sub->last_sent);
    if (_stats.subscriptions) --_stats.subscriptions;
  }
  if (_stats.sessions) --_stats.sessions;
  auto owner = ns.sessions.find(s.pid);
  bool owns = !s.pid.empty() && owner != ns.sessions.end() && owner->second == &s;
  if (owns) ns.sessions.erase(owner);
  if (owns && ns.cfg.recovery) {
    bool explicit_leave = reason == sio::disconnect_reason::client_namespace_disconnect ||
                          reason == sio::disconnect_reason::server_namespace_disconnect;
    if (explicit_leave && !was_connecting) _log.delete_session(s.pid);
    else save_session(s);
  }
  if (s.on_caught_up) s.on_caught_up = nullptr;
}

void engine::save_session(session_rt& s, std::function<void(storage::errc)> done) {
  if (!s.ns->cfg.recovery || s.pid.empty()) {
    if (done) done(storage::errc::ok);
    return;
  }
  storage::session_record r;
  r.pid = s.pid;
  r.sid = s.raw->id();
  r.nsp = s.ns->cfg.name;
  r.consumer = s.consumer;
  r.cursor = s.cursor;
  r.base = s.base;
  r.offsets_enabled = s.offsets;
  r.expires_ms = now_ms() + s.ns->cfg.session_ttl.count();
  for (const auto& sub : s.subs) {
    storage::subscription_record x;
    x.topic = sub->topic;
    x.consumer = sub->consumer;
    x.mode = sub->mode;
    x.from_seq = sub->from_seq;
    x.history_end = sub->history_end;
    x.position = sub->mode == delivery_mode::ack ? sub->committed : sub->last_sent;
    r.subscriptions.push_back(std::move(x));
  }
  if (!done) {
    _log.put_session(r);
    return;
  }
  auto alive = _alive;
  _log.put_session(r, [alive, done = std::move(done)](storage::errc e) {
    if (*alive) done(e);
  });
}

void engine::save_positions() {
  for (auto& [name, ns] : _namespaces) {
    std::erase_if(ns->all_sessions, [](const auto& w) { return w.expired(); });
    for (auto& w : ns->all_sessions) {
      auto s = w.lock();
      if (!s || s->st == session_rt::state::closed) continue;
      for (auto& sub : s->subs) {
        if (!sub->position_dirty || sub->mode != delivery_mode::automatic || sub->consumer.empty() || !sub->topic_id)
          continue;
        _log.put_position(ns->id, sub->consumer, sub->topic_id, sub->last_sent);
        sub->position_dirty = false;
      }
    }
  }
}

void engine::tick_positions() {
  _position_timer.expires_after(_opts.position_save_interval);
  auto alive = _alive;
  _position_timer.async_wait([this, alive](const asio::error_code& ec) {
    if (ec || !*alive) return;
    save_positions();
    _log.probe();  // storage errors clear by themselves once the disk does
    // Live sessions renew their recovery deadline (session_ttl) every few minutes, so a
    // broker killed after running for days still lets them recover.
    if (++_ticks % 300 == 0) {
      for (auto& [name, ns] : _namespaces)
        for (auto& [pid, s] : ns->sessions)
          if (s->st != session_rt::state::closed) save_session(*s);
    }
    tick_positions();
  });
}

void engine::tick_retention() {
  _retention_timer.expires_after(_opts.retention_interval);
  auto alive = _alive;
  _retention_timer.async_wait([this, alive](const asio::error_code& ec) {
    if (ec || !*alive) return;
    for (auto& [name, ns] : _namespaces)
      if (ns->cfg.policy.retention_age.count() > 0 || ns->cfg.policy.retention_bytes > 0) _log.enforce_retention(ns->id);
    tick_retention();
  });
}

std::vector<engine::lag_info> engine::consumer_lag() const {
  std::vector<lag_info> out;
  for (const auto& [name, ns] : _namespaces) {
    for (const auto& p : _log.positions(ns->id)) {
      auto t = _log.topic(ns->id, p.topic_id);
      if (!t) continue;
      uint64_t lag = 0;
      if (p.seq < t->last_seq) {
        auto ev = p.seq > 0 ? _log.get(ns->id, p.topic_id, p.seq) : storage::result<storage::stored_event>(storage::errc::not_found);
        uint64_t ordinal = ev ? ev->event()->ordinal() : 0;
        lag = t->count > ordinal ? t->count - ordinal : 0;
        if (!ev && p.seq > 0) lag = t->count;  // position not on this topic's events: upper bound
      }
      out.push_back({name, p.consumer, t->name, lag});
    }
  }
  return out;
}

bool engine::consumer_active(std::string_view nsp, std::string_view consumer, std::string_view topic) const {
  auto it = _namespaces.find(std::string(nsp));
  if (it == _namespaces.end()) return false;
  for (const auto& w : it->second->all_sessions) {
    auto s = w.lock();
    if (!s || s->st == session_rt::state::closed) continue;
    for (const auto& sub : s->subs)
      if (sub->consumer == consumer && sub->topic == topic) return true;
  }
  return false;
}

void engine::shutdown() {
  if (_shutting_down) return;
  _shutting_down = true;
  _retention_timer.cancel();
  _position_timer.cancel();
  save_positions();
  size_t saved = 0;
  for (auto& [name, ns] : _namespaces) {
    for (auto& [pid, s] : ns->sessions) {
      save_session(*s);
      ++saved;
    }
  }
  auto e = _log.flush();
  logger.info("saved {} sessions for recovery; log flush: {}", saved, storage::to_string(e));
  // Sessions are durable now: what the disconnects below save again is the same state.
  _sio.close_all();
}

}  // namespace ferry::broker
