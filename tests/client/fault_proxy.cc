// fault_proxy.cc - see fault_proxy.h.
//
// Layout (STYLE habit 5): proxy_core (listener, cut ticks, the random engine, the
// registry of connections) and one `connection` per accepted client, both created only
// as shared_ptr; handlers capture shared_from_this() and check operation_aborted and
// the closed flag. Everything runs on the proxy's single io thread, so no strand is
// needed; the public methods reach it through asio::post or atomics.
#include "fault_proxy.h"

#include <atomic>
#include <cstdio>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

namespace ferry::test {

using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

std::string to_string(const fault_proxy_stats& s) {
  char buf[400];
  std::snprintf(buf, sizeof buf,
                "accepted=%llu forwarded=%llu refused=%llu cuts=%llu truncated_pieces=%llu closed=%llu live=%llu "
                "bytes_to_target=%llu bytes_to_client=%llu",
                static_cast<unsigned long long>(s.accepted), static_cast<unsigned long long>(s.forwarded),
                static_cast<unsigned long long>(s.refused), static_cast<unsigned long long>(s.cuts),
                static_cast<unsigned long long>(s.truncated_pieces), static_cast<unsigned long long>(s.closed),
                static_cast<unsigned long long>(s.live), static_cast<unsigned long long>(s.bytes_to_target),
                static_cast<unsigned long long>(s.bytes_to_client));
  return buf;
}

namespace detail {

struct counters {
  std::atomic<uint64_t> accepted{0}, forwarded{0}, refused{0}, cuts{0}, truncated_pieces{0}, closed{0}, live{0},
      bytes_to_target{0}, bytes_to_client{0};
};

class connection;

// Listener, cut ticks, random engine, registry. io thread only, except the atomics.
class proxy_core : public std::enable_shared_from_this<proxy_core> {
 public:
  proxy_core(asio::io_context& io, const fault_proxy_options& o)
      : io(io),
        opts(o),
        target_port(o.target_port),
        cutting(o.cut_enabled),
        _rng(o.seed),
        _acceptor(io),
        _tick(io),
        _accept_retry(io) {
    tcp::endpoint ep(asio::ip::address_v4::loopback(), 0);
    _acceptor.open(ep.protocol());
    _acceptor.bind(ep);
    _acceptor.listen();
    port = _acceptor.local_endpoint().port();
  }

  void start() {
    accept_next();
    arm_tick();
  }

  void shutdown();  // closes everything; pending handlers then finish and run() returns
  void cut_all();
  void forget(uint64_t id) { _conns.erase(id); }

  // ---- randomness (io thread)
  double uniform01() { return std::uniform_real_distribution<double>(0.0, 1.0)(_rng); }
  size_t uniform_size(size_t lo, size_t hi) {
    return hi <= lo ? lo : std::uniform_int_distribution<size_t>(lo, hi)(_rng);
  }
  template <class D>
  D uniform_duration(D lo, D hi) {
    if (hi <= lo) return lo;
    return D(std::uniform_int_distribution<typename D::rep>(lo.count(), hi.count())(_rng));
  }

  asio::io_context& io;
  const fault_proxy_options opts;
  std::atomic<uint16_t> target_port;
  std::atomic<bool> cutting;
  uint16_t port = 0;
  counters c;
  bool stopping = false;  // io thread

 private:
  void accept_next();
  void arm_tick();
  void cut_random();

  std::mt19937_64 _rng;
  tcp::acceptor _acceptor;
  asio::steady_timer _tick;
  asio::steady_timer _accept_retry;                      // after an accept error (e.g. EMFILE), instead of spinning
  std::map<uint64_t, std::weak_ptr<connection>> _conns;  // ordered: a victim choice depends only on the draw
  uint64_t _next_id = 0;
};

// One proxied connection: client socket, upstream socket, two directions.
class connection : public std::enable_shared_from_this<connection> {
 public:
  connection(std::shared_ptr<proxy_core> core, tcp::socket client, uint64_t id)
      : _core(std::move(core)),
        _id(id),
        _client(std::move(client)),
        _upstream(_core->io),
        _connect_timer(_core->io),
        _cut_timer(_core->io),
        _up(_core->io, _client, _upstream, _core->c.bytes_to_target, _core->opts.read_buffer_bytes),
        _down(_core->io, _upstream, _client, _core->c.bytes_to_client, _core->opts.read_buffer_bytes) {}

  void start() {
    tcp::endpoint target(asio::ip::address_v4::loopback(), _core->target_port.load());
    _connect_timer.expires_after(_core->opts.connect_timeout);
    _connect_timer.async_wait([self = shared_from_this()](const asio::error_code& ec) {
      if (ec == asio::error::operation_aborted || self->_closed || self->_established) return;
      ++self->_core->c.refused;  // the target accepts nothing (e.g. a stopped process)
      self->close(true);
    });
    _upstream.async_connect(target, [self = shared_from_this()](const asio::error_code& ec) {
      if (ec == asio::error::operation_aborted || self->_closed) return;
      self->_connect_timer.cancel();
      if (ec) {
        ++self->_core->c.refused;  // the target is down: reset the client, as a refusal would
        self->close(true);
        return;
      }
      self->_established = true;
      ++self->_core->c.forwarded;
      asio::error_code ignored;
      self->_client.set_option(tcp::no_delay(true), ignored);
      self->_upstream.set_option(tcp::no_delay(true), ignored);
      self->read(self->_up);
      self->read(self->_down);
    });
  }

  [[nodiscard]] bool cuttable() const { return _established && !_closed && !_cut_budget; }

  // Forward at most `budget` more bytes (or for `grace`), then close both sides.
  void cut(size_t budget, std::chrono::milliseconds grace, bool reset) {
    if (_closed || _cut_budget) return;
    ++_core->c.cuts;
    _cut_reset = reset;
    if (budget == 0) {
      close(reset);
      return;
    }
    _cut_budget = budget;
    _cut_timer.expires_after(grace);
    _cut_timer.async_wait([self = shared_from_this()](const asio::error_code& ec) {
      if (ec == asio::error::operation_aborted || self->_closed) return;
      self->close(self->_cut_reset);
    });
  }

  // Closes both sockets (RST if `reset`, else FIN); pending operations end with
  // operation_aborted. Idempotent.
  void close(bool reset) {
    if (_closed) return;
    _closed = true;
    _connect_timer.cancel();
    _cut_timer.cancel();
    _up.timer.cancel();
    _down.timer.cancel();
    for (tcp::socket* s : {&_client, &_upstream}) {
      asio::error_code ignored;
      if (!s->is_open()) continue;
      if (reset) {
        s->set_option(asio::socket_base::linger(true, 0), ignored);
      } else {
        s->shutdown(tcp::socket::shutdown_both, ignored);
      }
      s->close(ignored);
    }
    // The queues stay until destruction: an aborted async_write may still name a piece.
    ++_core->c.closed;
    --_core->c.live;
    _core->forget(_id);
  }

 private:
  struct piece {
    std::string bytes;
    clock_type::time_point release;
  };

  struct direction {
    direction(asio::io_context& io, tcp::socket& from_, tcp::socket& to_, std::atomic<uint64_t>& bytes_, size_t buf)
        : from(from_), to(to_), bytes(bytes_), buffer(buf), timer(io) {}
    tcp::socket& from;
    tcp::socket& to;
    std::atomic<uint64_t>& bytes;
    std::vector<char> buffer;
    std::deque<piece> queue;
    size_t queued_bytes = 0;
    clock_type::time_point next_free{};  // when the previous piece is released (order, rate limit)
    asio::steady_timer timer;
    bool reading = false;
    bool writing = false;
    bool eof = false;
    bool finished = false;  // eof passed on (shutdown(send) on `to`)
  };

  void read(direction& d) {
    if (_closed || d.reading || d.eof || d.queued_bytes >= _core->opts.max_queued_bytes) return;
    d.reading = true;
    d.from.async_read_some(asio::buffer(d.buffer),
                           [self = shared_from_this(), dp = &d](const asio::error_code& ec, size_t n) {
                             // dp points into *self, which the handler keeps alive.
                             dp->reading = false;
                             if (ec == asio::error::operation_aborted || self->_closed) return;
                             if (n > 0) self->enqueue(*dp, n);
                             if (ec == asio::error::eof) {
                               dp->eof = true;
                               self->pump(*dp);
                               return;
                             }
                             if (ec) {
                               self->close(false);  // reset or other error: the peer is gone; drop what is queued
                               return;
                             }
                             self->read(*dp);
                           });
  }

  void enqueue(direction& d, size_t n) {
    const auto& o = _core->opts;
    auto now = clock_type::now();
    size_t at = 0;
    while (at < n) {
      size_t len = n - at;
      if (o.max_chunk_bytes > 0) len = std::min(len, _core->uniform_size(1, o.max_chunk_bytes));
      auto release = std::max(d.next_free, now + _core->uniform_duration(o.delay_min, o.delay_max));
      if (o.bytes_per_second > 0) {
        double jitter = 1.0 + o.rate_jitter * (2.0 * _core->uniform01() - 1.0);
        double rate = std::max(1.0, static_cast<double>(o.bytes_per_second) * jitter);
        release += std::chrono::microseconds(static_cast<int64_t>(1e6 * static_cast<double>(len) / rate));
      }
      d.next_free = release;
      d.queue.push_back({std::string(d.buffer.data() + at, len), release});
      d.queued_bytes += len;
      at += len;
    }
    pump(d);
  }

  // Writes the queue's front when it is due; passes EOF on once the queue is empty.
  void pump(direction& d) {
    if (_closed || d.writing) return;
    if (d.queue.empty()) {
      if (d.eof && !d.finished) {
        d.finished = true;
        asio::error_code ignored;
        d.to.shutdown(tcp::socket::shutdown_send, ignored);
        if (_up.finished && _down.finished) close(false);
      } else {
        read(d);  // resumes a read paused by max_queued_bytes
      }
      return;
    }
    d.writing = true;
    auto release = d.queue.front().release;
    if (release <= clock_type::now()) {
      write_front(d);
      return;
    }
    d.timer.expires_at(release);
    d.timer.async_wait([self = shared_from_this(), dp = &d](const asio::error_code& ec) {
      if (ec == asio::error::operation_aborted || self->_closed) return;
      self->write_front(*dp);
    });
  }

  void write_front(direction& d) {
    const piece& p = d.queue.front();
    size_t n = p.bytes.size();
    bool truncated = false;
    if (_cut_budget && *_cut_budget < n) {
      n = *_cut_budget;
      truncated = true;
    }
    if (n == 0) {
      close(_cut_reset);
      return;
    }
    asio::async_write(d.to, asio::buffer(p.bytes.data(), n),
                      [self = shared_from_this(), dp = &d, truncated](const asio::error_code& ec, size_t written) {
                        direction& d = *dp;
                        d.writing = false;
                        if (ec == asio::error::operation_aborted || self->_closed) return;
                        if (ec) {
                          self->close(false);
                          return;
                        }
                        d.bytes += written;
                        if (self->_cut_budget) {
                          *self->_cut_budget -= written;
                          if (truncated) ++self->_core->c.truncated_pieces;
                          if (truncated || *self->_cut_budget == 0) {
                            self->close(self->_cut_reset);
                            return;
                          }
                        }
                        d.queued_bytes -= d.queue.front().bytes.size();
                        d.queue.pop_front();
                        self->pump(d);
                        self->read(d);
                      });
  }

  std::shared_ptr<proxy_core> _core;
  uint64_t _id;
  tcp::socket _client;
  tcp::socket _upstream;
  asio::steady_timer _connect_timer;
  asio::steady_timer _cut_timer;
  direction _up;    // client -> target
  direction _down;  // target -> client
  bool _established = false;
  bool _closed = false;
  bool _cut_reset = false;
  std::optional<size_t> _cut_budget;  // set once the connection is being cut
};

void proxy_core::accept_next() {
  _acceptor.async_accept([self = shared_from_this()](const asio::error_code& ec, tcp::socket s) {
    if (ec == asio::error::operation_aborted || self->stopping) return;
    if (!ec) {
      ++self->c.accepted;
      ++self->c.live;
      uint64_t id = ++self->_next_id;
      auto conn = std::make_shared<connection>(self, std::move(s), id);
      self->_conns[id] = conn;
      conn->start();
      self->accept_next();
      return;
    }
    self->_accept_retry.expires_after(std::chrono::milliseconds(10));
    self->_accept_retry.async_wait([self](const asio::error_code& e) {
      if (!e && !self->stopping) self->accept_next();
    });
  });
}

void proxy_core::arm_tick() {
  _tick.expires_after(uniform_duration(opts.cut_interval_min, opts.cut_interval_max));
  _tick.async_wait([self = shared_from_this()](const asio::error_code& ec) {
    if (ec == asio::error::operation_aborted || self->stopping) return;
    // Draw on every tick, cutting or not, so the sequence of draws depends on the seed only.
    bool hit = self->uniform01() < self->opts.cut_probability;
    if (hit && self->cutting.load()) self->cut_random();
    self->arm_tick();
  });
}

void proxy_core::cut_random() {
  std::vector<std::shared_ptr<connection>> candidates;
  for (auto& [id, w] : _conns)
    if (auto c = w.lock(); c && c->cuttable()) candidates.push_back(std::move(c));
  if (candidates.empty()) return;
  auto victim = candidates[uniform_size(0, candidates.size() - 1)];
  size_t budget = uniform_size(0, opts.cut_after_bytes_max);
  auto grace = uniform_duration(std::chrono::milliseconds(0), opts.cut_grace_max);
  bool reset = uniform01() < opts.cut_reset_probability;
  victim->cut(budget, grace, reset);
}

void proxy_core::cut_all() {
  std::vector<std::shared_ptr<connection>> all;
  for (auto& [id, w] : _conns)
    if (auto c = w.lock()) all.push_back(std::move(c));
  for (auto& c : all) {
    if (!c->cuttable()) continue;
    c->cut(0, std::chrono::milliseconds(0), false);
  }
}

void proxy_core::shutdown() {
  stopping = true;
  asio::error_code ignored;
  _acceptor.close(ignored);
  _tick.cancel();
  _accept_retry.cancel();
  std::vector<std::shared_ptr<connection>> all;
  for (auto& [id, w] : _conns)
    if (auto c = w.lock()) all.push_back(std::move(c));
  for (auto& c : all) c->close(false);
  _conns.clear();
}

// Declared in the header: the io_context, the core and the thread. Members are destroyed
// in reverse order: the thread is joined before (stop()), then the core, then the io_context.
struct proxy_runtime {
  asio::io_context io;
  std::shared_ptr<proxy_core> core;
  std::thread thread;
};

}  // namespace detail

fault_proxy::fault_proxy(fault_proxy_options options) : _rt(std::make_unique<detail::proxy_runtime>()) {
  _rt->core = std::make_shared<detail::proxy_core>(_rt->io, options);
  _rt->core->start();
  _rt->thread = std::thread([rt = _rt.get()] {
    try {
      rt->io.run();
    } catch (const std::exception& e) {
      // Handlers do not throw on network input; this is a broken invariant (or bad_alloc).
      std::fprintf(stderr, "fault_proxy: io thread stopped by an exception: %s\n", e.what());
    }
  });
}

fault_proxy::~fault_proxy() {
  stop();
}

uint16_t fault_proxy::port() const noexcept {
  return _rt->core->port;
}

std::string fault_proxy::url() const {
  return "http://127.0.0.1:" + std::to_string(port());
}

void fault_proxy::set_cutting(bool on) noexcept {
  _rt->core->cutting.store(on);
}

void fault_proxy::set_target_port(uint16_t port) noexcept {
  _rt->core->target_port.store(port);
}

void fault_proxy::cut_all() {
  asio::post(_rt->io, [core = _rt->core] {
    if (!core->stopping) core->cut_all();
  });
}

fault_proxy_stats fault_proxy::stats() const noexcept {
  const auto& c = _rt->core->c;
  fault_proxy_stats s;
  s.accepted = c.accepted.load();
  s.forwarded = c.forwarded.load();
  s.refused = c.refused.load();
  s.cuts = c.cuts.load();
  s.truncated_pieces = c.truncated_pieces.load();
  s.closed = c.closed.load();
  s.live = c.live.load();
  s.bytes_to_target = c.bytes_to_target.load();
  s.bytes_to_client = c.bytes_to_client.load();
  return s;
}

void fault_proxy::stop() {
  if (!_rt->thread.joinable()) return;
  asio::post(_rt->io, [core = _rt->core] { core->shutdown(); });
  // Everything is closed by the posted shutdown; the aborted handlers run and io.run()
  // returns because no work is left.
  _rt->thread.join();
}

}  // namespace ferry::test
