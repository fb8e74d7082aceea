#include "broker/http_api.h"

#include <fmt/format.h>

#include "protocol/base64.h"
#include "protocol/json.h"
#include "protocol/offset.h"

namespace ferry::broker {

namespace pjson = ferry::protocol::json;

http_response json_response(int status, std::string body) {
  http_response r;
  r.status = status;
  r.headers.emplace_back("Content-Type", "application/json");
  r.headers.emplace_back("Cache-Control", "no-store");
  r.body = std::move(body);
  return r;
}

namespace {

std::string error_json(std::string_view code, std::string_view message) {
  std::string out = R"({"ok":false,"error":{"code":)";
  pjson::append_quoted(out, code);
  out += R"(,"message":)";
  pjson::append_quoted(out, message);
  out += "}}";
  return out;
}

// Maps an {"ok":false,"error":{"code":...}} reply to an HTTP status.
int status_for(std::string_view reply) {
  if (reply.starts_with(R"({"ok":true)")) return 200;
  for (std::string_view c : {"storage_unavailable", "storage_full", "shutting_down"})
    if (reply.find(fmt::format("\"{}\"", c)) != std::string_view::npos) return 503;
  for (std::string_view c : {"overloaded", "rate_limited"})
    if (reply.find(fmt::format("\"{}\"", c)) != std::string_view::npos) return 429;
  if (reply.find("\"too_large\"") != std::string_view::npos) return 413;
  if (reply.find("\"unknown_namespace\"") != std::string_view::npos) return 404;
  return 400;
}

std::string namespace_of(const http_request& req) {
  std::string nsp;
  if (!req.query_param("namespace", nsp) || nsp.empty()) nsp = "/";
  return nsp;
}

void append_event_json(std::string& out, protocol::offset off, const schema::Event* e) {
  auto view = [](const flatbuffers::String* s) { return s ? std::string_view(s->data(), s->size()) : std::string_view(); };
  out += R"({"offset":")";
  protocol::append_offset(out, off);
  out += R"(","topic":)";
  pjson::append_quoted(out, view(e->topic()));
  out += R"(,"event":)";
  pjson::append_quoted(out, view(e->event()));
  out += R"(,"id":)";
  if (view(e->id()).empty()) {
    out.push_back('"');
    protocol::append_offset(out, off);
    out.push_back('"');
  } else {
    pjson::append_quoted(out, view(e->id()));
  }
  fmt::format_to(std::back_inserter(out), R"(,"ts":{},"data":)", e->ts_ms());
  out += view(e->data()).empty() ? std::string_view("null") : view(e->data());
  if (e->attachments() && e->attachments()->size() > 0) {
    out += R"(,"attachments":[)";
    bool first = true;
    for (const auto* a : *e->attachments()) {
      if (!first) out.push_back(',');
      first = false;
      out.push_back('"');
      if (a && a->bytes())
        protocol::base64::append_encoded(out, {reinterpret_cast<const char*>(a->bytes()->data()), a->bytes()->size()});
      out.push_back('"');
    }
    out.push_back(']');
  }
  if (e->origin_topic()) {
    out += R"(,"dlq":{"topic":)";
    pjson::append_quoted(out, view(e->origin_topic()));
    out += R"(,"offset":")";
    protocol::append_offset(out, {off.epoch, e->origin_seq()});
    out += R"(","reason":)";
    pjson::append_quoted(out, view(e->dlq_reason()));
    fmt::format_to(std::back_inserter(out), R"(,"deliveries":{}}})", e->deliveries());
  }
  out.push_back('}');
}

}  // namespace

http_api::http_api(http_server& http, engine& eng, sio::server& sio, std::shared_ptr<storage::fault_injector> faults)
    : _http(http), _engine(eng), _sio(sio), _faults(std::move(faults)) {
  _http.route("/v1/publish", [this](const auto& ex) { publish(ex); });
  _http.route("/v1/topics", [this](const auto& ex) { topics(ex); });
  _http.route("/v1/topics/", [this](const auto& ex) { topics(ex); });
  _http.route("/v1/consumers", [this](const auto& ex) { consumers(ex); });
  _http.route("/v1/positions", [this](const auto& ex) { set_position(ex); });
  _http.route("/v1/dlq", [this](const auto& ex) { dlq(ex); });
  _http.route("/v1/dlq/redrive", [this](const auto& ex) { redrive(ex); });
  _http.route("/v1/stats", [this](const auto& ex) { stats(ex); });
  _http.route("/healthz", [this](const auto& ex) { health(ex); });
  _http.route("/metrics", [this](const auto& ex) { metrics(ex); });
  if (_faults) _http.route("/v1/debug/storage-fault", [this](const auto& ex) { debug_fault(ex); });
}

void http_api::publish(const std::shared_ptr<http_exchange>& ex) {
  const http_request& req = ex->request();
  if (req.method != "POST") {
    ex->respond(json_response(405, error_json("method_not_allowed", "use POST")));
    return;
  }
  std::weak_ptr<http_exchange> weak = ex;
  // The exchange stays alive in the callback: the reply comes after the durable write.
  _engine.publish(namespace_of(req), req.body, {}, [ex](std::string reply) {
    int status = status_for(reply);
    ex->respond(json_response(status, std::move(reply)));
  });
}

void http_api::topics(const std::shared_ptr<http_exchange>& ex) {
  const http_request& req = ex->request();
  if (req.method != "GET") {
    ex->respond(json_response(405, error_json("method_not_allowed", "use GET")));
    return;
  }
  std::string nsp = namespace_of(req);
  auto ns = _engine.namespace_id(nsp);
  if (!ns) {
    ex->respond(json_response(404, error_json("unknown_namespace", fmt::format("namespace {} is not served", nsp))));
    return;
  }
  storage::log& log = _engine.log();
  uint32_t epoch = log.epoch();
  std::string_view path = req.path;
  if (path == "/v1/topics" || path == "/v1/topics/") {
    std::string out = R"({"ok":true,"topics":[)";
    bool first = true;
    for (const auto& t : log.topics(*ns)) {
      if (!first) out.push_back(',');
      first = false;
      out += R"({"name":)";
      pjson::append_quoted(out, t.name);
      out += fmt::format(R"(,"head":"{}","first":"{}","count":{},"bytes":{},"created":{}}})",
                         protocol::format_offset({epoch, t.last_seq}), protocol::format_offset({epoch, t.first_seq + 1}),
                         t.count, t.bytes, t.created_ms);
    }
    out += fmt::format(R"(],"head":"{}"}})", protocol::format_offset({epoch, log.head(*ns)}));
    ex->respond(json_response(200, std::move(out)));
    return;
  }
  // /v1/topics/<topic>/events
  constexpr std::string_view prefix = "/v1/topics/";
  constexpr std::string_view suffix = "/events";
  if (!path.ends_with(suffix) || path.size() <= prefix.size() + suffix.size()) {
    ex->respond(json_response(404, error_json("not_found", "no such endpoint")));
    return;
  }
  http_request tmp;
  tmp.query = "t=" + std::string(path.substr(prefix.size(), path.size() - prefix.size() - suffix.size()));
  std::string topic;
  (void)tmp.query_param("t", topic);
  auto tid = log.find_topic(*ns, topic);
  std::string from_text, limit_text;
  (void)req.query_param("from", from_text);
  (void)req.query_param("limit", limit_text);
  size_t limit = 100;
  if (!limit_text.empty()) {
    try {
      limit = std::stoul(limit_text);
    } catch (...) {
      ex->respond(json_response(400, error_json("invalid_limit", "limit is a number")));
      return;
    }
    limit = std::clamp<size_t>(limit, 1, 10000);
  }
  uint64_t after = log.low_water(*ns);
  if (from_text.empty() || from_text == "earliest") {
    // from the first event kept
  } else if (from_text == "latest") {
    after = log.head(*ns);
  } else {
    auto off = protocol::parse_offset(from_text);
    if (!off) {
      ex->respond(json_response(400, error_json("invalid_offset", "unparseable offset")));
      return;
    }
    if (off->epoch != epoch) {
      ex->respond(json_response(400, error_json("epoch_mismatch", "the offset belongs to another data directory")));
      return;
    }
    after = std::max(after, off->seq > 0 ? off->seq - 1 : 0);  // inclusive
  }
  std::vector<storage::stored_event> evs;
  if (tid) {
    auto e = log.read(*ns, *tid, after, limit, 16 << 20, evs);
    if (e != storage::errc::ok) {
      ex->respond(json_response(500, error_json("storage_error", storage::to_string(e))));
      return;
    }
  }
  std::string out = R"({"ok":true,"events":[)";
  for (size_t i = 0; i < evs.size(); ++i) {
    if (i) out.push_back(',');
    append_event_json(out, {epoch, evs[i].seq}, evs[i].event());
  }
  uint64_t next = evs.empty() ? after + 1 : evs.back().seq + 1;
  out += fmt::format(R"(],"next":"{}"}})", protocol::format_offset({epoch, next}));
  ex->respond(json_response(200, std::move(out)));
}

void http_api::health(const std::shared_ptr<http_exchange>& ex) {
  auto h = _engine.log().health();
  bool ok = h == storage::errc::ok;
  ex->respond(json_response(ok ? 200 : 503, fmt::format(R"({{"ok":{},"storage":"{}","sessions":{},"connections":{}}})",
                                                        ok ? "true" : "false", storage::to_string(h),
                                                        _engine.stats().sessions, _http.connection_count())));
}

void http_api::metrics(const std::shared_ptr<http_exchange>& ex) {
  std::string out;
  auto counter = [&](std::string_view name, std::string_view help, uint64_t v) {
    fmt::format_to(std::back_inserter(out), "# HELP {0} {1}\n# TYPE {0} counter\n{0} {2}\n", name, help, v);
  };
  auto gauge = [&](std::string_view name, std::string_view help, uint64_t v) {
    fmt::format_to(std::back_inserter(out), "# HELP {0} {1}\n# TYPE {0} gauge\n{0} {2}\n", name, help, v);
  };
  const auto& es = _engine.stats();
  const auto& eio = _sio.engine().counters();
  const auto& sio = _sio.counters();
  auto ls = _engine.log().stats();
  gauge("ferry_connections", "Open TCP connections.", _http.connection_count());
  gauge("ferry_engineio_sessions", "Open Engine.IO sessions.", _sio.engine().session_count());
  counter("ferry_engineio_sessions_opened_total", "Engine.IO sessions opened.", eio.sessions_opened);
  counter("ferry_engineio_upgrades_total", "Polling to WebSocket upgrades.", eio.upgrades);
  counter("ferry_http_rejected_total", "Engine.IO requests answered with an error status.", eio.http_rejected);
  out += "# HELP ferry_engineio_closed_total Engine.IO sessions closed, by reason.\n# TYPE ferry_engineio_closed_total counter\n";
  for (size_t i = 0; i < eio::close_reason_count; ++i)
    fmt::format_to(std::back_inserter(out), "ferry_engineio_closed_total{{reason=\"{}\"}} {}\n",
                   eio::to_string(static_cast<eio::close_reason>(i)), eio.closed[i]);
  counter("ferry_socketio_connects_total", "Namespace connections accepted.", sio.connects);
  counter("ferry_socketio_connect_errors_total", "Namespace connections refused.", sio.connect_errors);
  out += "# HELP ferry_socketio_disconnects_total Namespace disconnections, by reason.\n# TYPE ferry_socketio_disconnects_total counter\n";
  for (size_t i = 0; i < sio::disconnect_reason_count; ++i)
    fmt::format_to(std::back_inserter(out), "ferry_socketio_disconnects_total{{reason=\"{}\"}} {}\n",
                   sio::to_string(static_cast<sio::disconnect_reason>(i)), sio.disconnects[i]);
  counter("ferry_published_total", "Events stored.", es.published);
  counter("ferry_duplicates_total", "Publishes acknowledged as duplicates.", es.duplicates);
  counter("ferry_publish_errors_total", "Publishes refused.", es.publish_errors);
  counter("ferry_delivered_total", "Events delivered live.", es.delivered);
  counter("ferry_replayed_total", "Events delivered from the log (catch-up, history, recovery).", es.replayed);
  counter("ferry_redelivered_total", "Ack-mode redeliveries.", es.redelivered);
  counter("ferry_dead_lettered_total", "Events moved to a dead-letter topic.", es.dead_lettered);
  counter("ferry_acks_total", "Ack-mode acknowledgements.", es.acks);
  counter("ferry_recoveries_total", "Sessions recovered.", es.recoveries);
  counter("ferry_recovery_failures_total", "Recovery attempts that could not be honoured.", es.recovery_failures);
  counter("ferry_gaps_total", "$gap notices sent.", es.gaps);
  counter("ferry_slow_consumer_cuts_total", "Subscribers moved from live fan-out to catch-up.", es.slow_consumer_cuts);
  gauge("ferry_sessions", "Broker sessions.", es.sessions);
  gauge("ferry_subscriptions", "Subscriptions.", es.subscriptions);
  counter("ferry_storage_group_commits_total", "Group commits.", ls.group_commits);
  counter("ferry_storage_write_errors_total", "Failed group commits.", ls.write_errors);
  counter("ferry_storage_corrupt_records_total", "Records that failed verification.", ls.corrupt_records);
  gauge("ferry_storage_healthy", "1 while storage writes succeed.", _engine.log().health() == storage::errc::ok ? 1 : 0);
  out += "# HELP ferry_consumer_lag Events on the topic after the named consumer's position.\n# TYPE ferry_consumer_lag gauge\n";
  for (const auto& l : _engine.consumer_lag())
    fmt::format_to(std::back_inserter(out), "ferry_consumer_lag{{namespace=\"{}\",consumer=\"{}\",topic=\"{}\"}} {}\n",
                   l.nsp, l.consumer, l.topic, l.lag);
  out += "# HELP ferry_dlq_depth Events in dead-letter topics.\n# TYPE ferry_dlq_depth gauge\n";
  for (const auto& [name, id] : _engine.log().namespaces()) {
    if (!_engine.namespace_id(name)) continue;
    for (const auto& t : _engine.log().topics(id))
      if (t.name.starts_with("$dlq.")) fmt::format_to(std::back_inserter(out), "ferry_dlq_depth{{namespace=\"{}\",topic=\"{}\"}} {}\n", name, t.name, t.count);
  }
  http_response r;
  r.headers.emplace_back("Content-Type", "text/plain; version=0.0.4");
  r.body = std::move(out);
  ex->respond(std::move(r));
}

namespace {

// Reads a string member of a JSON request body; empty if absent or not a string.
std::string member(const pjson::value& obj, std::string_view key) {
  pjson::value v;
  if (pjson::find_member(obj, key, v) && v.is_string()) return pjson::unescape(v);
  return {};
}

}  // namespace

void http_api::consumers(const std::shared_ptr<http_exchange>& ex) {
  const http_request& req = ex->request();
  std::string nsp = namespace_of(req), only;
  (void)req.query_param("consumer", only);
  auto ns = _engine.namespace_id(nsp);
  if (!ns) {
    ex->respond(json_response(404, error_json("unknown_namespace", fmt::format("namespace {} is not served", nsp))));
    return;
  }
  storage::log& log = _engine.log();
  uint32_t epoch = log.epoch();
  std::string out = R"({"ok":true,"consumers":[)";
  bool first = true;
  auto lags = _engine.consumer_lag();
  for (const auto& p : log.positions(*ns)) {
    if (!only.empty() && p.consumer != only) continue;
    auto t = log.topic(*ns, p.topic_id);
    if (!t) continue;
    uint64_t lag = 0;
    for (const auto& l : lags)
      if (l.nsp == nsp && l.consumer == p.consumer && l.topic == t->name) lag = l.lag;
    if (!first) out.push_back(',');
    first = false;
    out += R"({"consumer":)";
    pjson::append_quoted(out, p.consumer);
    out += R"(,"topic":)";
    pjson::append_quoted(out, t->name);
    out += fmt::format(R"(,"position":"{}","head":"{}","lag":{},"updated":{},"active":{}}})",
                       protocol::format_offset({epoch, p.seq}), protocol::format_offset({epoch, t->last_seq}), lag,
                       p.updated_ms, _engine.consumer_active(nsp, p.consumer, t->name) ? "true" : "false");
  }
  out += "]}";
  ex->respond(json_response(200, std::move(out)));
}

void http_api::set_position(const std::shared_ptr<http_exchange>& ex) {
  const http_request& req = ex->request();
  if (req.method != "POST") {
    ex->respond(json_response(405, error_json("method_not_allowed", "use POST")));
    return;
  }
  auto body = pjson::parse(req.body);
  if (!body || !body->is_object()) {
    ex->respond(json_response(400, error_json("invalid_payload", "expected {consumer, topic, to, namespace?}")));
    return;
  }
  std::string consumer = member(*body, "consumer"), topic = member(*body, "topic"), to = member(*body, "to");
  std::string nsp = member(*body, "namespace");
  if (nsp.empty()) nsp = "/";
  if (consumer.empty() || topic.empty() || to.empty()) {
    ex->respond(json_response(400, error_json("invalid_payload", "consumer, topic and to are required")));
    return;
  }
  auto ns = _engine.namespace_id(nsp);
  if (!ns) {
    ex->respond(json_response(404, error_json("unknown_namespace", fmt::format("namespace {} is not served", nsp))));
    return;
  }
  storage::log& log = _engine.log();
  auto tid = log.find_topic(*ns, topic);
  if (!tid) {
    ex->respond(json_response(404, error_json("unknown_topic", "no such topic")));
    return;
  }
  auto info = log.topic(*ns, *tid);
  uint64_t seq;
  if (to == "earliest") {
    seq = log.low_water(*ns);
  } else if (to == "latest") {
    seq = info->last_seq;
  } else {
    auto off = protocol::parse_offset(to);
    if (!off) {
      ex->respond(json_response(400, error_json("invalid_offset", "to is an offset, earliest or latest")));
      return;
    }
    if (off->epoch != log.epoch()) {
      ex->respond(json_response(400, error_json("epoch_mismatch", "the offset belongs to another data directory")));
      return;
    }
    if (off->seq > info->last_seq + 1) {
      ex->respond(json_response(400, error_json("beyond_head", "the offset is beyond the head of the topic")));
      return;
    }
    seq = off->seq > 0 ? off->seq - 1 : 0;  // the next delivery is that offset
  }
  if (_engine.consumer_active(nsp, consumer, topic)) {
    ex->respond(json_response(409, error_json("consumer_active",
                                              "the consumer is connected and subscribed to the topic; disconnect it first")));
    return;
  }
  uint32_t epoch = log.epoch();
  log.put_position(*ns, consumer, *tid, seq, [ex, epoch, seq](storage::errc e) {
    if (e != storage::errc::ok) {
      ex->respond(json_response(503, error_json("storage_unavailable", storage::to_string(e))));
      return;
    }
    ex->respond(json_response(200, fmt::format(R"({{"ok":true,"position":"{}"}})", protocol::format_offset({epoch, seq}))));
  });
}

void http_api::dlq(const std::shared_ptr<http_exchange>& ex) {
  std::string nsp = namespace_of(ex->request());
  auto ns = _engine.namespace_id(nsp);
  if (!ns) {
    ex->respond(json_response(404, error_json("unknown_namespace", fmt::format("namespace {} is not served", nsp))));
    return;
  }
  storage::log& log = _engine.log();
  std::string out = R"({"ok":true,"topics":[)";
  bool first = true;
  for (const auto& t : log.topics(*ns)) {
    if (!t.name.starts_with("$dlq.")) continue;
    uint64_t redriven = 0;
    if (auto p = log.get_position(*ns, "$redrive", t.id)) redriven = *p;
    if (!first) out.push_back(',');
    first = false;
    out += R"({"topic":)";
    pjson::append_quoted(out, t.name);
    out += R"(,"consumer":)";
    pjson::append_quoted(out, std::string_view(t.name).substr(5));
    out += fmt::format(R"(,"count":{},"head":"{}","redriven_to":"{}"}})", t.count,
                       protocol::format_offset({log.epoch(), t.last_seq}), protocol::format_offset({log.epoch(), redriven}));
  }
  out += "]}";
  ex->respond(json_response(200, std::move(out)));
}

void http_api::redrive(const std::shared_ptr<http_exchange>& ex) {
  const http_request& req = ex->request();
  if (req.method != "POST") {
    ex->respond(json_response(405, error_json("method_not_allowed", "use POST")));
    return;
  }
  auto body = pjson::parse(req.body);
  if (!body || !body->is_object()) {
    ex->respond(json_response(400, error_json("invalid_payload", "expected {consumer, namespace?, limit?}")));
    return;
  }
  std::string consumer = member(*body, "consumer"), nsp = member(*body, "namespace");
  if (nsp.empty()) nsp = "/";
  size_t limit = 1000;
  pjson::value lv;
  uint64_t l = 0;
  if (pjson::find_member(*body, "limit", lv) && pjson::as_uint64(lv, l) && l > 0) limit = std::min<uint64_t>(l, 10000);
  auto ns = _engine.namespace_id(nsp);
  if (!ns || consumer.empty()) {
    ex->respond(json_response(ns ? 400 : 404, error_json(ns ? "invalid_payload" : "unknown_namespace",
                                                        ns ? "consumer is required" : "namespace is not served")));
    return;
  }
  storage::log& log = _engine.log();
  auto tid = log.find_topic(*ns, "$dlq." + consumer);
  if (!tid) {
    ex->respond(json_response(404, error_json("unknown_topic", "no dead-letter topic for that consumer")));
    return;
  }
  uint64_t after = 0;
  if (auto p = log.get_position(*ns, "$redrive", *tid)) after = *p;
  std::vector<storage::stored_event> evs;
  if (auto e = log.read(*ns, *tid, after, limit, 16 << 20, evs); e != storage::errc::ok) {
    ex->respond(json_response(500, error_json("storage_error", storage::to_string(e))));
    return;
  }
  if (evs.empty()) {
    ex->respond(json_response(200, R"({"ok":true,"redriven":0})"));
    return;
  }
  // Back to the origin topics as one batch; the id "redrive:<dlq offset>" makes a repeated
  // redrive (e.g. after a crash between publish and position update) a no-op.
  std::string batch = "[";
  uint32_t epoch = log.epoch();
  std::vector<std::string> attachments;
  bool binary = false;
  for (size_t i = 0; i < evs.size(); ++i) {
    const schema::Event* e = evs[i].event();
    auto view = [](const flatbuffers::String* s) { return s ? std::string_view(s->data(), s->size()) : std::string_view(); };
    if (e->attachments() && e->attachments()->size() > 0) binary = true;
    if (i) batch.push_back(',');
    batch += R"({"topic":)";
    pjson::append_quoted(batch, view(e->origin_topic()));
    batch += R"(,"event":)";
    pjson::append_quoted(batch, view(e->event()));
    batch += fmt::format(R"(,"id":"redrive:{}")", protocol::format_offset({epoch, evs[i].seq}));
    if (!view(e->data()).empty()) {
      batch += R"(,"data":)";
      batch += view(e->data());
    }
    batch.push_back('}');
  }
  batch.push_back(']');
  if (binary) {
    ex->respond(json_response(400, error_json("unsupported", "redrive of events with binary attachments is not supported")));
    return;
  }
  uint64_t last = evs.back().seq;
  size_t count = evs.size();
  uint32_t dlq_topic = *tid;
  uint32_t ns_id = *ns;
  _engine.publish(nsp, batch, {}, [this, ex, ns_id, dlq_topic, last, count, epoch](std::string reply) {
    if (!reply.starts_with(R"({"ok":true)")) {
      ex->respond(json_response(status_for(reply), std::move(reply)));
      return;
    }
    _engine.log().put_position(ns_id, "$redrive", dlq_topic, last, [ex, last, count, epoch](storage::errc e) {
      if (e != storage::errc::ok) {
        ex->respond(json_response(503, error_json("storage_unavailable", storage::to_string(e))));
        return;
      }
      ex->respond(json_response(200, fmt::format(R"({{"ok":true,"redriven":{},"position":"{}"}})", count,
                                                 protocol::format_offset({epoch, last}))));
    });
  });
}

void http_api::stats(const std::shared_ptr<http_exchange>& ex) {
  const auto& es = _engine.stats();
  auto ls = _engine.log().stats();
  std::string out = fmt::format(
      R"({{"ok":true,"connections":{},"engineio_sessions":{},"sessions":{},"subscriptions":{},"published":{},)"
      R"("duplicates":{},"publish_errors":{},"delivered":{},"replayed":{},"redelivered":{},"dead_lettered":{},)"
      R"("acks":{},"recoveries":{},"recovery_failures":{},"gaps":{},"slow_consumer_cuts":{},)"
      R"("storage":{{"healthy":{},"sync":"{}","group_commits":{},"write_errors":{},"corrupt_records":{},"appended":{}}},)"
      R"("namespaces":[)",
      _http.connection_count(), _sio.engine().session_count(), es.sessions, es.subscriptions, es.published, es.duplicates,
      es.publish_errors, es.delivered, es.replayed, es.redelivered, es.dead_lettered, es.acks, es.recoveries,
      es.recovery_failures, es.gaps, es.slow_consumer_cuts,
      _engine.log().health() == storage::errc::ok ? "true" : "false", storage::to_string(_engine.log().sync()),
      ls.group_commits, ls.write_errors, ls.corrupt_records, ls.appended_events);
  bool first = true;
  for (const auto& [name, id] : _engine.log().namespaces()) {
    if (!_engine.namespace_id(name)) continue;
    if (!first) out.push_back(',');
    first = false;
    out += R"({"name":)";
    pjson::append_quoted(out, name);
    out += fmt::format(R"(,"head":"{}","topics":{}}})", protocol::format_offset({_engine.log().epoch(), _engine.log().head(id)}),
                       _engine.log().topics(id).size());
  }
  out += "]}";
  ex->respond(json_response(200, std::move(out)));
}

void http_api::debug_fault(const std::shared_ptr<http_exchange>& ex) {
  const std::string& body = ex->request().body;
  if (body == "io_error") _faults->fail_writes(storage::fault_injector::kind::io_error);
  else if (body == "no_space") _faults->fail_writes(storage::fault_injector::kind::no_space);
  else if (body == "none") _faults->clear();
  else {
    ex->respond(json_response(400, error_json("invalid", "body is io_error, no_space or none")));
    return;
  }
  ex->respond(json_response(200, R"({"ok":true})"));
}

}  // namespace ferry::broker
