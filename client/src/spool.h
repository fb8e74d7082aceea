// spool.h - the producer's optional on-disk outbox: an append-only log of accepted events
// and of the seqs that no longer need sending, so that a producer restarted on the same
// directory resends exactly what was never acknowledged.
//
// Files: <dir>/LOCK (flock: one producer per directory) and segments
// <dir>/spool-<20-digit number>.log. A segment is a sequence of records
//
//   u32 length (LE) | u32 CRC-32 of the payload (LE, zlib crc32) | payload[length]
//   payload: u8 type
//     1 = put:  u64 seq | u32 id length | id | encoded publish item (rest)
//     2 = done: u32 count | count x u64 seq   (acknowledged, failed for good, or dropped)
//
// Recovery (open): every segment is read in order; puts minus dones are the live events.
// A record cut short at the end of a file, or a final record whose CRC does not match
// (a write torn by a crash), is ignored. A record that fails its CRC with more data
// after it is corruption: open fails with errc::spool_corrupt, or with skip_corrupt the
// record is skipped, counted in the report, and the file is kept as *.corrupt.
// Compaction: open rewrites the live events into one new segment and deletes the old
// ones; at run time segments roll at segment_bytes, and the oldest segments are deleted
// once all their events are done - oldest first, so a done record is never deleted
// before the put it cancels.
//
// Durability: records are written with write(2) before publish() returns, so they
// survive a crash of the process; with fsync they also survive power loss (one
// fdatasync per write).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/client/error.h"

namespace ferry::client::detail {

struct spool_options {
  std::string dir;
  bool fsync = false;
  size_t segment_bytes = 16u << 20;
  bool skip_corrupt = false;
};

struct spooled_event {
  uint64_t seq = 0;
  std::string id;
  std::string item;
};

struct spool_report {
  size_t segments = 0;                // segment files read
  size_t records = 0;                 // valid records read
  size_t live = 0;                    // events recovered (not done)
  size_t torn_bytes = 0;              // bytes of torn tails ignored
  size_t corrupt_records = 0;         // CRC failures that were not torn tails
  std::vector<std::string> problems;  // one line per torn tail / corrupt record
};

// CRC-32 (zlib) of a byte string.
[[nodiscard]] uint32_t spool_crc(std::string_view bytes) noexcept;

class spool {
 public:
  // Opens (creating the directory if needed), recovers and compacts. `live` gets the
  // unacknowledged events in seq order.
  [[nodiscard]] static result<std::unique_ptr<spool>> open(const spool_options& options,
                                                           std::vector<spooled_event>& live, spool_report& report);
  ~spool();
  spool(const spool&) = delete;
  spool& operator=(const spool&) = delete;

  // Thread-safe.
  [[nodiscard]] result<void> append_put(uint64_t seq, std::string_view id, std::string_view item);
  [[nodiscard]] result<void> append_done(const std::vector<uint64_t>& seqs);

  [[nodiscard]] uint64_t next_seq() const noexcept { return _next_seq; }
  [[nodiscard]] size_t segment_count() const;
  [[nodiscard]] size_t live_count() const;

  // Record encoding, exposed for tests.
  [[nodiscard]] static std::string encode_put(uint64_t seq, std::string_view id, std::string_view item);
  [[nodiscard]] static std::string encode_done(const std::vector<uint64_t>& seqs);

 private:
  struct segment {
    uint64_t number = 0;
    std::string path;
    size_t bytes = 0;
    size_t live = 0;  // puts in this segment not yet done
  };

  spool(spool_options o, int lock_fd) : _opts(std::move(o)), _lock_fd(lock_fd) {}
  result<void> roll();  // starts a new active segment
  result<void> write_record(const std::string& record);
  void collect();  // deletes fully done segments, oldest first

  spool_options _opts;
  int _lock_fd = -1;
  mutable std::mutex _mutex;
  int _fd = -1;                               // active segment
  std::vector<segment> _segments;             // oldest first; back() is active
  std::map<uint64_t, uint64_t> _seq_segment;  // live seq -> segment number
  uint64_t _next_seq = 1;
};

}  // namespace ferry::client::detail
