#include "client/src/spool.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <fmt/format.h>

namespace ferry::client::detail {

namespace fs = std::filesystem;

namespace {

constexpr uint8_t record_put = 1;
constexpr uint8_t record_done = 2;
constexpr size_t header_bytes = 8;
constexpr std::string_view segment_prefix = "spool-";
constexpr std::string_view segment_suffix = ".log";

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
uint32_t get_u32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
uint64_t get_u64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::string frame(const std::string& payload) {
  std::string out;
  out.reserve(header_bytes + payload.size());
  put_u32(out, static_cast<uint32_t>(payload.size()));
  put_u32(out, spool_crc(payload));
  out += payload;
  return out;
}

std::string segment_name(uint64_t n) {
  return fmt::format("{}{:020}{}", segment_prefix, n, segment_suffix);
}

bool parse_segment_name(const std::string& name, uint64_t& n) {
  if (name.size() != segment_prefix.size() + 20 + segment_suffix.size()) return false;
  if (name.compare(0, segment_prefix.size(), segment_prefix) != 0) return false;
  if (name.compare(name.size() - segment_suffix.size(), segment_suffix.size(), segment_suffix) != 0) return false;
  n = 0;
  for (size_t i = segment_prefix.size(); i < segment_prefix.size() + 20; ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
    n = n * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  return true;
}

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

bool write_all(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

uint32_t spool_crc(std::string_view bytes) noexcept {
  uLong crc = crc32(0L, Z_NULL, 0);
  // zlib takes uInt lengths; feed large inputs in pieces.
  while (!bytes.empty()) {
    size_t n = std::min<size_t>(bytes.size(), 1u << 30);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(n));
    bytes.remove_prefix(n);
  }
  return static_cast<uint32_t>(crc);
}

std::string spool::encode_put(uint64_t seq, std::string_view id, std::string_view item) {
  std::string p;
  p.reserve(1 + 8 + 4 + id.size() + item.size());
  p.push_back(static_cast<char>(record_put));
  put_u64(p, seq);
  put_u32(p, static_cast<uint32_t>(id.size()));
  p.append(id);
  p.append(item);
  return frame(p);
}

std::string spool::encode_done(const std::vector<uint64_t>& seqs) {
  std::string p;
  p.reserve(1 + 4 + 8 * seqs.size());
  p.push_back(static_cast<char>(record_done));
  put_u32(p, static_cast<uint32_t>(seqs.size()));
  for (uint64_t s : seqs) put_u64(p, s);
  return frame(p);
}

result<std::unique_ptr<spool>> spool::open(const spool_options& options, std::vector<spooled_event>& live,
                                           spool_report& report) {
  live.clear();
  report = {};
  if (options.dir.empty()) return {errc::spool_error, "empty spool directory"};
  std::error_code ec;
  fs::create_directories(options.dir, ec);
  if (ec) return {errc::spool_error, "cannot create spool directory " + options.dir + ": " + ec.message()};

  std::string lock_path = (fs::path(options.dir) / "LOCK").string();
  int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0) return {errc::spool_error, errno_text("cannot open " + lock_path)};
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd);
    return {errc::spool_error, "spool directory " + options.dir + " is in use by another producer (LOCK is held)"};
  }
  std::unique_ptr<spool> sp(new spool(options, lock_fd));

  // ---- read every segment, oldest first
  std::vector<std::pair<uint64_t, std::string>> files;
  for (const auto& entry : fs::directory_iterator(options.dir, ec)) {
    uint64_t n = 0;
    std::string name = entry.path().filename().string();
    std::error_code fec;
    if (!entry.is_regular_file(fec)) continue;
    if (parse_segment_name(name, n)) {
      files.emplace_back(n, entry.path().string());
    } else if (name.size() > 4 && name.ends_with(".tmp") && name.starts_with(segment_prefix)) {
      fs::remove(entry.path(), fec);  // an interrupted compaction; its source segments are still there
    }
  }
  if (ec) return {errc::spool_error, "cannot list spool directory " + options.dir + ": " + ec.message()};
  std::sort(files.begin(), files.end());

  std::map<uint64_t, spooled_event> events;
  uint64_t max_seq = 0;
  std::vector<std::string> corrupt_files;
  for (const auto& [number, path] : files) {
    ++report.segments;
    std::ifstream in(path, std::ios::binary);
    if (!in) return {errc::spool_error, "cannot read " + path};
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t pos = 0;
    bool corrupt_here = false;
    while (pos < data.size()) {
      size_t remaining = data.size() - pos;
      if (remaining < header_bytes) {
        report.torn_bytes += remaining;
        report.problems.push_back(fmt::format("{}: torn record header at byte {} ignored", path, pos));
        break;
      }
      uint32_t len = get_u32(data.data() + pos);
      uint32_t crc = get_u32(data.data() + pos + 4);
      if (len > remaining - header_bytes) {
        report.torn_bytes += remaining;
        report.problems.push_back(fmt::format("{}: torn record at byte {} ignored ({} of {} bytes)", path, pos,
                                              remaining - header_bytes, len));
        break;
      }
      std::string_view payload(data.data() + pos + header_bytes, len);
      size_t next = pos + header_bytes + len;
      bool crc_ok = spool_crc(payload) == crc;
      if (!crc_ok && next == data.size()) {
        // The last record of the file: a write torn by a crash, not corruption.
        report.torn_bytes += remaining;
        report.problems.push_back(fmt::format("{}: torn final record at byte {} ignored (CRC mismatch)", path, pos));
        break;
      }
      bool valid = crc_ok && !payload.empty();
      if (valid) {
        auto type = static_cast<uint8_t>(payload[0]);
        if (type == record_put && payload.size() >= 13) {
          uint64_t seq = get_u64(payload.data() + 1);
          uint32_t idlen = get_u32(payload.data() + 9);
          if (13 + static_cast<size_t>(idlen) <= payload.size()) {
            spooled_event e;
            e.seq = seq;
            e.id = std::string(payload.substr(13, idlen));
            e.item = std::string(payload.substr(13 + idlen));
            events[seq] = std::move(e);
            max_seq = std::max(max_seq, seq);
          } else {
            valid = false;
          }
        } else if (type == record_done && payload.size() >= 5) {
          uint32_t count = get_u32(payload.data() + 1);
          if (5 + static_cast<size_t>(count) * 8 == payload.size()) {
            for (uint32_t i = 0; i < count; ++i) {
              uint64_t seq = get_u64(payload.data() + 5 + 8 * i);
              events.erase(seq);
              max_seq = std::max(max_seq, seq);
            }
          } else {
            valid = false;
          }
        } else {
          valid = false;
        }
      }
      if (!valid) {
        ++report.corrupt_records;
        corrupt_here = true;
        std::string what = fmt::format("{}: corrupt record at byte {} ({} bytes, {})", path, pos, len,
                                       crc_ok ? "unknown record layout" : "CRC mismatch");
        report.problems.push_back(what);
        if (!options.skip_corrupt)
          return {errc::spool_corrupt, what + "; set spool_skip_corrupt to recover the readable records"};
      } else {
        ++report.records;
      }
      pos = next;
    }
    if (corrupt_here) corrupt_files.push_back(path);
  }

  // ---- compaction: the live events into one fresh segment, then drop the old files
  uint64_t number = files.empty() ? 1 : files.back().first + 1;
  sp->_next_seq = max_seq + 1;
  std::string path = (fs::path(options.dir) / segment_name(number)).string();
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return {errc::spool_error, errno_text("cannot create " + tmp)};
  segment seg;
  seg.number = number;
  seg.path = path;
  std::string buf;
  for (auto& [seq, e] : events) {
    buf += encode_put(seq, e.id, e.item);
    if (buf.size() > (1u << 20)) {
      if (!write_all(fd, buf.data(), buf.size())) {
        ::close(fd);
        return {errc::spool_error, errno_text("cannot write " + tmp)};
      }
      seg.bytes += buf.size();
      buf.clear();
    }
    sp->_seq_segment[seq] = number;
    ++seg.live;
    live.push_back(std::move(e));
  }
  if (!write_all(fd, buf.data(), buf.size()) || ::fsync(fd) != 0) {
    ::close(fd);
    return {errc::spool_error, errno_text("cannot write " + tmp)};
  }
  seg.bytes += buf.size();
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return {errc::spool_error, errno_text("cannot rename " + tmp)};
  (void)fsync_dir(options.dir);
  for (const auto& [n, p] : files) {
    bool corrupt = std::find(corrupt_files.begin(), corrupt_files.end(), p) != corrupt_files.end();
    if (corrupt) {
      fs::rename(p, p + ".corrupt", ec);  // kept for inspection
    } else {
      fs::remove(p, ec);
    }
  }
  (void)fsync_dir(options.dir);
  sp->_fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (sp->_fd < 0) return {errc::spool_error, errno_text("cannot open " + path)};
  sp->_segments.push_back(std::move(seg));
  report.live = live.size();
  return sp;
}

spool::~spool() {
  if (_fd >= 0) ::close(_fd);
  if (_lock_fd >= 0) ::close(_lock_fd);  // releases the flock
}

result<void> spool::roll() {
  uint64_t number = _segments.empty() ? 1 : _segments.back().number + 1;
  std::string path = (fs::path(_opts.dir) / segment_name(number)).string();
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return {errc::spool_error, errno_text("cannot create " + path)};
  if (_fd >= 0) ::close(_fd);
  _fd = fd;
  segment seg;
  seg.number = number;
  seg.path = path;
  _segments.push_back(std::move(seg));
  if (_opts.fsync) (void)fsync_dir(_opts.dir);
  return {};
}

result<void> spool::write_record(const std::string& record) {
  if (_fd < 0) return {errc::spool_error, "spool is not open"};
  if (!write_all(_fd, record.data(), record.size())) return {errc::spool_error, errno_text("spool write failed")};
  if (_opts.fsync && ::fdatasync(_fd) != 0) return {errc::spool_error, errno_text("spool fdatasync failed")};
  _segments.back().bytes += record.size();
  return {};
}

result<void> spool::append_put(uint64_t seq, std::string_view id, std::string_view item) {
  std::lock_guard lock(_mutex);
  if (!_segments.empty() && _segments.back().bytes >= _opts.segment_bytes) {
    if (auto r = roll(); !r) return r;
  }
  if (auto r = write_record(encode_put(seq, id, item)); !r) return r;
  ++_segments.back().live;
  _seq_segment[seq] = _segments.back().number;
  if (seq >= _next_seq) _next_seq = seq + 1;
  return {};
}

result<void> spool::append_done(const std::vector<uint64_t>& seqs) {
  if (seqs.empty()) return {};
  std::lock_guard lock(_mutex);
  if (auto r = write_record(encode_done(seqs)); !r) return r;
  for (uint64_t seq : seqs) {
    auto it = _seq_segment.find(seq);
    if (it == _seq_segment.end()) continue;
    for (auto& s : _segments) {
      if (s.number == it->second) {
        if (s.live > 0) --s.live;
        break;
      }
    }
    _seq_segment.erase(it);
  }
  collect();
  return {};
}

void spool::collect() {
  // Oldest first, never the active segment.
  while (_segments.size() > 1 && _segments.front().live == 0) {
    std::error_code ec;
    fs::remove(_segments.front().path, ec);
    _segments.erase(_segments.begin());
  }
  // The active segment is full of done events only: start afresh rather than grow it.
  if (_segments.size() == 1 && _segments.front().live == 0 && _segments.front().bytes >= _opts.segment_bytes) {
    std::string old = _segments.front().path;
    if (roll()) {
      std::error_code ec;
      fs::remove(old, ec);
      _segments.erase(_segments.begin());
    }
  }
}

size_t spool::segment_count() const {
  std::lock_guard lock(_mutex);
  return _segments.size();
}

size_t spool::live_count() const {
  std::lock_guard lock(_mutex);
  return _seq_segment.size();
}

}  // namespace ferry::client::detail
