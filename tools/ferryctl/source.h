// source.h - where ferryctl reads from: the broker's HTTP API (online) or the data
// directory through a read-only RocksDB secondary (offline). Commands are written once
// against this interface, so both modes print the same bytes for the same data.
//
// Errors are thrown as ferryctl::failure with the exit code (args.h). Not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "protocol/offset.h"

namespace ferry::ferryctl {

struct dlq_info {
  std::string topic;   // the original topic
  std::string offset;  // the original offset
  std::string reason;
  uint64_t deliveries = 0;
};

// One event as ferryctl prints it (README "replay"), identical in both modes.
struct event_record {
  protocol::offset offset;
  std::string topic;
  std::string event;
  std::string id;  // the producer's id, or the offset when none was given
  int64_t ts_ms = 0;
  std::string data;                      // compact JSON text ("null" when the event has no data)
  std::vector<std::string> attachments;  // base64
  std::optional<dlq_info> dlq;           // only on dead-letter copies
};

struct topic_row {
  std::string name;
  protocol::offset head;   // last event's offset (seq 0: none yet)
  protocol::offset first;  // first offset retention still keeps (inclusive)
  uint64_t count = 0;      // events appended, including ones retention removed since
  uint64_t bytes = 0;      // record bytes appended
  int64_t created_ms = 0;
};

struct position_row {
  std::string consumer;
  std::string topic;
  protocol::offset position;  // last event delivered/committed (the next one comes after it)
  protocol::offset head;      // the topic's head
  uint64_t lag = 0;           // events of the topic after the position (the broker's definition)
  int64_t updated_ms = 0;
  std::optional<bool> active;  // online only: a connected session holds this position
};

struct dlq_row {
  std::string topic;  // $dlq.<consumer>
  std::string consumer;
  uint64_t count = 0;
  protocol::offset head;
  protocol::offset redriven_to;  // dead letters up to here were redriven (seq 0: none)
};

struct events_page {
  std::vector<event_record> events;
  uint64_t next_seq = 0;  // where the next read starts (inclusive)
};

class source {
 public:
  virtual ~source() = default;

  [[nodiscard]] virtual bool online() const noexcept = 0;
  // Where it reads from, for messages ("http://127.0.0.1:7070" or "data directory X").
  [[nodiscard]] virtual std::string where() const = 0;
  [[nodiscard]] virtual const std::string& namespace_name() const noexcept = 0;

  // The log's epoch (offsets of other epochs are refused).
  [[nodiscard]] virtual uint32_t epoch() = 0;
  // The namespace's topics, sorted by name. Unknown namespace: failure(not_found).
  [[nodiscard]] virtual std::vector<topic_row> topics() = 0;
  // The namespace head (last offset appended to any topic).
  [[nodiscard]] virtual protocol::offset namespace_head() = 0;
  // Events of `topic` with seq >= from_seq, in order, at most `limit`.
  [[nodiscard]] virtual events_page read(const std::string& topic, uint64_t from_seq, size_t limit) = 0;
  // A seq such that every event at or before it was stored before `ts_ms` (a lower
  // bound for time lookups; 0 if unknown).
  [[nodiscard]] virtual uint64_t seq_before_time(int64_t ts_ms) = 0;
  // Named consumers' positions (all consumers when `consumer` is empty).
  [[nodiscard]] virtual std::vector<position_row> positions(const std::string& consumer) = 0;
  [[nodiscard]] virtual std::vector<dlq_row> dlq() = 0;
  // Stats as one compact JSON object.
  [[nodiscard]] virtual std::string stats_json() = 0;
  // Offline: catch up with the writing broker (follow mode). Online: nothing.
  virtual void refresh() = 0;
};

// Online-only operations (the broker's write endpoints).
class broker_api {
 public:
  virtual ~broker_api() = default;
  // POST /v1/positions; returns the stored position offset.
  [[nodiscard]] virtual std::string set_position(const std::string& consumer, const std::string& topic,
                                                 const std::string& to) = 0;
  struct redrive_result {
    uint64_t redriven = 0;
    std::string position;  // "" when nothing was redriven
  };
  [[nodiscard]] virtual redrive_result redrive(const std::string& consumer, uint64_t limit) = 0;
  struct published {
    std::string offset;
    bool duplicate = false;
  };
  // POST /v1/publish with a JSON array of publish objects; one result per object.
  [[nodiscard]] virtual std::vector<published> publish_batch(const std::string& array_json, size_t count) = 0;
};

struct online_options {
  std::string url;
  int64_t connect_timeout_ms = 3000;
  int64_t timeout_ms = 15000;
};

// Both throw failure: bad URL (usage), missing/unreadable data directory (unavailable),
// corruption. The online source implements broker_api too (dynamic_cast).
[[nodiscard]] std::unique_ptr<source> open_online(const online_options& options, const std::string& nsp);
[[nodiscard]] std::unique_ptr<source> open_offline(const std::string& dir, const std::string& nsp);

}  // namespace ferry::ferryctl
