// producer.cc - ferry::client::producer: outbox -> batches -> `publish` emits -> acks.
//
// State: the outbox (own mutex; shared with publishing threads), the spool (own mutex),
// everything else on the manager's strand. A batch's fate: an ack reply completes each
// event (callback + spool done record); a retriable broker error or a disconnect/ack
// timeout puts its events back in the queue (same ids: the broker dedupes); a batch the
// broker rejects outright is split into single-event sends so only the bad event fails.
#include <asio/bind_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <atomic>
#include <list>

#include "client/src/ferry_codec.h"
#include "client/src/ids.h"
#include "client/src/outbox.h"
#include "client/src/sio_impl.h"
#include "client/src/spool.h"
#include "ferry/client/producer.h"
#include "ferry/client/runner.h"
#include "protocol/json.h"

namespace ferry::client {
namespace detail {

namespace pjson = ferry::protocol::json;
using clock = std::chrono::steady_clock;

namespace {

// Bytes of a publish EVENT around its batch: 42<ack id>["publish",<batch>]
constexpr size_t publish_overhead = 48;

void check_options(const producer_options& o) {
  auto bad = [](const std::string& what) { throw config_error(errc::invalid_argument, "ferry producer: " + what); };
  if (o.max_batch_events == 0) bad("max_batch_events must be >= 1");
  if (o.max_batch_bytes < 1024) bad("max_batch_bytes must be >= 1024");
  if (o.max_in_flight_batches == 0) bad("max_in_flight_batches must be >= 1");
  if (o.max_outbox_events == 0) bad("max_outbox_events must be >= 1");
  if (o.max_outbox_bytes == 0) bad("max_outbox_bytes must be >= 1");
  if (o.max_event_bytes == 0) bad("max_event_bytes must be >= 1");
  if (o.linger.count() < 0 || o.ack_timeout.count() <= 0 || o.delivery_timeout.count() < 0 ||
      o.retry_backoff.count() < 0 || o.block_timeout.count() < 0)
    bad("durations must be >= 0 (ack_timeout > 0)");
  auto auth = pjson::parse(o.auth);
  if (!auth || !auth->is_object()) bad("auth must be a JSON object");
  if (o.id_prefix.size() > 200) bad("id_prefix is at most 200 bytes");
}

}  // namespace

class producer_impl : public std::enable_shared_from_this<producer_impl> {
 public:
  producer_impl(asio::io_context& io, producer_options opts)
      : _opts(std::move(opts)),
        _log(_opts.log, _opts.min_log_level, "ferry-producer: "),
        _outbox(_opts.max_outbox_events, _opts.max_outbox_bytes),
        _ids(_opts.id_prefix.empty() ? random_prefix() : _opts.id_prefix),
        _linger(io),
        _retry(io),
        _sweep(io) {
    check_options(_opts);
    auto url = parse_server_url(_opts.url);
    if (!url) throw config_error(url.err().code, "ferry producer: invalid URL " + url.err().message);
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
    so.auth = _opts.auth;
    so.max_buffered_packets = 1u << 20;  // the producer only emits while connected
    so.max_pending_acks = _opts.max_in_flight_batches * 4 + 16;
    _socket = _manager->socket(_opts.nsp, so);

    if (!_opts.spool_dir.empty()) {
      spool_options sopts{_opts.spool_dir, _opts.spool_fsync, _opts.spool_segment_bytes, _opts.spool_skip_corrupt};
      std::vector<spooled_event> live;
      spool_report report;
      auto sp = spool::open(sopts, live, report);
      if (!sp) throw config_error(sp.err().code, "ferry producer: spool: " + sp.err().message);
      _spool = std::move(*sp);
      for (const auto& p : report.problems) _log.warn("spool: {}", p);
      if (report.corrupt_records > 0)
        _log.error("spool: {} corrupt records skipped (spool_skip_corrupt); files kept as *.corrupt",
                   report.corrupt_records);
      _next_seq = _spool->next_seq();
      _last_accepted.store(_next_seq - 1);  // flush() also waits for the recovered events
      auto deadline =
          _opts.delivery_timeout.count() > 0 ? clock::now() + _opts.delivery_timeout : clock::time_point::max();
      for (auto& e : live) {
        outbox_entry oe;
        oe.seq = e.seq;
        oe.id = std::move(e.id);
        oe.item = std::move(e.item);
        oe.deadline = deadline;
        _outbox.push_unbounded(std::move(oe));
      }
      _recovered = live.size();
      if (!live.empty()) _log.info("spool {}: {} unacknowledged events to resend", _opts.spool_dir, live.size());
    }
  }

  ~producer_impl() = default;

  void start() {
    std::weak_ptr<producer_impl> weak = weak_from_this();
    _manager->on_error([weak](const error& e) {
      if (auto s = weak.lock()) s->report(e);
    });
    _socket->on_connect([weak](const sio::connect_info& info) {
      if (auto s = weak.lock()) s->on_connected(info);
    });
    _socket->on_disconnect([weak](sio::disconnect_reason r, const std::string& detail) {
      if (auto s = weak.lock()) s->on_disconnected(r, detail);
    });
    _socket->on_connect_error([weak](const error& e) {
      if (auto s = weak.lock()) s->on_connect_failed(e);
    });
    _socket->connect();
    kick();
  }

  // ---- any thread

  result<std::string> publish(outgoing_event ev, publish_callback cb) {
    if (_closed.load()) return {errc::closed, "the producer is closed"};
    {
      std::lock_guard lock(_fatal_mutex);
      if (_fatal) return *_fatal;
    }
    std::string id = ev.id.empty() ? _ids.next() : std::move(ev.id);
    if (auto v = validate_outgoing(ev.topic, ev.event, id, ev.data); !v) return v.err();
    outbox_entry e;
    e.item = encode_publish_item(ev.topic, ev.event, ev.data, id);
    if (e.item.size() > _opts.max_event_bytes)
      return {errc::invalid_argument, "encoded event is " + std::to_string(e.item.size()) +
                                          " bytes; max_event_bytes is " + std::to_string(_opts.max_event_bytes)};
    e.id = id;
    e.cb = std::move(cb);
    if (_opts.delivery_timeout.count() > 0) e.deadline = clock::now() + _opts.delivery_timeout;
    outbox_policy policy = _opts.when_full;
    bool on_strand = _manager->strand().running_in_this_thread();
    if (policy == outbox_policy::block && on_strand) policy = outbox_policy::fail;  // waiting here would deadlock
    auto r = _outbox.push(std::move(e), policy, _opts.block_timeout, [this](outbox_entry& x) -> result<void> {
      x.seq = _next_seq++;
      if (_spool) {
        if (auto w = _spool->append_put(x.seq, x.id, x.item); !w) return w;
      }
      _last_accepted.store(x.seq);
      return {};
    });
    if (!r.dropped.empty()) {
      _dropped += r.dropped.size();
      asio::post(_manager->strand(), [self = shared_from_this(), dropped = std::move(r.dropped)]() mutable {
        self->fail_entries(std::move(dropped), {errc::dropped, "evicted from the full outbox (drop_oldest)"}, true);
      });
    }
    switch (r.st) {
      case outbox::status::accepted:
        break;
      case outbox::status::full:
        if (_opts.when_full == outbox_policy::block && on_strand)
          return {errc::would_block, "outbox full; the block policy cannot wait on the producer's io_context thread"};
        return {errc::outbox_full, "outbox at its bound (" + std::to_string(_opts.max_outbox_events) + " events / " +
                                       std::to_string(_opts.max_outbox_bytes) + " bytes)"};
      case outbox::status::too_large:
        return {errc::invalid_argument, "event larger than max_outbox_bytes"};
      case outbox::status::closed:
        return {errc::closed, "the producer is closed"};
      case outbox::status::rejected:
        return r.err;
    }
    ++_accepted;
    kick();
    return id;
  }

  void flush(std::chrono::milliseconds timeout, std::function<void(result<void>)> done) {
    uint64_t marker = _last_accepted.load();
    asio::post(_manager->strand(), [self = shared_from_this(), marker, timeout, done = std::move(done)]() mutable {
      self->strand_flush(marker, timeout, std::move(done));
    });
  }

  void close() {
    if (_closed.exchange(true)) return;
    asio::post(_manager->strand(), [self = shared_from_this()] { self->strand_close(); });
  }

  void on_error(std::function<void(const error&)> h) {
    asio::post(_manager->strand(),
               [self = shared_from_this(), h = std::move(h)]() mutable { self->_on_error = std::move(h); });
  }

  producer_stats stats() const {
    producer_stats s;
    s.accepted = _accepted.load();
    s.acked = _acked.load();
    s.duplicates = _duplicates.load();
    s.failed = _failed.load();
    s.dropped = _dropped.load();
    s.resent = _resent.load();
    s.batches = _batches.load();
    s.recovered = _recovered;
    s.reconnects = _connects.load() > 0 ? _connects.load() - 1 : 0;
    s.outbox_events = _outbox.size();
    s.outbox_bytes = _outbox.bytes();
    s.connected = _socket->connected();
    return s;
  }

  [[nodiscard]] const std::string& id_prefix() const noexcept { return _ids.prefix(); }

 private:
  struct flush_waiter {
    uint64_t marker = 0;
    std::function<void(result<void>)> done;
    std::unique_ptr<asio::steady_timer> timer;
  };

  void kick() {
    if (_kick_pending.exchange(true)) return;
    asio::post(_manager->strand(), [weak = weak_from_this()] {
      auto s = weak.lock();
      if (!s) return;
      s->_kick_pending.store(false);
      s->pump(false);
      s->arm_sweep();
    });
  }

  // ---- strand

  size_t batch_byte_limit() const {
    uint64_t max_payload = _manager->handshake().max_payload;
    size_t limit = _opts.max_batch_bytes;
    if (max_payload > publish_overhead) limit = std::min<size_t>(limit, max_payload - publish_overhead);
    return limit;
  }

  void pump(bool force) {
    if (_closed.load() || !_connected || _retry_armed) return;
    while (_in_flight_batches < _opts.max_in_flight_batches) {
      size_t queued = _outbox.queued();
      if (queued == 0) return;
      size_t limit = batch_byte_limit();
      if (!force && queued < _opts.max_batch_events && _outbox.queued_bytes() < limit) {
        arm_linger();
        return;
      }
      auto b = _outbox.take_batch(_opts.max_batch_events, limit);
      if (b.seqs.empty()) return;
      uint64_t max_payload = _manager->handshake().max_payload;
      if (b.json.size() + publish_overhead > max_payload) {
        // A single event the server will not take (its maxPayload is below our bounds).
        std::vector<outbox_entry> too_big;
        for (uint64_t seq : b.seqs)
          if (auto e = _outbox.complete(seq)) too_big.push_back(std::move(*e));
        fail_entries(std::move(too_big),
                     {errc::invalid_argument,
                      "event exceeds the server's maxPayload of " + std::to_string(max_payload) + " bytes"},
                     true);
        continue;
      }
      send_batch(std::move(b));
    }
  }

  void arm_linger() {
    if (_linger_armed) return;
    if (_opts.linger.count() == 0) {
      asio::post(_manager->strand(), [weak = weak_from_this()] {
        if (auto s = weak.lock()) s->pump(true);
      });
      return;
    }
    _linger_armed = true;
    _linger.expires_after(_opts.linger);
    _linger.async_wait(asio::bind_executor(_manager->strand(), [weak = weak_from_this()](const asio::error_code& ec) {
      auto s = weak.lock();
      if (!s) return;
      s->_linger_armed = false;
      if (!ec) s->pump(true);
    }));
  }

  void send_batch(outbox::batch b) {
    ++_in_flight_batches;
    ++_batches;
    size_t n = b.seqs.size();
    std::weak_ptr<producer_impl> weak = weak_from_this();
    socket_impl::emit_request req{"publish", std::move(b.json), {}};
    _socket->strand_emit(std::move(req),
                         sio::ack_callback([weak, seqs = std::move(b.seqs)](result<sio::message> r) mutable {
                           if (auto s = weak.lock()) s->on_batch_reply(std::move(seqs), std::move(r));
                         }),
                         _opts.ack_timeout);
    _log.debug("sent a batch of {} events ({} in flight)", n, _in_flight_batches);
  }

  void on_batch_reply(std::vector<uint64_t> seqs, result<sio::message> r) {
    if (_in_flight_batches > 0) --_in_flight_batches;
    if (_closed.load()) return;
    if (!r) {
      const error& e = r.err();
      if (e.code == errc::closed) return;  // close() or a final failure fails the events itself
      size_t n = _outbox.requeue(seqs);
      _resent += n;
      if (e.code == errc::timeout) {
        _log.warn("no publish ack within {} ms; resending {} events", _opts.ack_timeout.count(), n);
      } else {
        _log.debug("publish of {} events interrupted ({}); they are resent after the reconnect", n, e.what());
      }
      pump(true);
      return;
    }
    auto rep = parse_publish_reply(r->arg(0), seqs.size());
    if (!rep) {
      error e{errc::protocol_error, "malformed publish reply: " + rep.err().message};
      _log.error("{}", e.what());
      report(e);
      std::vector<outbox_entry> failed;
      for (uint64_t seq : seqs)
        if (auto x = _outbox.complete(seq)) failed.push_back(std::move(*x));
      fail_entries(std::move(failed), e, false);  // kept in the spool: the broker may have stored them
    } else if (rep->ok) {
      std::vector<uint64_t> done;
      done.reserve(seqs.size());
      for (size_t i = 0; i < seqs.size(); ++i) {
        auto x = _outbox.complete(seqs[i]);
        if (!x) continue;  // dropped or expired meanwhile
        done.push_back(seqs[i]);
        ++_acked;
        if (rep->items[i].duplicate) ++_duplicates;
        if (x->cb) {
          publish_ack ack{std::move(x->id), std::move(rep->items[i].offset), rep->items[i].duplicate};
          result<publish_ack> res(std::move(ack));
          guarded(_log, "publish callback", [&] { x->cb(res); });
        }
      }
      spool_done(done);
    } else if (retriable_publish_error(rep->code)) {
      size_t n = _outbox.requeue(seqs);
      _resent += n;
      _log.warn("broker refused a batch of {} events for now ({}); retrying in {} ms", n, rep->message,
                _opts.retry_backoff.count());
      arm_retry();
    } else if (seqs.size() > 1) {
      size_t n = _outbox.requeue(seqs, true);
      _resent += n;
      _log.warn("broker rejected a batch of {} events ({}); resending them one by one", n, rep->message);
    } else {
      std::vector<outbox_entry> failed;
      if (auto x = _outbox.complete(seqs[0])) failed.push_back(std::move(*x));
      fail_entries(std::move(failed), {errc::rejected, rep->message}, true);
    }
    check_flushes();
    pump(true);
  }

  void arm_retry() {
    if (_retry_armed) return;
    _retry_armed = true;
    _retry.expires_after(_opts.retry_backoff);
    _retry.async_wait(asio::bind_executor(_manager->strand(), [weak = weak_from_this()](const asio::error_code& ec) {
      auto s = weak.lock();
      if (!s) return;
      s->_retry_armed = false;
      if (!ec) s->pump(true);
    }));
  }

  void arm_sweep() {
    if (_sweep_armed || _opts.delivery_timeout.count() == 0 || _outbox.size() == 0 || _closed.load()) return;
    _sweep_armed = true;
    auto period =
        std::clamp(_opts.delivery_timeout / 8, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
    _sweep.expires_after(period);
    _sweep.async_wait(asio::bind_executor(_manager->strand(), [weak = weak_from_this()](const asio::error_code& ec) {
      auto s = weak.lock();
      if (!s) return;
      s->_sweep_armed = false;
      if (ec || s->_closed.load()) return;
      auto expired = s->_outbox.expire(clock::now());
      if (!expired.empty()) {
        s->_log.warn("{} events not acknowledged within delivery_timeout ({} ms)", expired.size(),
                     s->_opts.delivery_timeout.count());
        s->fail_entries(std::move(expired),
                        {errc::timeout, "not acknowledged within delivery_timeout (" +
                                            std::to_string(s->_opts.delivery_timeout.count()) + " ms)"},
                        true);
        s->check_flushes();
      }
      s->arm_sweep();
    }));
  }

  // Fails events; `spool_done`: they are given up for good (not resent by a restart).
  void fail_entries(std::vector<outbox_entry> entries, const error& e, bool spool_give_up) {
    if (entries.empty()) return;
    std::vector<uint64_t> done;
    for (auto& x : entries) {
      done.push_back(x.seq);
      ++_failed;
      if (x.cb) {
        result<publish_ack> res(e);
        guarded(_log, "publish callback", [&] { x.cb(res); });
      }
    }
    if (spool_give_up) spool_done(done);
    check_flushes();
  }

  void spool_done(const std::vector<uint64_t>& seqs) {
    if (!_spool || seqs.empty()) return;
    if (auto r = _spool->append_done(seqs); !r) {
      _log.error("spool: {} (acknowledged events may be resent after a restart; the broker dedupes them)",
                 r.err().what());
    }
  }

  void on_connected(const sio::connect_info& info) {
    _connected = true;
    ++_connects;
    size_t n = _outbox.requeue_all();
    _resent += n;
    size_t queued = _outbox.queued();
    if (_connects.load() > 1 && queued > 0)
      _log.info("reconnected (sid {}); resending {} unacknowledged events", info.sid, queued);
    pump(true);
    arm_sweep();
  }

  void on_disconnected(sio::disconnect_reason r, const std::string& detail) {
    _connected = false;
    if (r == sio::disconnect_reason::io_server_disconnect) {
      fail_everything({errc::server_disconnect, "the broker closed the namespace"});
      return;
    }
    _log.info("disconnected: {}{}", sio::to_string(r), detail.empty() ? "" : " (" + detail + ")");
  }

  void on_connect_failed(const error& e) {
    if (e.code == errc::connect_error || e.code == errc::protocol_error) report(e);
    if (!_socket->active()) fail_everything(e);  // final: no more attempts
  }

  void fail_everything(const error& e) {
    {
      std::lock_guard lock(_fatal_mutex);
      if (!_fatal) _fatal = e;
    }
    _log.error("giving up: {}", e.what());
    auto entries = _outbox.close();
    fail_entries(std::move(entries), e, false);  // still in the spool for the next producer
    finish_flushes(e);
    _linger.cancel();
    _retry.cancel();
    _sweep.cancel();
  }

  void strand_flush(uint64_t marker, std::chrono::milliseconds timeout, std::function<void(result<void>)> done) {
    if (_closed.load() || _outbox.closed()) {
      error e{errc::closed, "the producer is closed"};
      {
        std::lock_guard lock(_fatal_mutex);
        if (_fatal) e = *_fatal;
      }
      guarded(_log, "flush callback", [&] { done(e); });
      return;
    }
    if (_outbox.lowest_seq() > marker) {
      guarded(_log, "flush callback", [&] { done(result<void>()); });
      return;
    }
    uint64_t key = ++_flush_counter;
    flush_waiter w;
    w.marker = marker;
    w.done = std::move(done);
    if (timeout.count() > 0) {
      w.timer = std::make_unique<asio::steady_timer>(_manager->io(), timeout);
      w.timer->async_wait(
          asio::bind_executor(_manager->strand(), [weak = weak_from_this(), key, timeout](const asio::error_code& ec) {
            auto s = weak.lock();
            if (!s || ec) return;
            auto it = s->_flushes.find(key);
            if (it == s->_flushes.end()) return;
            auto fn = std::move(it->second.done);
            s->_flushes.erase(it);
            guarded(s->_log, "flush callback", [&] {
              fn(error{errc::timeout, "flush not complete within " + std::to_string(timeout.count()) + " ms"});
            });
          }));
    }
    _flushes.emplace(key, std::move(w));
    pump(true);  // do not wait for the linger
  }

  void check_flushes() {
    if (_flushes.empty()) return;
    uint64_t low = _outbox.lowest_seq();
    for (auto it = _flushes.begin(); it != _flushes.end();) {
      if (it->second.marker < low) {
        auto fn = std::move(it->second.done);
        if (it->second.timer) it->second.timer->cancel();
        it = _flushes.erase(it);
        guarded(_log, "flush callback", [&] { fn(result<void>()); });
      } else {
        ++it;
      }
    }
  }

  void finish_flushes(const error& e) {
    auto flushes = std::move(_flushes);
    _flushes.clear();
    for (auto& [k, w] : flushes) {
      if (w.timer) w.timer->cancel();
      guarded(_log, "flush callback", [&] { w.done(e); });
    }
  }

  void strand_close() {
    _linger.cancel();
    _retry.cancel();
    _sweep.cancel();
    error e{errc::closed, "the producer was closed"};
    auto entries = _outbox.close();
    if (!entries.empty())
      _log.info("closing with {} unacknowledged events{}", entries.size(), _spool ? " (kept in the spool)" : "");
    fail_entries(std::move(entries), e, false);
    finish_flushes(e);
    _manager->strand_close();
    _on_error = nullptr;
  }

  void report(const error& e) {
    if (_on_error && !_closed.load()) guarded(_log, "error handler", [&] { _on_error(e); });
  }

  const producer_options _opts;
  logger _log;
  std::shared_ptr<manager_impl> _manager;
  std::shared_ptr<socket_impl> _socket;
  outbox _outbox;
  std::unique_ptr<spool> _spool;
  id_generator _ids;
  uint64_t _next_seq = 1;  // under the outbox lock (accept hook)
  std::atomic<uint64_t> _last_accepted{0};
  std::atomic<bool> _kick_pending{false};
  std::atomic<bool> _closed{false};
  std::mutex _fatal_mutex;
  std::optional<error> _fatal;

  // strand
  bool _connected = false;
  size_t _in_flight_batches = 0;
  asio::steady_timer _linger;
  asio::steady_timer _retry;
  asio::steady_timer _sweep;
  bool _linger_armed = false;
  bool _retry_armed = false;
  bool _sweep_armed = false;
  uint64_t _flush_counter = 0;
  std::map<uint64_t, flush_waiter> _flushes;
  std::function<void(const error&)> _on_error;

  // stats
  std::atomic<uint64_t> _accepted{0}, _acked{0}, _duplicates{0}, _failed{0}, _dropped{0}, _resent{0}, _batches{0},
      _connects{0};
  uint64_t _recovered = 0;
};

}  // namespace detail

// ---- public handle

producer::producer(asio::io_context& io, producer_options options)
    : _impl(std::make_shared<detail::producer_impl>(io, std::move(options))) {
  _impl->start();
}

producer::producer(runner& r, producer_options options) : producer(r.io(), std::move(options)) {
  _keepalive = r.keepalive();
}

producer::~producer() {
  if (_impl) _impl->close();
}

producer::producer(producer&&) noexcept = default;

producer& producer::operator=(producer&& o) noexcept {
  if (this != &o) {
    if (_impl) _impl->close();
    _impl = std::move(o._impl);
    _keepalive = std::move(o._keepalive);
  }
  return *this;
}

result<std::string> producer::publish(outgoing_event ev, publish_callback cb) {
  if (!_impl) return {errc::closed, "moved-from producer"};
  return _impl->publish(std::move(ev), std::move(cb));
}

std::future<result<publish_ack>> producer::publish(outgoing_event ev) {
  auto p = std::make_shared<std::promise<result<publish_ack>>>();
  auto f = p->get_future();
  auto r = publish(std::move(ev), [p](const result<publish_ack>& x) { p->set_value(x); });
  if (!r) p->set_value(r.err());
  return f;
}

void producer::flush(std::chrono::milliseconds timeout, std::function<void(result<void>)> done) {
  if (!_impl) {
    if (done) done(error{errc::closed, "moved-from producer"});
    return;
  }
  _impl->flush(timeout, std::move(done));
}

std::future<result<void>> producer::flush(std::chrono::milliseconds timeout) {
  auto p = std::make_shared<std::promise<result<void>>>();
  auto f = p->get_future();
  flush(timeout, [p](result<void> r) { p->set_value(std::move(r)); });
  return f;
}

void producer::close() {
  if (_impl) _impl->close();
}

void producer::on_error(std::function<void(const error&)> handler) {
  if (_impl) _impl->on_error(std::move(handler));
}

producer_stats producer::stats() const {
  return _impl ? _impl->stats() : producer_stats{};
}

const std::string& producer::id_prefix() const noexcept {
  static const std::string empty;
  return _impl ? _impl->id_prefix() : empty;
}

}  // namespace ferry::client
