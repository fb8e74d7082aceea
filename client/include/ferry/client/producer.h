// producer.h - publishes events to a Ferry broker with at-least-once delivery.
//
// Every event gets an id (yours, or "<random prefix>-<counter>"), waits in a bounded
// outbox, and is sent in batches (one `publish` emit with an array, after `linger` or
// when a batch is full). The broker acknowledges each event after its durable write with
// the event's offset; an id it has already stored comes back with its original offset
// and duplicate=true. Unacknowledged events are resent after a reconnect with the same
// ids, so a lost ack never duplicates an event in the log. With a spool directory,
// events are written to disk before publish() returns, so a crashed producer that is
// restarted on the same directory resends what was never acknowledged.
//
// What a successful publish callback promises depends on the broker's sync mode
// (DESIGN.md section 3): sync=always - the event is fsynced in the broker's log;
// sync=batch - it is in the log and fsynced with its group commit; sync=none (the
// default) - it is in the log (RocksDB WAL, written but not fsynced): it survives a
// broker process crash, not a power loss.
//
// Threading: publish(), flush(), close(), stats() are safe from any thread. Callbacks run
// on the io_context the producer was built on (on its strand), never inside publish().
// Destroying the producer does not block: it closes, and callbacks still pending are
// invoked with errc::closed (spooled events stay in the spool for the next producer).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>

#include "ferry/client/error.h"
#include "ferry/client/log.h"
#include "ferry/client/socketio.h"

namespace asio {
class io_context;
}

namespace ferry::client {

class runner;
namespace detail {
class producer_impl;
}

// What publish() does when the outbox is at max_outbox_events or max_outbox_bytes.
enum class outbox_policy : uint8_t {
  fail,         // publish() returns errc::outbox_full at once
  block,        // publish() waits up to block_timeout for room, then errc::outbox_full;
                // on the io_context's own thread it cannot wait: errc::would_block
  drop_oldest,  // the oldest events are evicted (their callbacks get errc::dropped)
};

struct producer_options {
  // ---- connection
  std::string url;                                   // "http://127.0.0.1:7070[/namespace]" (ws:// also accepted)
  std::string nsp;                                   // namespace; "" = the URL's path, or "/"
  std::string auth = "{}";                           // CONNECT auth payload (JSON object)
  std::string path = "/socket.io/";                  // Engine.IO endpoint path
  std::chrono::milliseconds connect_timeout{10000};  // TCP + WebSocket + Engine.IO open
  reconnect_options reconnect{.initial_delay = std::chrono::milliseconds(250)};  // forever, 250 ms .. 5 s, +-50%

  // ---- batching
  std::chrono::milliseconds linger{5};  // how long the first queued event waits for company
  size_t max_batch_events = 500;        // events per publish emit (the broker accepts up to 1000)
  size_t max_batch_bytes = 256u << 10;  // encoded bytes per emit; also capped below the server's maxPayload
  size_t max_in_flight_batches = 8;     // emits awaiting their ack; 1 keeps order strict across retries

  // ---- outbox (every accepted event until it is acknowledged or fails)
  size_t max_outbox_events = 100000;    // bound on events
  size_t max_outbox_bytes = 64u << 20;  // bound on encoded bytes
  outbox_policy when_full = outbox_policy::fail;
  std::chrono::milliseconds block_timeout{5000};  // outbox_policy::block: longest wait in publish()

  // ---- deadlines and retries
  std::chrono::milliseconds ack_timeout{30000};  // a batch without a reply is resent after this
  std::chrono::milliseconds delivery_timeout{
      120000};                                   // an event still unacknowledged fails with errc::timeout; 0 = never
  std::chrono::milliseconds retry_backoff{200};  // wait before resending after a retriable broker error
  size_t max_event_bytes = 1u << 20;             // encoded event bound (the broker's default max_event_bytes)

  // ---- ids
  std::string id_prefix;  // "" = 12 random characters per producer; ids are "<prefix>-<n>"

  // ---- spool (optional)
  std::string spool_dir;                   // "" = memory only; otherwise created if missing, one producer per dir
  bool spool_fsync = false;                // fdatasync each write: survives power loss, not only process crashes
  size_t spool_segment_bytes = 16u << 20;  // segment file size before rolling to a new one
  bool spool_skip_corrupt = false;         // a record failing its CRC: false = constructor throws
                                           // config_error(spool_corrupt); true = log it, keep the readable records

  // ---- logging
  log_sink log;
  log_level min_log_level = log_level::info;
};

// One event to publish.
struct outgoing_event {
  std::string topic;
  std::string event = "message";  // event name the subscribers receive
  std::string data = "null";      // raw JSON value
  std::string id;                 // "" = assigned by the producer
};

struct publish_ack {
  std::string id;
  std::string offset;      // the event's offset in the broker's log
  bool duplicate = false;  // the broker had this id already; `offset` is the original one
};

using publish_callback = std::function<void(const result<publish_ack>&)>;

struct producer_stats {
  uint64_t accepted = 0;     // publish() calls that returned an id
  uint64_t acked = 0;        // acknowledged (incl. duplicates)
  uint64_t duplicates = 0;   // acknowledged with duplicate=true
  uint64_t failed = 0;       // callbacks with an error (timeout, rejected, dropped, closed)
  uint64_t dropped = 0;      // evicted by drop_oldest
  uint64_t resent = 0;       // events sent again (reconnect, ack timeout, retriable error)
  uint64_t batches = 0;      // publish emits
  uint64_t recovered = 0;    // unacknowledged events found in the spool at start-up
  uint64_t reconnects = 0;   // successful connects after the first
  size_t outbox_events = 0;  // now in the outbox
  size_t outbox_bytes = 0;
  bool connected = false;
};

class FERRY_CLIENT_API producer {
 public:
  // Throws config_error for start-up misuse: empty/malformed URL, invalid options, an
  // unusable spool directory, or (without spool_skip_corrupt) a corrupt spool record.
  producer(asio::io_context& io, producer_options options);
  producer(runner& r, producer_options options);
  ~producer();
  producer(producer&&) noexcept;
  producer& operator=(producer&&) noexcept;
  producer(const producer&) = delete;
  producer& operator=(const producer&) = delete;

  // Accepts an event into the outbox and returns its id, or fails at once with
  // invalid_argument (bad topic/event/data), outbox_full, would_block or closed - then
  // `cb` is not called. Otherwise `cb` is called exactly once: the ack, or the error
  // (timeout, rejected, dropped, closed).
  [[nodiscard]] result<std::string> publish(outgoing_event ev, publish_callback cb);
  // The same with a future; an immediate failure resolves the future at once.
  [[nodiscard]] std::future<result<publish_ack>> publish(outgoing_event ev);

  // Completes when every event accepted before the call is acknowledged or failed (ok),
  // or with errc::timeout after `timeout` (0 = no limit), or errc::closed.
  void flush(std::chrono::milliseconds timeout, std::function<void(result<void>)> done);
  [[nodiscard]] std::future<result<void>> flush(std::chrono::milliseconds timeout = std::chrono::milliseconds(0));

  // Closes the connection for good; pending callbacks fail with errc::closed. Idempotent.
  void close();

  // Connection-level errors (refused connections, rejected CONNECT, reconnect_failed, ...).
  void on_error(std::function<void(const error&)> handler);

  [[nodiscard]] producer_stats stats() const;
  [[nodiscard]] const std::string& id_prefix() const noexcept;

 private:
  std::shared_ptr<detail::producer_impl> _impl;
  std::shared_ptr<void> _keepalive;
};

}  // namespace ferry::client
