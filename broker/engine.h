// engine.h - Ferry's delivery engine: broker semantics on top of the Socket.IO layer
// and the durable log (DESIGN.md section 2).
//
// Reserved events a client emits: subscribe, unsubscribe, publish, commit. Publishes are
// acknowledged after the durable write; subscribers receive
//   42["<event>", <data>, {"topic":..,"id":..,"ts":..}, "<offset>"]
// in offset order per topic. A reconnecting client (auth {pid, offset}) gets its session
// back and every event it missed before the CONNECT ack, also after a broker restart.
//
// Delivery model (README "Guarantees" has the user-facing version):
//  * Auto-mode subscriptions of one session form one stream in namespace-seq order (the
//    "session cursor"). The CSR offset the client reports names the last event it got,
//    so recovery resumes every auto subscription right after it.
//  * A subscription that starts in the past (from earliest/offset/time) first replays its
//    history up to the session cursor (a "history phase", with the session stream paused),
//    then joins the stream. Its record keeps from_seq and history_end so recovery can tell
//    history deliveries from stream deliveries.
//  * Ack-mode subscriptions run on their own cursor with at most max_in_flight unacked
//    deliveries, redelivery after ack_timeout, and the dead-letter topic after max_deliver.
//    (The official client does not track offsets of packets that carry an ack id, so ack
//    deliveries never disturb the session cursor.)
//  * A subscriber whose outbound queue passes live_high_water leaves live fan-out and
//    catches up from the log, reading only while its queue is below live_low_water.
//
// Threading: io thread only (storage completions are posted to it).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include "broker/socketio.h"
#include "storage/log.h"

namespace ferry::broker {

struct namespace_config {
  std::string name = "/";
  bool recovery = true;   // connection-state recovery: pid in the CONNECT ack, sessions persisted
  bool offsets = true;    // deliveries carry the trailing offset argument (off for python-socketio)
  storage::namespace_policy policy;                    // retention by age/size, dedupe window
  std::chrono::milliseconds ack_timeout{30000};        // ack mode: redeliver after this
  uint32_t max_deliver = 5;                            // ack mode: deliveries before the DLQ
  uint32_t max_in_flight = 1000;                       // ack mode: unacked deliveries per subscription
  std::chrono::milliseconds session_ttl{std::chrono::hours(24)};  // how long a disconnected session can recover
};

struct engine_options {
  std::vector<namespace_config> namespaces{namespace_config{}};
  // Accept CONNECTs to namespaces not listed, configured like dynamic_defaults.
  bool dynamic_namespaces = false;
  namespace_config dynamic_defaults;
  size_t max_topics_per_socket = 100;      // subscriptions per socket
  size_t max_topic_bytes = 200;            // topic name length
  size_t max_event_name_bytes = 200;       // event name length
  size_t max_id_bytes = 256;               // producer id length
  size_t max_event_bytes = 1 << 20;        // data + attachments of one event
  size_t max_batch_events = 1000;          // events in one publish batch
  size_t max_pending_publishes = 10000;    // per connection, awaiting the durable write
  double publish_rate = 0;                 // events/s per connection, 0 = unlimited
  double publish_burst = 0;                // token bucket size (0 = one second of publish_rate)
  size_t live_high_water = 1 << 20;        // outbound bytes: above, leave live fan-out
  size_t live_low_water = 256 << 10;       // outbound bytes: below, read more from the log
  size_t replay_chunk_events = 512;        // events per log read while catching up
  size_t replay_chunk_bytes = 1 << 20;     // bytes per log read while catching up
  std::chrono::milliseconds retention_interval{10000};      // how often retention runs
  std::chrono::milliseconds position_save_interval{1000};   // auto-mode positions of named consumers
};

// Counters for /metrics.
struct engine_stats {
  uint64_t published = 0;
  uint64_t duplicates = 0;
  uint64_t publish_errors = 0;
  uint64_t delivered = 0;
  uint64_t replayed = 0;
  uint64_t redelivered = 0;
  uint64_t dead_lettered = 0;
  uint64_t acks = 0;
  uint64_t recoveries = 0;
  uint64_t recovery_failures = 0;
  uint64_t gaps = 0;
  uint64_t slow_consumer_cuts = 0;
  uint64_t sessions = 0;       // gauge
  uint64_t subscriptions = 0;  // gauge
};

class engine {
 public:
  engine(asio::io_context& io, sio::server& sio, storage::log& log, engine_options opts);
  ~engine();
  engine(const engine&) = delete;
  engine& operator=(const engine&) = delete;

  // Publishes a `publish` payload (one event object or an array of them, raw JSON) to
  // namespace `nsp`; `reply` gets the JSON reply after the durable write (or an error).
  void publish(std::string_view nsp, std::string_view payload_json, std::vector<std::string> attachments,
               std::function<void(std::string reply_json)> reply);

  // Saves every session and position and flushes the log (graceful shutdown), then
  // disconnects every client.
  void shutdown();

  [[nodiscard]] const engine_stats& stats() const noexcept { return _stats; }
  [[nodiscard]] const engine_options& options() const noexcept { return _opts; }
  [[nodiscard]] storage::log& log() noexcept { return _log; }
  // The storage id of a served namespace; nullopt if it is not served.
  [[nodiscard]] std::optional<uint32_t> namespace_id(std::string_view nsp) const;
  // Per-consumer lag for /metrics: (namespace, consumer, topic, lag).
  struct lag_info {
    std::string nsp, consumer, topic;
    uint64_t lag;
  };
  [[nodiscard]] std::vector<lag_info> consumer_lag() const;
  // True while a connected session of `consumer` is subscribed to `topic` in `nsp`
  // (its live cursor would overwrite a position set from outside).
  [[nodiscard]] bool consumer_active(std::string_view nsp, std::string_view consumer, std::string_view topic) const;

  struct ns_rt;
  struct session_rt;
  struct subscription;
  struct topic_rt;

 private:
  ns_rt& setup_namespace(sio::namespace_& nsp, const namespace_config& cfg);
  void on_connect(ns_rt& ns, const sio::socket_ptr& s, std::function<void(sio::connect_outcome)> done);
  void on_disconnect(session_rt& s, sio::disconnect_reason reason);
  void on_subscribe(session_rt& s, sio::message& m, sio::responder reply);
  void on_unsubscribe(session_rt& s, sio::message& m, sio::responder reply);
  void on_commit(session_rt& s, sio::message& m, sio::responder reply);
  void on_publish(session_rt& s, sio::message& m, sio::responder reply);

  // `doc` is the validated publish payload (an object or an array of objects).
  void do_publish(ns_rt& ns, session_rt* from, protocol::json::value doc, bool compact,
                  std::vector<std::string>& attachments, std::function<void(std::string)> reply);
  void on_committed(ns_rt& ns, uint32_t topic_id, const storage::event_input& ev, uint64_t seq, int64_t ts);
  topic_rt& topic_for(ns_rt& ns, const std::string& name);
  void link_topic(ns_rt& ns, topic_rt& t, uint32_t id);

  void deliver_live_ack(subscription& sub, uint64_t seq);
  void schedule_pump(session_rt& s, std::chrono::milliseconds delay = std::chrono::milliseconds(0));
  void pump(session_rt& s);
  bool pump_history(session_rt& s, subscription& sub, size_t& budget);
  bool pump_merged(session_rt& s, size_t& budget);
  bool pump_ack(session_rt& s, subscription& sub, size_t& budget);
  void send_stored(session_rt& s, const storage::stored_event& e, bool with_offset);
  void send_ack_delivery(session_rt& s, subscription& sub, const storage::stored_event& e, uint32_t deliveries);
  void on_delivery_acked(session_rt& s, subscription& sub, uint64_t seq);
  void on_delivery_timeout(session_rt& s, subscription& sub, uint64_t seq);
  void dead_letter(session_rt& s, subscription& sub, uint64_t seq, uint32_t deliveries);
  void advance_committed(session_rt& s, subscription& sub);
  // The last event of the subscription's topic that retention removed (0 = none).
  [[nodiscard]] uint64_t lost_upto(const ns_rt& ns, const subscription& sub) const;
  // Tells the client with a $gap event that events of sub's topic after `from` up to
  // `lost` are gone.
  void report_gap(session_rt& s, const subscription& sub, uint64_t from, uint64_t lost);
  void maybe_caught_up(session_rt& s);
  void go_live(session_rt& s);

  void save_session(session_rt& s, std::function<void(storage::errc)> done = {});
  void save_positions();
  void tick_retention();
  void tick_positions();

  asio::io_context& _io;
  sio::server& _sio;
  storage::log& _log;
  engine_options _opts;
  std::unordered_map<std::string, std::unique_ptr<ns_rt>> _namespaces;
  asio::steady_timer _retention_timer;
  asio::steady_timer _position_timer;
  engine_stats _stats;
  bool _shutting_down = false;
  uint64_t _ticks = 0;
  std::shared_ptr<bool> _alive = std::make_shared<bool>(true);
};

}  // namespace ferry::broker
