// consumer.h - receives events from a Ferry broker's topics with their offsets.
//
// subscribe(topic, {from, consumer, mode}) starts a subscription; the handler gets each
// event {topic, event, data (raw JSON), id, ts, offset}. Positions:
//  * the session: the consumer tracks the broker's pid (CONNECT ack) and the offset of the
//    last delivery, and reconnects with auth {pid, offset} like the official JS client, so
//    the broker restores the session (its subscriptions) and replays what was missed;
//  * a named consumer (consumer_options::consumer -> auth.consumer, or
//    subscription_options::consumer) has a durable position on the broker that survives
//    new processes; subscribe resumes from it (`from` only applies to a new position).
// If the session cannot be restored (expired, or a wiped broker), the consumer
// subscribes again from the last offset it handed out (or the original `from`).
//
// Within one consumer object the same offset is never handed to the application twice
// (a per-topic high-water filter): redeliveries after reconnects or ack timeouts are
// filtered (and, in ack mode, acknowledged again if already acknowledged).
//
// Ack mode (mode::ack): the broker redelivers an event until it is acknowledged (then,
// after max_deliver attempts, moves it to $dlq.<consumer>). With ack_policy::after_handler
// the consumer acks when the handler returns normally (an exception means no ack: it is
// logged and the event comes back); with ack_policy::manual the application calls
// ack_token::ack(), from any thread, whenever it is done.
//
// Threading: all methods are thread-safe; handlers and callbacks run on the io_context
// (the consumer's strand), one at a time, in offset order per topic. Destroying the
// consumer does not block; no handler runs after close.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "ferry/client/error.h"
#include "ferry/client/log.h"
#include "ferry/client/socketio.h"

namespace asio {
class io_context;
}

namespace ferry::client {

class runner;
namespace detail {
class consumer_impl;
}

// Where a new position starts (subscribe `from`).
struct start_position {
  enum class kind : uint8_t { latest, earliest, offset, time };
  kind where = kind::latest;
  std::string offset;   // kind::offset: start AT this offset (inclusive)
  int64_t time_ms = 0;  // kind::time: the first event at or after this time (ms since the epoch)

  [[nodiscard]] static start_position latest() { return {}; }
  [[nodiscard]] static start_position earliest() { return {kind::earliest, {}, 0}; }
  [[nodiscard]] static start_position at_offset(std::string o) { return {kind::offset, std::move(o), 0}; }
  [[nodiscard]] static start_position at_time(int64_t ms) { return {kind::time, {}, ms}; }
};

enum class delivery_mode : uint8_t { automatic, ack };
enum class ack_policy : uint8_t { after_handler, manual };

struct subscription_options {
  start_position from;   // default latest
  std::string consumer;  // named position for this topic; "" = consumer_options::consumer
  delivery_mode mode = delivery_mode::automatic;
  ack_policy ack = ack_policy::after_handler;  // ack mode only
};

// One delivered event.
struct event {
  std::string topic;
  std::string name;                      // the event name it was published with
  std::string data;                      // raw JSON
  std::string id;                        // the producer's id (or the offset when it had none)
  int64_t ts = 0;                        // broker timestamp, ms since the epoch
  std::string offset;                    // opaque; fixed width, compares as a string within one broker epoch
  std::vector<std::string> attachments;  // binary attachments, if published with any
};

// Acknowledges one ack-mode delivery. Copyable; ack() is idempotent and thread-safe. In
// automatic mode (or once acknowledged) required() is false and ack() does nothing.
class FERRY_CLIENT_API ack_token {
 public:
  ack_token() = default;
  void ack() const;
  [[nodiscard]] bool required() const noexcept;

 private:
  friend class detail::consumer_impl;
  struct state;
  explicit ack_token(std::shared_ptr<state> s) : _s(std::move(s)) {}
  std::shared_ptr<state> _s;
};

using event_handler = std::function<void(const event&, const ack_token&)>;

struct subscribe_ack {
  std::string topic;
  std::string head;      // offset of the topic's last event
  std::string position;  // where this subscription starts (after it)
};

// The broker could not deliver a range (retention removed it, or the offset was from
// another epoch); `first` is the first offset still available.
struct gap_info {
  std::string topic;  // "" for a session-wide gap (recovery with an untrusted offset)
  std::string from;
  std::string first;
  std::string reason;
};

struct consumer_options {
  std::string url;          // "http://127.0.0.1:7070[/namespace]"
  std::string nsp;          // "" = the URL's path, or "/"
  std::string auth = "{}";  // CONNECT auth payload (JSON object)
  std::string consumer;     // named durable consumer (auth.consumer); "" = none
  std::string path = "/socket.io/";
  std::chrono::milliseconds connect_timeout{10000};
  reconnect_options reconnect{.initial_delay = std::chrono::milliseconds(250)};
  std::chrono::milliseconds request_timeout{10000};   // subscribe/unsubscribe/commit reply deadline
  std::chrono::milliseconds auto_commit_interval{0};  // > 0: `commit` the last handled offset of each
                                                      // automatic-mode topic at this period
  size_t max_pending_acks = 100000;                   // manual ack tokens outstanding (bounded by the
                                                      // broker's max_in_flight per subscription anyway)
  log_sink log;
  log_level min_log_level = log_level::info;
};

struct consumer_stats {
  uint64_t delivered = 0;  // events handed to handlers
  uint64_t filtered = 0;   // redeliveries dropped by the high-water filter
  uint64_t acked = 0;      // acks sent (ack mode)
  uint64_t commits = 0;    // commit emits acknowledged
  uint64_t gaps = 0;
  uint64_t reconnects = 0;
  uint64_t recovered = 0;  // reconnects where the broker restored the session
  bool connected = false;
};

class FERRY_CLIENT_API consumer {
 public:
  // Throws config_error for a malformed URL or invalid options.
  consumer(asio::io_context& io, consumer_options options);
  consumer(runner& r, consumer_options options);
  ~consumer();
  consumer(consumer&&) noexcept;
  consumer& operator=(consumer&&) noexcept;
  consumer(const consumer&) = delete;
  consumer& operator=(const consumer&) = delete;

  // Subscribes (re-subscribing a topic replaces its handler; the broker keeps the first
  // subscription's options). `done` gets the broker's reply or an error (rejected with
  // the broker's code, timeout, closed).
  void subscribe(std::string topic, subscription_options options, event_handler handler,
                 std::function<void(result<subscribe_ack>)> done);
  [[nodiscard]] std::future<result<subscribe_ack>> subscribe(std::string topic, subscription_options options,
                                                             event_handler handler);

  // Stops the handler at once; the broker's reply completes the future (sent after the
  // reconnect when disconnected).
  [[nodiscard]] std::future<result<void>> unsubscribe(std::string topic);
  // Stores `offset` as the position of the topic's subscription (named consumers: durable).
  // Fails with errc::disconnected while not connected (commits are not queued), and
  // errc::not_subscribed without a subscription to the topic.
  [[nodiscard]] std::future<result<void>> commit(std::string topic, std::string offset);

  void on_gap(std::function<void(const gap_info&)> handler);
  void on_error(std::function<void(const error&)> handler);
  // After every (re)connect: whether the broker restored the session.
  void on_connect(std::function<void(const sio::connect_info&)> handler);

  void close();  // idempotent; pending requests fail with errc::closed

  [[nodiscard]] consumer_stats stats() const;

 private:
  std::shared_ptr<detail::consumer_impl> _impl;
  std::shared_ptr<void> _keepalive;
};

}  // namespace ferry::client
