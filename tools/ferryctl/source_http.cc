// Online source: the broker's HTTP API (broker/http_api.h, README "HTTP API").
#include <algorithm>
#include <memory>

#include <fmt/format.h>

#include "protocol/json.h"
#include "tools/ferryctl/args.h"
#include "tools/ferryctl/http_client.h"
#include "tools/ferryctl/interrupt.h"
#include "tools/ferryctl/source.h"

#ifndef FERRY_VERSION
#define FERRY_VERSION "dev"
#endif

namespace ferry::ferryctl {
namespace {

namespace pjson = ferry::protocol::json;

// Replies wrap event data (itself up to the broker's nesting limit) in a few levels.
constexpr unsigned reply_max_depth = pjson::default_max_depth + 8;

// A parsed JSON reply. The values point into `body`, which the shared_ptr keeps in place.
struct json_reply {
  std::shared_ptr<const std::string> body;
  pjson::value root;
};

[[noreturn]] void unexpected(std::string_view what) {
  throw failure(exit_code::broker_error, fmt::format("unexpected reply from the broker: {}", what));
}

pjson::value member(pjson::value obj, std::string_view key) {
  pjson::value v;
  if (!obj.is_object() || !pjson::find_member(obj, key, v)) unexpected(fmt::format("no \"{}\"", key));
  return v;
}

bool has_member(pjson::value obj, std::string_view key) {
  pjson::value v;
  return obj.is_object() && pjson::find_member(obj, key, v) && v.type != pjson::kind::null;
}

std::string str(pjson::value obj, std::string_view key) {
  pjson::value v = member(obj, key);
  if (!v.is_string()) unexpected(fmt::format("\"{}\" is not a string", key));
  return pjson::unescape(v);
}

uint64_t u64(pjson::value obj, std::string_view key) {
  uint64_t out = 0;
  if (!pjson::as_uint64(member(obj, key), out)) unexpected(fmt::format("\"{}\" is not an unsigned integer", key));
  return out;
}

int64_t i64(pjson::value obj, std::string_view key) {
  int64_t out = 0;
  if (!pjson::as_int64(member(obj, key), out)) unexpected(fmt::format("\"{}\" is not an integer", key));
  return out;
}

protocol::offset off(pjson::value obj, std::string_view key) {
  auto o = protocol::parse_offset(str(obj, key));
  if (!o) unexpected(fmt::format("\"{}\" is not an offset", key));
  return *o;
}

template <class F>
void each(pjson::value array, F&& f) {
  if (!array.is_array()) unexpected("expected an array");
  pjson::array_reader r(array);
  pjson::value v;
  while (r.next(v)) f(v);
}

class online_source final : public source, public broker_api {
 public:
  online_source(http::url server, const online_options& o, std::string nsp)
      : _server(server), _http(std::move(server), client_options(o)), _nsp(std::move(nsp)) {}

  bool online() const noexcept override { return true; }
  std::string where() const override { return _server.text(); }
  const std::string& namespace_name() const noexcept override { return _nsp; }

  uint32_t epoch() override {
    if (!_epoch) (void)topics();
    return *_epoch;
  }

  std::vector<topic_row> topics() override {
    json_reply r = get("/v1/topics?namespace=" + http::percent_encode(_nsp));
    std::vector<topic_row> out;
    each(member(r.root, "topics"), [&](pjson::value t) {
      out.push_back(
          {str(t, "name"), off(t, "head"), off(t, "first"), u64(t, "count"), u64(t, "bytes"), i64(t, "created")});
    });
    _head = off(r.root, "head");
    _epoch = _head.epoch;
    return out;
  }

  protocol::offset namespace_head() override {
    (void)topics();
    return _head;
  }

  events_page read(const std::string& topic, uint64_t from_seq, size_t limit) override {
    std::string target = fmt::format("/v1/topics/{}/events?from={}&limit={}&namespace={}", http::percent_encode(topic),
                                     protocol::format_offset({epoch(), std::max<uint64_t>(from_seq, 1)}),
                                     std::clamp<size_t>(limit, 1, 10000), http::percent_encode(_nsp));
    json_reply r = get(target);
    events_page page;
    each(member(r.root, "events"), [&](pjson::value e) { page.events.push_back(to_record(e)); });
    page.next_seq = off(r.root, "next").seq;
    return page;
  }

  uint64_t seq_before_time(int64_t) override { return 0; }  // no time index over HTTP

  std::vector<position_row> positions(const std::string& consumer) override {
    std::string target = "/v1/consumers?namespace=" + http::percent_encode(_nsp);
    if (!consumer.empty()) target += "&consumer=" + http::percent_encode(consumer);
    json_reply r = get(target);
    std::vector<position_row> out;
    each(member(r.root, "consumers"), [&](pjson::value c) {
      position_row row{str(c, "consumer"), str(c, "topic"),   off(c, "position"), off(c, "head"),
                       u64(c, "lag"),      i64(c, "updated"), std::nullopt};
      if (has_member(c, "active")) row.active = member(c, "active").is_true();
      out.push_back(std::move(row));
    });
    return out;
  }

  std::vector<dlq_row> dlq() override {
    json_reply r = get("/v1/dlq?namespace=" + http::percent_encode(_nsp));
    std::vector<dlq_row> out;
    each(member(r.root, "topics"), [&](pjson::value t) {
      out.push_back({str(t, "topic"), str(t, "consumer"), u64(t, "count"), off(t, "head"), off(t, "redriven_to")});
    });
    return out;
  }

  std::string stats_json() override {
    json_reply r = get("/v1/stats");
    std::string_view raw = r.root.raw;
    return pjson::is_compact(raw) ? std::string(raw) : pjson::minify(raw);
  }

  void refresh() override {}

  std::string set_position(const std::string& consumer, const std::string& topic, const std::string& to) override {
    std::string body = R"({"consumer":)" + pjson::quoted(consumer) + R"(,"topic":)" + pjson::quoted(topic) +
                       R"(,"to":)" + pjson::quoted(to) + R"(,"namespace":)" + pjson::quoted(_nsp) + "}";
    json_reply r = post("/v1/positions", body);
    return str(r.root, "position");
  }

  redrive_result redrive(const std::string& consumer, uint64_t limit) override {
    std::string body = R"({"consumer":)" + pjson::quoted(consumer) + R"(,"namespace":)" + pjson::quoted(_nsp);
    if (limit > 0) body += fmt::format(R"(,"limit":{})", limit);
    body += "}";
    json_reply r = post("/v1/dlq/redrive", body);
    redrive_result out;
    out.redriven = u64(r.root, "redriven");
    if (has_member(r.root, "position")) out.position = str(r.root, "position");
    return out;
  }

  std::vector<published> publish_batch(const std::string& array_json, size_t count) override {
    std::string target = "/v1/publish?namespace=" + http::percent_encode(_nsp);
    // 429 (overloaded, rate_limited) means nothing was stored: back off and resend.
    json_reply r;
    for (int attempt = 0;; ++attempt) {
      auto resp = send("POST", target, array_json);
      if (resp.status == 429 && attempt < 6) {
        if (!sleep_unless_interrupted(std::chrono::milliseconds(100 << attempt))) throw interrupted{};
        continue;
      }
      r = parse_reply(std::move(resp));
      break;
    }
    std::vector<published> out;
    each(member(r.root, "offsets"), [&](pjson::value v) {
      if (!v.is_string()) unexpected("\"offsets\" holds a non-string");
      out.push_back({pjson::unescape(v), false});
    });
    if (has_member(r.root, "duplicates")) {
      size_t i = 0;
      each(member(r.root, "duplicates"), [&](pjson::value v) {
        if (i < out.size()) out[i].duplicate = v.is_true();
        ++i;
      });
    }
    if (out.size() != count) unexpected(fmt::format("{} offsets for {} events", out.size(), count));
    return out;
  }

 private:
  static http::client_options client_options(const online_options& o) {
    http::client_options c;
    c.connect_timeout = std::chrono::milliseconds(o.connect_timeout_ms);
    c.request_timeout = std::chrono::milliseconds(o.timeout_ms);
    c.cancel = &interrupt_flag();
    c.user_agent = "ferryctl/" FERRY_VERSION;
    return c;
  }

  http::response send(std::string_view method, const std::string& target, std::string_view body) {
    auto resp = method == "GET" ? _http.get(target) : _http.post(target, body);
    if (!resp) {
      if (resp.error() == http::errc::cancelled) throw interrupted{};
      std::string detail = _http.last_error_detail();
      throw failure(exit_code::unavailable,
                    fmt::format("cannot reach the broker at {}: {}{}{}", _server.text(), http::to_string(resp.error()),
                                detail.empty() ? "" : " (", detail.empty() ? "" : detail + ")"));
    }
    return std::move(*resp);
  }

  json_reply get(const std::string& target) { return parse_reply(send("GET", target, {})); }
  json_reply post(const std::string& target, std::string_view body) { return parse_reply(send("POST", target, body)); }

  // 2xx with a JSON object, or a failure with the broker's error code and message.
  json_reply parse_reply(http::response resp) {
    json_reply r;
    r.body = std::make_shared<const std::string>(std::move(resp.body));
    auto parsed = pjson::parse(*r.body, reply_max_depth);
    if (resp.status >= 200 && resp.status < 300) {
      if (!parsed || !parsed->is_object())
        unexpected(fmt::format("HTTP {} without a JSON object (is {} a Ferry broker?)", resp.status, _server.text()));
      r.root = *parsed;
      return r;
    }
    std::string code, message;
    pjson::value err;
    if (parsed && parsed->is_object() && pjson::find_member(*parsed, "error", err) && err.is_object()) {
      pjson::value v;
      if (pjson::find_member(err, "code", v) && v.is_string()) code = pjson::unescape(v);
      if (pjson::find_member(err, "message", v) && v.is_string()) message = pjson::unescape(v);
    }
    if (code.empty()) {  // not an error object of Ferry's HTTP API
      throw failure(exit_code::broker_error,
                    fmt::format("{} replied HTTP {} {} without a Ferry error object (is it a Ferry broker?)",
                                _server.text(), resp.status, resp.reason));
    }
    exit_code ec = exit_code::broker_error;
    if (code == "unknown_namespace" || code == "unknown_topic" || code == "not_found") ec = exit_code::not_found;
    if (message.find("corrupt") != std::string::npos) ec = exit_code::corruption;
    throw failure(
        ec, fmt::format("the broker replied HTTP {}: {}{}{}", resp.status, code, message.empty() ? "" : ": ", message));
  }

  event_record to_record(pjson::value e) {
    event_record rec;
    rec.offset = off(e, "offset");
    rec.topic = str(e, "topic");
    rec.event = str(e, "event");
    rec.id = str(e, "id");
    rec.ts_ms = i64(e, "ts");
    rec.data = std::string(member(e, "data").raw);
    if (has_member(e, "attachments")) {
      each(member(e, "attachments"),
           [&](pjson::value a) { rec.attachments.push_back(a.is_string() ? pjson::unescape(a) : ""); });
    }
    if (has_member(e, "dlq")) {
      pjson::value d = member(e, "dlq");
      rec.dlq = dlq_info{str(d, "topic"), str(d, "offset"), str(d, "reason"), u64(d, "deliveries")};
    }
    return rec;
  }

  http::url _server;
  http::client _http;
  std::string _nsp;
  std::optional<uint32_t> _epoch;
  protocol::offset _head;
};

}  // namespace

std::unique_ptr<source> open_online(const online_options& options, const std::string& nsp) {
  std::string why;
  auto u = http::parse_url(options.url, &why);
  if (!u) throw failure(exit_code::usage, fmt::format("bad --url '{}': {}", options.url, why));
  return std::make_unique<online_source>(std::move(*u), options, nsp);
}

}  // namespace ferry::ferryctl
