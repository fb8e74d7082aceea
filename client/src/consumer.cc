// consumer.cc - ferry::client::consumer: subscriptions, deliveries, acks, commits.
//
// Deliveries arrive as ordinary events (any name) shaped [data, {topic,id,ts}, "offset"];
// the socket dispatches them as they arrive, also during a session recovery (before the
// CONNECT ack), while acks wait in the socket's send buffer for the CONNECT ack (the
// broker drops packets of a namespace it has not acknowledged yet). All state is on the
// manager's strand.
#include <asio/bind_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <atomic>
#include <map>

#include "client/src/ferry_codec.h"
#include "client/src/sio_impl.h"
#include "ferry/client/consumer.h"
#include "ferry/client/runner.h"
#include "protocol/json.h"

namespace ferry::client {

struct ack_token::state {
  std::weak_ptr<detail::consumer_impl> consumer;
  std::string topic;
  std::string offset;
  std::atomic<bool> done{false};
};

namespace detail {

namespace pjson = ferry::protocol::json;

namespace {

void check_options(const consumer_options& o) {
  auto bad = [](const std::string& what) { throw config_error(errc::invalid_argument, "ferry consumer: " + what); };
  auto auth = pjson::parse(o.auth);
  if (!auth || !auth->is_object()) bad("auth must be a JSON object");
  if (o.request_timeout.count() <= 0) bad("request_timeout must be > 0");
  if (o.auto_commit_interval.count() < 0) bad("auto_commit_interval must be >= 0");
  if (o.consumer.size() > max_topic_bytes) bad("consumer name too long");
  if (o.max_pending_acks == 0) bad("max_pending_acks must be >= 1");
}

// {"consumer":"<name>", <the application's members>} (its own keys win).
std::string auth_with_consumer(const std::string& auth, const std::string& consumer) {
  if (consumer.empty()) return auth;
  std::string out = "{\"consumer\":";
  pjson::append_quoted(out, consumer);
  auto doc = pjson::parse(auth);
  std::string_view inner = doc->raw.substr(1, doc->raw.size() - 2);
  size_t i = inner.find_first_not_of(" \t\r\n");
  if (i != std::string_view::npos) {
    out.push_back(',');
    out.append(inner);
  }
  out.push_back('}');
  return out;
}

}  // namespace

class consumer_impl : public std::enable_shared_from_this<consumer_impl> {
 public:
  consumer_impl(asio::io_context& io, consumer_options opts)
      : _opts(std::move(opts)), _log(_opts.log, _opts.min_log_level, "ferry-consumer: "), _commit_timer(io) {
    check_options(_opts);
    auto url = parse_server_url(_opts.url);
    if (!url) throw config_error(url.err().code, "ferry consumer: invalid URL " + url.err().message);
    sio::client_options co;
    co.url = _opts.url;
    co.path = _opts.path;
    co.connect_timeout = _opts.connect_timeout;
    co.reconnect = _opts.reconnect;
    co.auto_connect = false;
    co.log = _opts.log;
    co.min_log_level = _opts.min_log_level;
    _manager = std::make_shared<manager_impl>(io, co, *url);
    sio::socket_options so;
    so.auth = auth_with_consumer(_opts.auth, _opts.consumer);
    so.dispatch_before_connect = true;
    so.recovery = true;
    so.max_pending_acks = 100000;
    _socket = _manager->socket(_opts.nsp, so);
  }

  void start() {
    std::weak_ptr<consumer_impl> weak = weak_from_this();
    _manager->on_error([weak](const error& e) {
      if (auto s = weak.lock()) s->report(e);
    });
    _socket->on_any([weak](std::string_view event, const sio::message& m) {
      if (auto s = weak.lock()) s->on_message(event, m);
    });
    _socket->on_connect([weak](const sio::connect_info& info) {
      if (auto s = weak.lock()) s->on_connected(info);
    });
    _socket->on_disconnect([weak](sio::disconnect_reason r, const std::string& d) {
      if (auto s = weak.lock()) s->on_disconnected(r, d);
    });
    _socket->on_connect_error([weak](const error& e) {
      if (auto s = weak.lock()) s->on_connect_failed(e);
    });
    _socket->connect();
    asio::post(_manager->strand(), [weak] {
      if (auto s = weak.lock()) s->arm_commit();
    });
  }

  // ---- any thread

  void subscribe(std::string topic, subscription_options o, event_handler h,
                 std::function<void(result<subscribe_ack>)> done) {
    asio::post(_manager->strand(), [self = shared_from_this(), topic = std::move(topic), o = std::move(o),
                                    h = std::move(h), done = std::move(done)]() mutable {
      self->strand_subscribe(std::move(topic), std::move(o), std::move(h), std::move(done));
    });
  }

  void unsubscribe(std::string topic, std::function<void(result<void>)> done) {
    asio::post(
        _manager->strand(), [self = shared_from_this(), topic = std::move(topic), done = std::move(done)]() mutable {
          if (self->_fatal) return done(*self->_fatal);
          auto it = self->_subs.find(topic);
          if (it == self->_subs.end()) return done(error{errc::not_subscribed, "no subscription to " + topic});
          self->_subs.erase(it);  // no handler call from now on
          self->request("unsubscribe", encode_topic_request(topic), [done = std::move(done)](result<sio::message> r) {
            if (!r) return done(r.err());
            done(parse_ok_reply(r->arg(0)));
          });
        });
  }

  void commit(std::string topic, std::string offset, std::function<void(result<void>)> done) {
    asio::post(_manager->strand(), [self = shared_from_this(), topic = std::move(topic), offset = std::move(offset),
                                    done = std::move(done)]() mutable {
      if (self->_fatal) return done(*self->_fatal);
      if (!self->_subs.count(topic)) return done(error{errc::not_subscribed, "no subscription to " + topic});
      // Not queued while disconnected: a commit is only meaningful on a live session.
      if (!self->_socket->is_connected()) return done(error{errc::disconnected, "not connected to the broker"});
      std::weak_ptr<consumer_impl> weak = self;
      self->request("commit", encode_commit(topic, offset), [weak, done = std::move(done)](result<sio::message> r) {
        if (!r) return done(r.err());
        auto ok = parse_ok_reply(r->arg(0));
        if (ok) {
          if (auto s = weak.lock()) ++s->_commits;
        }
        done(std::move(ok));
      });
    });
  }

  void on_gap(std::function<void(const gap_info&)> h) {
    asio::post(_manager->strand(),
               [self = shared_from_this(), h = std::move(h)]() mutable { self->_on_gap = std::move(h); });
  }
  void on_error(std::function<void(const error&)> h) {
    asio::post(_manager->strand(),
               [self = shared_from_this(), h = std::move(h)]() mutable { self->_on_error = std::move(h); });
  }
  void on_connect(std::function<void(const sio::connect_info&)> h) {
    asio::post(_manager->strand(),
               [self = shared_from_this(), h = std::move(h)]() mutable { self->_on_connect = std::move(h); });
  }

  void close() {
    if (_closed.exchange(true)) return;
    asio::post(_manager->strand(), [self = shared_from_this()] { self->strand_close(); });
  }

  consumer_stats stats() const {
    consumer_stats s;
    s.delivered = _delivered.load();
    s.filtered = _filtered.load();
    s.acked = _acked.load();
    s.commits = _commits.load();
    s.gaps = _gaps.load();
    s.reconnects = _connects.load() > 0 ? _connects.load() - 1 : 0;
    s.recovered = _recoveries.load();
    s.connected = _socket->connected();
    return s;
  }

  // From ack_token::ack (any thread).
  void ack(std::string topic, std::string offset) {
    asio::post(_manager->strand(), [self = shared_from_this(), topic = std::move(topic), offset = std::move(offset)] {
      self->do_ack(topic, offset);
    });
  }

 private:
  struct subscription {
    subscription_options opts;
    event_handler handler;
    bool confirmed = false;                       // the broker answered the subscribe
    bool requesting = false;                      // a subscribe is in flight
    std::string hw;                               // offset of the last event handed to the handler
    std::string committed;                        // last offset committed by auto-commit
    std::map<std::string, sio::message> pending;  // ack mode: handed, not yet acknowledged (by offset)
    std::vector<std::function<void(result<subscribe_ack>)>> waiters;
    std::unique_ptr<asio::steady_timer> timer;  // request_timeout of the first subscribe call
  };

  void request(const char* event, std::string payload, sio::ack_callback cb) {
    _socket->strand_emit(socket_impl::emit_request{event, std::move(payload), {}}, std::move(cb),
                         _opts.request_timeout);
  }

  // ---- strand

  void strand_subscribe(std::string topic, subscription_options o, event_handler h,
                        std::function<void(result<subscribe_ack>)> done) {
    if (_fatal || _closed.load()) {
      guarded(_log, "subscribe callback", [&] {
        done(_fatal ? *_fatal : error{errc::closed, "the consumer is closed"});
      });
      return;
    }
    // Any topic the broker accepts, including its own ($dlq.<consumer>).
    bool bad_topic = topic.empty() || topic.size() > max_topic_bytes + 64;
    for (unsigned char c : topic) bad_topic |= c < 0x20 || c == 0x7f;
    if (bad_topic) {
      error e{errc::invalid_argument,
              "a topic is 1 to " + std::to_string(max_topic_bytes + 64) + " bytes without control characters"};
      guarded(_log, "subscribe callback", [&] { done(e); });
      return;
    }
    auto& sub = _subs[topic];
    bool fresh = !sub.handler;
    sub.handler = std::move(h);
    if (fresh) sub.opts = std::move(o);
    if (done) sub.waiters.push_back(std::move(done));
    if (!sub.timer && !sub.confirmed) {
      sub.timer = std::make_unique<asio::steady_timer>(_manager->io(), _opts.request_timeout);
      sub.timer->async_wait(asio::bind_executor(_manager->strand(), [weak = weak_from_this(),
                                                                     topic](const asio::error_code& ec) {
        auto s = weak.lock();
        if (!s || ec) return;
        auto it = s->_subs.find(topic);
        if (it == s->_subs.end() || it->second.confirmed) return;
        auto waiters = std::move(it->second.waiters);
        s->_subs.erase(it);
        error e{errc::timeout, "no subscribe reply within " + std::to_string(s->_opts.request_timeout.count()) + " ms"};
        for (auto& w : waiters) guarded(s->_log, "subscribe callback", [&] { w(e); });
      }));
    }
    if (_socket->is_connected()) send_subscribe(topic);
  }

  void send_subscribe(const std::string& topic) {
    auto it = _subs.find(topic);
    if (it == _subs.end() || it->second.requesting) return;
    subscription& sub = it->second;
    start_position from = sub.opts.from;
    if (!sub.hw.empty()) {
      // Resubscribing after a session that could not be restored: continue after what was
      // handed out (inclusive offset; the high-water filter drops the repeat). In ack mode
      // the oldest unacknowledged delivery comes first.
      from = start_position::at_offset(sub.pending.empty() ? sub.hw : sub.pending.begin()->first);
    }
    std::string consumer = sub.opts.consumer.empty() ? _opts.consumer : sub.opts.consumer;
    sub.requesting = true;
    std::weak_ptr<consumer_impl> weak = weak_from_this();
    request("subscribe", encode_subscribe(topic, from, consumer, sub.opts.mode),
            [weak, topic, resumed = !sub.hw.empty()](result<sio::message> r) {
              if (auto s = weak.lock()) s->on_subscribe_reply(topic, resumed, std::move(r));
            });
  }

  void on_subscribe_reply(const std::string& topic, bool resumed, result<sio::message> r) {
    auto it = _subs.find(topic);
    if (it == _subs.end()) return;  // unsubscribed or timed out meanwhile
    subscription& sub = it->second;
    sub.requesting = false;
    if (!r) {
      if (r.code() == errc::disconnected || r.code() == errc::timeout) return;  // resent after the reconnect
      finish_subscribe(topic, r.err());
      return;
    }
    auto rep = parse_subscribe_reply(r->arg(0));
    if (!rep && resumed && rep.err().message.rfind("epoch_mismatch", 0) == 0) {
      // The broker's log is not the one our offsets came from (wiped or replaced).
      _log.warn("topic {}: the broker no longer knows our offsets (epoch changed); subscribing from the original start",
                topic);
      sub.hw.clear();
      sub.pending.clear();
      send_subscribe(topic);
      return;
    }
    if (!rep) {
      finish_subscribe(topic, rep.err());
      return;
    }
    sub.confirmed = true;
    if (sub.timer) {
      sub.timer->cancel();
      sub.timer.reset();
    }
    auto waiters = std::move(sub.waiters);
    sub.waiters.clear();
    for (auto& w : waiters) guarded(_log, "subscribe callback", [&] { w(*rep); });
  }

  // A subscribe failed for good: the subscription is removed.
  void finish_subscribe(const std::string& topic, const error& e) {
    auto it = _subs.find(topic);
    if (it == _subs.end()) return;
    auto waiters = std::move(it->second.waiters);
    _subs.erase(it);
    _log.warn("subscribe {} failed: {}", topic, e.what());
    for (auto& w : waiters) guarded(_log, "subscribe callback", [&] { w(e); });
  }

  void on_message(std::string_view event, const sio::message& m) {
    if (_closed.load()) return;
    if (event == "$offset") return;  // the broker seeding our recovery offset; the socket tracked it
    if (event == "$gap") {
      auto g = parse_gap(m);
      if (!g) return;
      ++_gaps;
      _log.warn("gap{}{}: events from {} are gone ({}); continuing at {}", g->topic.empty() ? "" : " on topic ",
                g->topic, g->from.empty() ? "?" : g->from, g->reason, g->first);
      if (_on_gap && !_closed.load()) guarded(_log, "gap handler", [&] { _on_gap(*g); });
      return;
    }
    auto ev = parse_delivery(m);
    if (!ev) {
      _log.debug("event \"{}\" is not a Ferry delivery; ignored", event);
      return;
    }
    auto it = _subs.find(ev->topic);
    if (it == _subs.end()) {
      _log.debug("delivery for topic {} without a subscription; ignored", ev->topic);
      return;
    }
    subscription& sub = it->second;
    bool ack_mode = m.wants_ack();
    if (!ev->offset.empty() && !sub.hw.empty()) {
      bool comparable = false;
      bool newer = offset_after(ev->offset, sub.hw, comparable);
      if (comparable && !newer) {
        ++_filtered;
        if (ack_mode) {
          if (auto p = sub.pending.find(ev->offset); p != sub.pending.end()) {
            p->second = m;  // the redelivery's ack id replaces the old one
          } else {
            m.ack();  // handled and acknowledged before; the ack got lost
            ++_acked;
          }
        }
        return;
      }
      if (!comparable) {
        _log.warn("topic {}: offset {} is from another log epoch than {}; resetting the high-water mark", ev->topic,
                  ev->offset, sub.hw);
        sub.pending.clear();
      }
    }
    if (ack_mode && sub.pending.size() >= _opts.max_pending_acks) {
      _log.warn("topic {}: {} deliveries await a manual ack; {} is left for redelivery", ev->topic, sub.pending.size(),
                ev->offset);
      return;
    }
    if (!ev->offset.empty()) sub.hw = ev->offset;
    ack_token token;
    if (ack_mode) {
      auto st = std::make_shared<ack_token::state>();
      st->consumer = weak_from_this();
      st->topic = ev->topic;
      st->offset = ev->offset;
      token = ack_token(st);
      sub.pending[ev->offset] = m;
    }
    ++_delivered;
    bool threw = false;
    auto handler = sub.handler;  // the handler may unsubscribe
    try {
      handler(*ev, token);
    } catch (const std::exception& e) {
      threw = true;
      _log.error("handler for topic {} threw on offset {}: {}{}", ev->topic, ev->offset, e.what(),
                 ack_mode ? " (not acknowledged: it is redelivered)" : "");
    } catch (...) {
      threw = true;
      _log.error("handler for topic {} threw on offset {}", ev->topic, ev->offset);
    }
    if (ack_mode && !threw) {
      auto again = _subs.find(ev->topic);
      if (again != _subs.end() && again->second.opts.ack == ack_policy::after_handler) token.ack();
    }
  }

  void do_ack(const std::string& topic, const std::string& offset) {
    auto it = _subs.find(topic);
    if (it == _subs.end()) return;
    auto p = it->second.pending.find(offset);
    if (p == it->second.pending.end()) return;
    sio::message m = std::move(p->second);
    it->second.pending.erase(p);
    m.ack();
    ++_acked;
  }

  void on_connected(const sio::connect_info& info) {
    ++_connects;
    if (info.recovered) ++_recoveries;
    _log.info("connected (sid {}, {})", info.sid, info.recovered ? "session restored" : "new session");
    for (auto& [topic, sub] : _subs) {
      if (!info.recovered) sub.confirmed = false;
      sub.requesting = false;
      if (!sub.confirmed) send_subscribe(topic);
    }
    if (_on_connect && !_closed.load()) guarded(_log, "connect handler", [&] { _on_connect(info); });
  }

  void on_disconnected(sio::disconnect_reason r, const std::string& detail) {
    _log.info("disconnected: {}{}", sio::to_string(r), detail.empty() ? "" : " (" + detail + ")");
    if (r == sio::disconnect_reason::io_server_disconnect)
      fail_everything({errc::server_disconnect, "the broker closed the namespace"});
  }

  void on_connect_failed(const error& e) {
    if (e.code == errc::connect_error || e.code == errc::protocol_error) report(e);
    if (!_socket->active()) fail_everything(e);
  }

  void fail_everything(const error& e) {
    if (!_fatal) _fatal = e;
    _log.error("giving up: {}", e.what());
    auto subs = std::move(_subs);
    _subs.clear();
    for (auto& [topic, sub] : subs) {
      if (sub.timer) sub.timer->cancel();
      for (auto& w : sub.waiters) guarded(_log, "subscribe callback", [&] { w(e); });
    }
    _commit_timer.cancel();
  }

  void arm_commit() {
    if (_opts.auto_commit_interval.count() == 0 || _closed.load()) return;
    _commit_timer.expires_after(_opts.auto_commit_interval);
    _commit_timer.async_wait(
        asio::bind_executor(_manager->strand(), [weak = weak_from_this()](const asio::error_code& ec) {
          auto s = weak.lock();
          if (!s || ec || s->_closed.load()) return;
          s->auto_commit();
          s->arm_commit();
        }));
  }

  void auto_commit() {
    if (!_socket->is_connected()) return;
    std::weak_ptr<consumer_impl> weak = weak_from_this();
    for (auto& [topic, sub] : _subs) {
      if (sub.opts.mode != delivery_mode::automatic || !sub.confirmed || sub.hw.empty() || sub.hw == sub.committed)
        continue;
      std::string offset = sub.hw;
      request("commit", encode_commit(topic, offset), [weak, topic = topic, offset](result<sio::message> r) {
        auto s = weak.lock();
        if (!s) return;
        auto ok = r ? parse_ok_reply(r->arg(0)) : result<void>(r.err());
        if (!ok) {
          s->_log.warn("auto-commit of {} at {} failed: {}", topic, offset, ok.err().what());
          return;
        }
        ++s->_commits;
        auto it = s->_subs.find(topic);
        if (it != s->_subs.end()) it->second.committed = offset;
      });
    }
  }

  void strand_close() {
    _commit_timer.cancel();
    error e{errc::closed, "the consumer was closed"};
    auto subs = std::move(_subs);
    _subs.clear();
    for (auto& [topic, sub] : subs) {
      if (sub.timer) sub.timer->cancel();
      for (auto& w : sub.waiters) guarded(_log, "subscribe callback", [&] { w(e); });
    }
    _manager->strand_close();  // pending requests fail with errc::closed
    _on_gap = nullptr;
    _on_error = nullptr;
    _on_connect = nullptr;
  }

  void report(const error& e) {
    if (_on_error && !_closed.load()) guarded(_log, "error handler", [&] { _on_error(e); });
  }

  const consumer_options _opts;
  logger _log;
  std::shared_ptr<manager_impl> _manager;
  std::shared_ptr<socket_impl> _socket;
  std::atomic<bool> _closed{false};

  // strand
  std::map<std::string, subscription> _subs;
  std::optional<error> _fatal;
  asio::steady_timer _commit_timer;
  std::function<void(const gap_info&)> _on_gap;
  std::function<void(const error&)> _on_error;
  std::function<void(const sio::connect_info&)> _on_connect;

  std::atomic<uint64_t> _delivered{0}, _filtered{0}, _acked{0}, _commits{0}, _gaps{0}, _connects{0}, _recoveries{0};
};

}  // namespace detail

// ---- ack_token

void ack_token::ack() const {
  if (!_s || _s->done.exchange(true)) return;
  if (auto c = _s->consumer.lock()) c->ack(_s->topic, _s->offset);
}

bool ack_token::required() const noexcept {
  return _s && !_s->done.load();
}

// ---- public handle

consumer::consumer(asio::io_context& io, consumer_options options)
    : _impl(std::make_shared<detail::consumer_impl>(io, std::move(options))) {
  _impl->start();
}

consumer::consumer(runner& r, consumer_options options) : consumer(r.io(), std::move(options)) {
  _keepalive = r.keepalive();
}

consumer::~consumer() {
  if (_impl) _impl->close();
}

consumer::consumer(consumer&&) noexcept = default;

consumer& consumer::operator=(consumer&& o) noexcept {
  if (this != &o) {
    if (_impl) _impl->close();
    _impl = std::move(o._impl);
    _keepalive = std::move(o._keepalive);
  }
  return *this;
}

void consumer::subscribe(std::string topic, subscription_options options, event_handler handler,
                         std::function<void(result<subscribe_ack>)> done) {
  if (!_impl) {
    if (done) done(error{errc::closed, "moved-from consumer"});
    return;
  }
  if (!done) done = [](result<subscribe_ack>) {};
  _impl->subscribe(std::move(topic), std::move(options), std::move(handler), std::move(done));
}

std::future<result<subscribe_ack>> consumer::subscribe(std::string topic, subscription_options options,
                                                       event_handler handler) {
  auto p = std::make_shared<std::promise<result<subscribe_ack>>>();
  auto f = p->get_future();
  subscribe(std::move(topic), std::move(options), std::move(handler),
            [p](result<subscribe_ack> r) { p->set_value(std::move(r)); });
  return f;
}

std::future<result<void>> consumer::unsubscribe(std::string topic) {
  auto p = std::make_shared<std::promise<result<void>>>();
  auto f = p->get_future();
  if (!_impl) {
    p->set_value(error{errc::closed, "moved-from consumer"});
    return f;
  }
  _impl->unsubscribe(std::move(topic), [p](result<void> r) { p->set_value(std::move(r)); });
  return f;
}

std::future<result<void>> consumer::commit(std::string topic, std::string offset) {
  auto p = std::make_shared<std::promise<result<void>>>();
  auto f = p->get_future();
  if (!_impl) {
    p->set_value(error{errc::closed, "moved-from consumer"});
    return f;
  }
  _impl->commit(std::move(topic), std::move(offset), [p](result<void> r) { p->set_value(std::move(r)); });
  return f;
}

void consumer::on_gap(std::function<void(const gap_info&)> handler) {
  if (_impl) _impl->on_gap(std::move(handler));
}
void consumer::on_error(std::function<void(const error&)> handler) {
  if (_impl) _impl->on_error(std::move(handler));
}
void consumer::on_connect(std::function<void(const sio::connect_info&)> handler) {
  if (_impl) _impl->on_connect(std::move(handler));
}
void consumer::close() {
  if (_impl) _impl->close();
}
consumer_stats consumer::stats() const {
  return _impl ? _impl->stats() : consumer_stats{};
}

}  // namespace ferry::client
