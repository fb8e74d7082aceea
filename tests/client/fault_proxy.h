// fault_proxy.h - a fault-injecting TCP proxy for integration tests (STYLE habit 11:
// faults are injected, not hoped for).
//
// Listens on 127.0.0.1:0 and forwards every accepted connection to 127.0.0.1:<target
// port>, with faults a real network has:
//  * cuts: every U(cut_interval_min, cut_interval_max) a "tick" picks, with
//    cut_probability, one random established connection and cuts it: the connection
//    forwards at most U(0, cut_after_bytes_max) more bytes (both directions together;
//    the last forwarded piece is usually truncated, so the cut lands mid-frame), or
//    whatever arrives within U(0, cut_grace_max), then both sides are closed - with a
//    reset (RST) with probability cut_reset_probability, otherwise with a FIN;
//  * latency: each piece waits U(delay_min, delay_max) before it is forwarded; order is
//    kept per direction (a piece never overtakes the one before it);
//  * bandwidth jitter (optional): reads are forwarded in random pieces of
//    1..max_chunk_bytes, and/or at bytes_per_second per direction, each piece's rate
//    randomised by +-rate_jitter;
//  * a target that is down: a client connection whose upstream connect fails (refused,
//    or not within connect_timeout) is reset at once; when the target listens again on
//    the same port, new connections are forwarded again. Connections open when the
//    target dies see the target's close (FIN or RST) passed on.
// EOF is passed on as a half-close (shutdown(send)) after the queued bytes; a connection
// ends when both directions have ended, or at once on an error.
//
// Determinism: every random choice comes from one std::mt19937_64 seeded with `seed`,
// drawn on the proxy's thread. The sequence of draws is fixed by the seed; which
// connection or byte a draw hits still depends on the timing of the peers.
//
// Threading: the proxy owns one thread running its own io_context (it is test code).
// Every public method is thread-safe, except that stop() must not run concurrently with
// itself or the destructor. stop() (and the destructor) closes the listener and every
// connection and joins the thread; nothing is left running or allocated. After stop(),
// stats() still answers and cut_all() does nothing.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace ferry::test {

struct fault_proxy_options {
  // ---- where to
  uint16_t target_port = 0;  // the upstream on 127.0.0.1 (required; set_target_port() changes it)
  uint64_t seed = 1;         // seeds every random choice (cut ticks, victims, budgets, delays, pieces)

  // ---- cuts
  bool cut_enabled = true;                          // random cuts from the start (set_cutting() toggles)
  std::chrono::milliseconds cut_interval_min{50};   // a cut tick every U(min, max)
  std::chrono::milliseconds cut_interval_max{500};  //   (the "every 50-500 ms")
  double cut_probability = 0.5;                     // chance that a tick cuts one random established connection
  size_t cut_after_bytes_max = 4096;                // a cut connection still forwards U(0, this) bytes: mid-frame cuts
  std::chrono::milliseconds cut_grace_max{100};     // ... or closes after U(0, this) if fewer bytes flow
  double cut_reset_probability = 0.5;               // a cut closes with RST (else FIN)

  // ---- latency
  std::chrono::microseconds delay_min{0};     // added to every forwarded piece: U(min, max)
  std::chrono::microseconds delay_max{5000};  //   (the "0-5 ms"); order is kept

  // ---- bandwidth jitter (off by default)
  size_t max_chunk_bytes = 0;   // > 0: each read is forwarded in random pieces of 1..this bytes
  size_t bytes_per_second = 0;  // > 0: per-direction rate limit
  double rate_jitter = 0.5;     // each piece's rate is bytes_per_second * U(1 - j, 1 + j)

  // ---- limits
  size_t read_buffer_bytes = 16384;                 // one read
  size_t max_queued_bytes = 1u << 20;               // per direction; above it that side is not read (backpressure)
  std::chrono::milliseconds connect_timeout{1000};  // upstream connect; after it the client connection is reset
};

struct fault_proxy_stats {
  uint64_t accepted = 0;          // client connections accepted
  uint64_t forwarded = 0;         // ... whose upstream connect succeeded
  uint64_t refused = 0;           // ... reset because the target was down (refused or connect timeout)
  uint64_t cuts = 0;              // connections cut on purpose (random ticks and cut_all())
  uint64_t truncated_pieces = 0;  // cuts that forwarded only a prefix of a piece (mid-piece, usually mid-frame)
  uint64_t closed = 0;            // connections finished, for any reason
  uint64_t live = 0;              // connections open now
  uint64_t bytes_to_target = 0;   // forwarded client -> target
  uint64_t bytes_to_client = 0;   // forwarded target -> client
};

[[nodiscard]] std::string to_string(const fault_proxy_stats& s);

namespace detail {
struct proxy_runtime;
}

class fault_proxy {
 public:
  // Binds 127.0.0.1:0 and starts the thread. Throws std::system_error if it cannot bind.
  explicit fault_proxy(fault_proxy_options options);
  ~fault_proxy();  // stop()
  fault_proxy(const fault_proxy&) = delete;
  fault_proxy& operator=(const fault_proxy&) = delete;

  [[nodiscard]] uint16_t port() const noexcept;
  [[nodiscard]] std::string url() const;  // "http://127.0.0.1:<port>"

  // Random cuts on/off (ticks keep running; they cut nothing while off).
  void set_cutting(bool on) noexcept;
  // Where new connections go from now on.
  void set_target_port(uint16_t port) noexcept;
  // Cuts every open connection now (FIN), as a cut with no byte budget.
  void cut_all();

  [[nodiscard]] fault_proxy_stats stats() const noexcept;

  // Closes the listener and every connection, then joins the thread. Idempotent.
  void stop();

 private:
  std::unique_ptr<detail::proxy_runtime> _rt;
};

}  // namespace ferry::test
