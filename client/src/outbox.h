// outbox.h - the producer's bounded outbox: every accepted event from publish() until it
// is acknowledged, fails, or is evicted. Thread-safe (one mutex); publishers may block in
// push() on a condition variable, the io side takes batches and completes events.
//
// Bound and outcomes (STYLE.md habit 6): at max_events or max_bytes a push
//   fail        -> status::full at once
//   block       -> waits up to the timeout for room, then status::full
//                  (status::would_block when the caller must not wait - decided by the caller)
//   drop_oldest -> evicts the oldest events (queued or in flight) and returns them, so that
//                  their callbacks get errc::dropped.
// An event larger than max_bytes on its own is never accepted (status::too_large).
//
// Events are kept in seq order; queued ones are sent lowest seq first, so events requeued
// after a reconnect or a retriable error go out before newer ones.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ferry/client/error.h"
#include "ferry/client/producer.h"

namespace ferry::client::detail {

struct outbox_entry {
  uint64_t seq = 0;  // local order and spool key
  std::string id;
  std::string item;     // the encoded publish item {"topic":..,"event":..,"data":..,"id":..}
  publish_callback cb;  // empty for events recovered from the spool
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  bool in_flight = false;
  bool solo = false;  // send alone (isolates the bad event of a rejected batch)
  uint32_t sends = 0;
};

class outbox {
 public:
  enum class status : uint8_t { accepted, full, too_large, closed, rejected };

  struct push_result {
    status st = status::accepted;
    error err;                          // status::rejected: what accept() returned
    std::vector<outbox_entry> dropped;  // drop_oldest: evicted to make room
  };

  // A batch taken for sending.
  struct batch {
    std::string json;  // "[item,item,...]"
    std::vector<uint64_t> seqs;
  };

  outbox(size_t max_events, size_t max_bytes) : _max_events(max_events), _max_bytes(max_bytes) {}

  // Adds an event. `accept` runs under the lock once there is room, in acceptance order
  // (it assigns e.seq and writes the spool); if it fails the event is not added
  // (status::rejected). `block_timeout` applies to outbox_policy::block only.
  push_result push(outbox_entry e, outbox_policy policy, std::chrono::milliseconds block_timeout,
                   const std::function<result<void>(outbox_entry&)>& accept);
  // Adds without a bound (events recovered from the spool at start-up).
  void push_unbounded(outbox_entry e);

  // Takes queued events (lowest seq first) into a batch: at least one, then up to
  // max_events / max_bytes of encoded items. A solo event is always alone. Marks them in
  // flight. Empty if nothing is queued.
  batch take_batch(size_t max_events, size_t max_bytes);
  // Removes an event (acknowledged or failed); nullopt if it is gone already (dropped,
  // expired).
  std::optional<outbox_entry> complete(uint64_t seq);
  // In flight -> queued again (not acknowledged). Returns how many were requeued.
  size_t requeue(const std::vector<uint64_t>& seqs, bool solo = false);
  size_t requeue_all();
  // Removes events whose deadline is <= now.
  std::vector<outbox_entry> expire(std::chrono::steady_clock::time_point now);
  // Removes everything and refuses further pushes (blocked publishers wake up with closed).
  std::vector<outbox_entry> close();

  [[nodiscard]] size_t size() const;
  [[nodiscard]] size_t bytes() const;
  [[nodiscard]] size_t queued() const;
  [[nodiscard]] size_t queued_bytes() const;
  // Lowest seq still in the outbox (UINT64_MAX when empty).
  [[nodiscard]] uint64_t lowest_seq() const;
  [[nodiscard]] bool closed() const;

 private:
  bool has_room(size_t bytes) const { return _entries.size() < _max_events && _bytes + bytes <= _max_bytes; }
  outbox_entry remove(std::map<uint64_t, outbox_entry>::iterator it);

  const size_t _max_events;
  const size_t _max_bytes;
  mutable std::mutex _mutex;
  std::condition_variable _room;
  std::map<uint64_t, outbox_entry> _entries;  // by seq
  std::set<uint64_t> _queued;                 // seqs waiting to be sent
  size_t _bytes = 0;
  size_t _queued_bytes = 0;
  bool _closed = false;
};

}  // namespace ferry::client::detail
