// log.h - Ferry's durable event log on RocksDB (DESIGN.md section 3).
//
// One RocksDB database per data directory with one column family per concern: events,
// checkpoints, sessions, positions, dedupe, meta (key layout: keys.h). Records are
// FlatBuffers verified on every read. Each namespace has one monotonically increasing
// sequence; events are stored per (namespace, topic, seq), so reading a topic costs
// O(events returned).
//
// Writes from every thread go through one writer thread that group-commits them: all
// requests waiting when it wakes become one WriteBatch (one WAL append, at most one
// fsync). What a completed append promises depends on options::sync:
//   none    the batch is in the WAL in the OS page cache: survives a crash of the
//           process (SIGKILL), not of the machine;
//   batch   the batch's WAL was fsynced before completion: survives power loss. One
//           fsync covers every write in the group;
//   always  as batch, and session/position writes are fsynced too (in batch mode they
//           ride along without their own fsync: a power loss may move a position back,
//           which means redelivery, never loss).
//
// Threading: all public methods are thread-safe. Callbacks run on the writer thread,
// or through options::dispatch (once per group commit) when it is set.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/ferry_generated.h"
#include "storage/errors.h"
#include "storage/fault.h"
#include "storage/records.h"

namespace ferry::storage {

enum class sync_mode : uint8_t { none, batch, always };
[[nodiscard]] bool parse_sync_mode(std::string_view text, sync_mode& out) noexcept;
[[nodiscard]] std::string_view to_string(sync_mode m) noexcept;

struct options {
  sync_mode sync = sync_mode::none;             // what an append completion promises (see above)
  bool read_only = false;                       // open as a RocksDB secondary: safe while a broker writes
  size_t max_pending_writes = 1 << 16;          // queued write requests; beyond: errc::overloaded
  size_t max_group_bytes = 8 << 20;             // a group commit stops growing past this many record bytes
  size_t max_chunk_events = 512;                // events per stored chunk (one chunk per topic per group)
  size_t block_cache_bytes = 128 << 20;         // RocksDB block cache shared by all column families
  size_t write_buffer_bytes = 64 << 20;         // memtable size of the events column family
  std::chrono::milliseconds checkpoint_interval{1000};  // time/size index granularity (retention, from:time)
  std::shared_ptr<fault_injector> faults;       // tests only: inject write failures
  // Runs the completion callbacks of one group commit (e.g. posts them to an
  // io_context). Null: they run on the writer thread.
  std::function<void(std::function<void()>)> dispatch;
  // No writer thread: the thread behind `dispatch` (the broker's io thread) commits the
  // writes itself, one group per turn of its event loop (the first write of a turn
  // schedules the commit through `dispatch`), and completions run right after the
  // commit. Saves two context switches per group when that thread has one CPU to itself;
  // with sync=batch/always the fsync would stall it, so use it with sync=none. Every
  // write call must then come from that one thread, and flush() commits at once.
  bool inline_commit = false;
};

// Per-namespace policy; defaults match the broker's defaults.
struct namespace_policy {
  std::chrono::milliseconds retention_age{0};                          // 0 = keep forever
  uint64_t retention_bytes = 0;                                        // 0 = no size limit
  std::chrono::milliseconds dedupe_window{std::chrono::hours(24)};     // producer-id memory
};

struct event_input {
  std::string topic;
  std::string event;
  std::string id;    // producer id; empty = not deduplicated
  std::string data;  // compact JSON text ("" = no data)
  std::vector<std::string> attachments;
  // Dead-letter copies only.
  std::string origin_topic;
  uint64_t origin_seq = 0;
  std::string dlq_reason;
  uint32_t deliveries = 0;
};

struct appended {
  uint64_t seq = 0;        // the event's seq (the original one for a duplicate)
  uint32_t topic_id = 0;
  bool duplicate = false;  // the id was seen within the dedupe window: nothing was stored
};

struct append_result {
  errc status = errc::ok;       // on error nothing of the request was stored
  std::vector<appended> events;  // one per input event, in order
  int64_t ts_ms = 0;             // the stored timestamp of the new events
};

// Gets the result and the request's events back (for fan-out without a copy).
using append_callback = std::function<void(append_result&, std::vector<event_input>&)>;
using write_callback = std::function<void(errc)>;

// An event read back from the log. Events are stored in chunks (one per topic per group
// commit); a stored_event shares ownership of its verified chunk.
struct stored_event {
  uint64_t seq = 0;
  std::shared_ptr<const std::string> chunk;  // verified FlatBuffers bytes of the chunk
  const schema::Event* ev = nullptr;         // points into *chunk
  [[nodiscard]] const schema::Event* event() const noexcept { return ev; }
  // Approximate bytes of the event (its fields), for read limits and accounting.
  [[nodiscard]] size_t size() const noexcept;
};

struct topic_info {
  std::string name;
  uint32_t id = 0;
  int64_t created_ms = 0;
  uint64_t first_seq = 0;  // the last event of this topic retention removed (0 = none): a reader
                           // positioned before it missed events
  uint64_t last_seq = 0;
  uint64_t count = 0;
  uint64_t bytes = 0;
};

struct position_info {
  std::string consumer;
  uint32_t topic_id = 0;
  uint64_t seq = 0;
  int64_t updated_ms = 0;
};

struct log_stats {
  uint64_t appended_events = 0;
  uint64_t duplicate_events = 0;
  uint64_t group_commits = 0;
  uint64_t write_errors = 0;
  uint64_t corrupt_records = 0;
};

class log {
 public:
  // Opens (creating if needed) the database in `dir`.
  [[nodiscard]] static result<std::unique_ptr<log>> open(const std::string& dir, options opts);
  ~log();  // completes queued writes, then stops the writer
  log(const log&) = delete;
  log& operator=(const log&) = delete;

  [[nodiscard]] uint32_t epoch() const noexcept { return _epoch; }
  [[nodiscard]] bool read_only() const noexcept { return _opts.read_only; }
  [[nodiscard]] sync_mode sync() const noexcept { return _opts.sync; }
  [[nodiscard]] const std::string& dir() const noexcept;
  [[nodiscard]] log_stats stats() const;
  // The last write error, errc::ok once writes succeed again.
  [[nodiscard]] errc health() const noexcept;

  // Namespaces. namespace_id creates the namespace durably when it is new.
  [[nodiscard]] result<uint32_t> namespace_id(std::string_view name);
  [[nodiscard]] std::optional<uint32_t> find_namespace(std::string_view name) const;
  [[nodiscard]] std::vector<std::pair<std::string, uint32_t>> namespaces() const;
  void set_policy(uint32_t ns, const namespace_policy& policy);
  [[nodiscard]] namespace_policy policy(uint32_t ns) const;

  // Topics and heads (committed state).
  [[nodiscard]] std::optional<uint32_t> find_topic(uint32_t ns, std::string_view name) const;
  [[nodiscard]] std::optional<topic_info> topic(uint32_t ns, uint32_t id) const;
  [[nodiscard]] std::vector<topic_info> topics(uint32_t ns) const;
  [[nodiscard]] uint64_t head(uint32_t ns) const;       // last seq appended (0 = none)
  [[nodiscard]] uint64_t low_water(uint32_t ns) const;  // retention removed everything at or below

  // Asynchronous, group-committed writes.
  void append(uint32_t ns, std::vector<event_input> events, append_callback done);
  void put_session(const session_record& s, write_callback done = {});
  void delete_session(std::string_view pid, write_callback done = {});
  void put_position(uint32_t ns, std::string_view consumer, uint32_t topic, uint64_t seq, write_callback done = {});
  // Deletes, by range, what the namespace policy no longer keeps.
  void enforce_retention(uint32_t ns, write_callback done = {});
  // Blocks until everything queued before the call is committed.
  errc flush();
  // While health() reports an error, asks the writer to retry (DB::Resume) without
  // waiting for a new write. Cheap no-op when healthy.
  void probe();

  // Reads. Events of `topic` with seq > after_seq, in order, at most max_events and
  // about max_bytes. A record that fails verification stops the read with corruption.
  [[nodiscard]] errc read(uint32_t ns, uint32_t topic, uint64_t after_seq, size_t max_events, size_t max_bytes,
                          std::vector<stored_event>& out) const;
  // One event by topic and seq.
  [[nodiscard]] result<stored_event> get(uint32_t ns, uint32_t topic, uint64_t seq) const;
  [[nodiscard]] result<session_record> get_session(std::string_view pid) const;
  [[nodiscard]] result<uint64_t> get_position(uint32_t ns, std::string_view consumer, uint32_t topic) const;
  [[nodiscard]] std::vector<position_info> positions(uint32_t ns) const;
  // The last seq appended before `ts_ms` (checkpoint granularity); 0 if none.
  [[nodiscard]] uint64_t seq_before_time(uint32_t ns, int64_t ts_ms) const;

  // Read-only (secondary) instances: catch up with the writing broker.
  [[nodiscard]] errc refresh();

 private:
  struct impl;
  explicit log(std::unique_ptr<impl> p);
  std::unique_ptr<impl> _impl;
  uint32_t _epoch = 0;
  options _opts;
};

}  // namespace ferry::storage
