// Tests for what storage/log.h promises when things go wrong: a process killed mid-stream
// (sync none), records damaged on disk, injected write failures (no space, I/O error) and
// recovery from them, and read-only secondaries following a live primary.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include "storage/keys.h"
#include "support.h"

using namespace ferry::storage;
using namespace ferry::storage::test;
using namespace std::string_literals;

namespace {

bool write_u64(int fd, uint64_t v) {
  return ::write(fd, &v, sizeof v) == static_cast<ssize_t>(sizeof v);  // < PIPE_BUF: atomic
}

// Child side of the crash test: appends one event at a time, waiting for each
// completion, and reports the acknowledged count after each. Never returns.
[[noreturn]] void crash_child(const std::string& dir, int fd) {
  quiet_logs();
  auto opened = ferry::storage::log::open(dir, {});  // sync none
  if (!opened.ok()) ::_exit(2);
  auto l = std::move(opened).value();
  auto ns = l->namespace_id("/");
  if (!ns.ok()) ::_exit(3);
  if (!write_u64(fd, l->epoch())) ::_exit(4);
  for (uint64_t i = 1; i < 10'000'000; ++i) {
    auto r = append_one(*l, *ns, "t", std::to_string(i), "crash-" + std::to_string(i));
    if (r.status != errc::ok || r.events.size() != 1 || r.events[0].duplicate) ::_exit(5);
    if (!write_u64(fd, i)) ::_exit(6);
  }
  ::pause();
  ::_exit(7);
}

// Opens the data directory with the plain RocksDB API (every column family) and
// overwrites `key` in column family `cf_name` with `value`.
void overwrite_raw(const std::string& dir, const std::string& cf_name, const std::string& key,
                   const std::string& value) {
  rocksdb::DBOptions dbo;
  std::vector<std::string> names;
  REQUIRE(rocksdb::DB::ListColumnFamilies(dbo, dir, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const auto& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::Open(dbo, dir, cfs, &handles, &raw);
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::ColumnFamilyHandle* target = nullptr;
  for (auto* h : handles)
    if (h->GetName() == cf_name) target = h;
  REQUIRE(target != nullptr);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  CHECK(db->Put(wo, target, key, value).ok());
  for (auto* h : handles) CHECK(db->DestroyColumnFamilyHandle(h).ok());
  CHECK(db->Close().ok());
}

const std::string garbage = "\xff\xff\xff\xff not a flatbuffer \x01\x02"s;

}  // namespace

TEST_CASE("after SIGKILL mid-stream every acknowledged event is present exactly once (sync none)") {
  temp_dir tmp;
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(fds[0]);
    crash_child(tmp.data(), fds[1]);
  }
  ::close(fds[1]);

  // Read the child's reports; kill it while it is still appending.
  std::string buf;
  uint64_t epoch = 0, acked = 0;
  bool have_epoch = false, killed = false;
  char chunk[4096];
  for (;;) {
    ssize_t n = ::read(fds[0], chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buf.append(chunk, static_cast<size_t>(n));
    while (buf.size() >= 8) {
      uint64_t v;
      std::memcpy(&v, buf.data(), 8);
      buf.erase(0, 8);
      if (!have_epoch) {
        epoch = v;
        have_epoch = true;
      } else {
        acked = v;
      }
    }
    if (!killed && acked >= 500) {
      REQUIRE(::kill(child, SIGKILL) == 0);
      killed = true;  // keep draining: reports written before the kill still count
    }
  }
  ::close(fds[0]);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE_MESSAGE(killed, "child exited early with status ", status);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
  REQUIRE(have_epoch);
  MESSAGE("acknowledged before SIGKILL: ", acked);

  auto l = open_log(tmp.data());
  CHECK(l->epoch() == epoch);
  auto ns = l->find_namespace("/");
  REQUIRE(ns);
  CHECK(l->head(*ns) >= acked);
  auto t = l->find_topic(*ns, "t");
  REQUIRE(t);
  auto events = read_all(*l, *ns, *t);
  CHECK(events.size() == l->head(*ns));
  std::map<uint64_t, int> copies;
  uint64_t expected_seq = 1;
  for (const auto& e : events) {
    CHECK(e.seq == expected_seq++);  // no gaps, no repeats
    uint64_t i = std::stoull(e.event()->data()->str());
    ++copies[i];
    CHECK(e.event()->id()->str() == "crash-" + std::to_string(i));
  }
  int missing_or_repeated = 0;
  for (uint64_t i = 1; i <= acked; ++i) missing_or_repeated += copies[i] != 1;
  CHECK(missing_or_repeated == 0);
  CHECK(l->topic(*ns, *t)->count == events.size());

  // The dedupe entries came back too: resending an acknowledged event is a duplicate.
  auto again = append_one(*l, *ns, "t", "1", "crash-1");
  REQUIRE(again.status == errc::ok);
  CHECK(again.events[0].duplicate);
  CHECK(again.events[0].seq == 1);
}

TEST_CASE("a damaged event record reads as corruption without a crash; other topics stay readable") {
  temp_dir tmp;
  uint32_t ns = 0, a = 0, b = 0;
  {
    auto l = open_log(tmp.data());
    ns = make_namespace(*l, "/");
    for (int i = 1; i <= 6; ++i) REQUIRE(append_one(*l, ns, i % 2 ? "a" : "b", std::to_string(i)).status == errc::ok);
    a = *l->find_topic(ns, "a");  // seqs 1, 3, 5
    b = *l->find_topic(ns, "b");  // seqs 2, 4, 6
  }
  overwrite_raw(tmp.data(), "events", keys::event(ns, a, 3), garbage);

  // Opening still works. The damaged chunk is newer than the last persisted topic stats
  // (they are written once per checkpoint interval), so open already met it once.
  auto l = open_log(tmp.data());
  uint64_t at_open = l->stats().corrupt_records;
  CHECK(at_open <= 1);
  std::vector<stored_event> out;
  CHECK(l->read(ns, a, 0, SIZE_MAX, SIZE_MAX, out) == errc::corruption);
  REQUIRE(out.size() == 1);  // what came before the damaged record
  CHECK(out[0].seq == 1);
  CHECK(l->stats().corrupt_records == at_open + 1);

  auto g = l->get(ns, a, 3);
  REQUIRE_FALSE(g.ok());
  CHECK(g.error() == errc::corruption);
  CHECK(l->stats().corrupt_records == at_open + 2);

  // A read that might need the damaged chunk (events after 3 could be in the chunk that
  // starts at 3) reports it; past the next chunk's start, and in another topic, reads work.
  out.clear();
  CHECK(l->read(ns, a, 3, SIZE_MAX, SIZE_MAX, out) == errc::corruption);
  out.clear();
  CHECK(l->read(ns, a, 4, SIZE_MAX, SIZE_MAX, out) == errc::ok);
  REQUIRE(out.size() == 1);
  CHECK(out[0].seq == 5);
  CHECK(l->get(ns, a, 1).ok());
  auto bs = read_all(*l, ns, b);
  REQUIRE(bs.size() == 3);
  CHECK(bs[2].event()->data()->str() == "6");

  // And the log still takes writes.
  CHECK(append_one(*l, ns, "a", "7").status == errc::ok);
  CHECK(l->health() == errc::ok);
}

TEST_CASE("a truncated event record is caught by verification too") {
  temp_dir tmp;
  uint32_t ns = 0, t = 0;
  std::string record;
  {
    auto l = open_log(tmp.data());
    ns = make_namespace(*l, "/");
    REQUIRE(append_one(*l, ns, "t", "{\"long\":\"enough to matter\"}").status == errc::ok);
    t = *l->find_topic(ns, "t");
    record = *l->get(ns, t, 1)->chunk;  // the chunk record holding event 1 (key: its first seq)
  }
  overwrite_raw(tmp.data(), "events", keys::event(ns, t, 1), record.substr(0, record.size() / 2));
  auto l = open_log(tmp.data());
  CHECK(l->get(ns, t, 1).error() == errc::corruption);
}

TEST_CASE("damaged session and position records read as corruption") {
  temp_dir tmp;
  uint32_t ns = 0;
  {
    auto l = open_log(tmp.data());
    ns = make_namespace(*l, "/");
    session_record s;
    s.pid = "p";
    s.expires_ms = wall_ms() + 3600 * 1000;
    l->put_session(s);
    l->put_position(ns, "good", 1, 5);
    l->put_position(ns, "bad", 1, 6);
  }
  overwrite_raw(tmp.data(), "sessions", "p", garbage);
  overwrite_raw(tmp.data(), "positions", keys::position(ns, "bad", 1), garbage);
  auto l = open_log(tmp.data());
  CHECK(l->get_session("p").error() == errc::corruption);
  CHECK(l->get_position(ns, "bad", 1).error() == errc::corruption);
  CHECK(*l->get_position(ns, "good", 1) == 5);
  auto ps = l->positions(ns);  // the damaged one is skipped (and counted)
  REQUIRE(ps.size() == 1);
  CHECK(ps[0].consumer == "good");
  CHECK(l->stats().corrupt_records == 3);
}

TEST_CASE("a damaged topic record makes open fail with corruption instead of crashing") {
  temp_dir tmp;
  uint32_t ns = 0;
  {
    auto l = open_log(tmp.data());
    ns = make_namespace(*l, "/");
    REQUIRE(append_one(*l, ns, "t").status == errc::ok);
  }
  overwrite_raw(tmp.data(), "meta", keys::meta_topic(ns, 1), garbage);
  quiet_logs();
  auto r = ferry::storage::log::open(tmp.data(), {});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error() == errc::corruption);
}

TEST_CASE("injected write faults fail appends with no_space / io_error, reads go on, and writes recover") {
  temp_dir tmp;
  options opts;
  opts.faults = std::make_shared<fault_injector>();
  auto faults = opts.faults;
  auto l = open_log(tmp.data(), opts);
  uint32_t ns = make_namespace(*l, "/");
  for (int i = 1; i <= 5; ++i) REQUIRE(append_one(*l, ns, "t", std::to_string(i)).status == errc::ok);
  session_record s;
  s.pid = "p";
  s.expires_ms = wall_ms() + 3600 * 1000;
  REQUIRE(wait_write([&](write_callback cb) { l->put_session(s, std::move(cb)); }) == errc::ok);
  CHECK(l->health() == errc::ok);
  uint32_t t = *l->find_topic(ns, "t");
  int appended = 5;

  // Retries after the fault clears, as a client would. The writer calls DB::Resume at
  // most every 100 ms (for no_space it gets Busy until RocksDB's SstFileManager, polling
  // the free space every 5 s, has resumed). Retrying every 20 ms, faster than that
  // interval, must not hold the recovery off.
  auto append_until_ok = [&](int i) {
    auto start = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - start < std::chrono::seconds(15)) {
      auto r = append_one(*l, ns, "t", std::to_string(i));
      if (r.status == errc::ok) {
        MESSAGE("writes recovered after ",
                std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count(),
                " ms");
        return true;
      }
      sleep_ms(20);
    }
    return false;
  };

  for (auto [kind, code] : {std::pair{fault_injector::kind::no_space, errc::no_space},
                            std::pair{fault_injector::kind::io_error, errc::io_error}}) {
    CAPTURE(to_string(code));
    uint64_t errors_before = l->stats().write_errors;
    faults->fail_writes(kind);
    auto r = append_one(*l, ns, "t", "lost");
    CHECK(r.status == code);
    CHECK(r.events.empty());
    CHECK(l->health() == code);
    CHECK(l->stats().write_errors > errors_before);
    // Still failing while the fault is on; other writes too.
    CHECK(append_one(*l, ns, "t", "lost").status == code);
    CHECK(wait_write([&](write_callback cb) { l->put_position(ns, "c", t, 1, std::move(cb)); }) == code);
    CHECK(l->flush() == code);
    CHECK(l->head(ns) == static_cast<uint64_t>(appended));

    // Reads of what was acknowledged before still work.
    auto before = read_all(*l, ns, t);
    REQUIRE(before.size() == static_cast<size_t>(appended));
    CHECK(before[0].event()->data()->str() == "1");
    CHECK(l->get(ns, t, 5).ok());
    CHECK(l->get_session("p").ok());

    faults->clear();
    ++appended;
    REQUIRE(append_until_ok(appended));
    CHECK(l->health() == errc::ok);
    CHECK(l->flush() == errc::ok);
  }

  auto after = read_all(*l, ns, t);
  REQUIRE(after.size() == static_cast<size_t>(appended));
  for (size_t i = 0; i < after.size(); ++i) {
    CHECK(after[i].seq == i + 1);  // failed appends used no seqs
    CHECK(after[i].event()->data()->str() == std::to_string(i + 1));
  }
  CHECK(l->head(ns) == static_cast<uint64_t>(appended));
  CHECK(l->topic(ns, t)->count == static_cast<uint64_t>(appended));

  // Everything acknowledged is still there after a reopen.
  l.reset();
  auto again = open_log(tmp.data());
  CHECK(again->head(ns) == static_cast<uint64_t>(appended));
  CHECK(read_all(*again, ns, t).size() == static_cast<size_t>(appended));
  CHECK(again->get_session("p").ok());
}

TEST_CASE("probe lets a failed log recover without new writes, and is a no-op when healthy") {
  temp_dir tmp;
  options opts;
  opts.faults = std::make_shared<fault_injector>();
  auto l = open_log(tmp.data(), opts);
  uint32_t ns = make_namespace(*l, "/");
  REQUIRE(append_one(*l, ns, "t", "1").status == errc::ok);
  uint64_t commits = l->stats().group_commits;
  l->probe();
  REQUIRE(l->flush() == errc::ok);
  CHECK(l->stats().group_commits == commits);  // nothing was written

  opts.faults->fail_writes(fault_injector::kind::io_error);
  REQUIRE(append_one(*l, ns, "t", "lost").status == errc::io_error);
  opts.faults->clear();
  auto start = std::chrono::steady_clock::now();
  while (l->health() != errc::ok && std::chrono::steady_clock::now() - start < std::chrono::seconds(10)) {
    l->probe();
    sleep_ms(20);
  }
  CHECK(l->health() == errc::ok);
  CHECK(append_one(*l, ns, "t", "2").status == errc::ok);
  CHECK(read_all(*l, ns, 1).size() == 2);
}

namespace {

// Destroys the log on another thread; a close that hangs ends the test binary instead of
// the whole suite waiting for meson's timeout.
void close_within(std::unique_ptr<ferry::storage::log> l, std::chrono::seconds limit) {
  auto done = std::make_shared<std::promise<void>>();
  auto f = done->get_future();
  std::thread([l = std::move(l), done]() mutable {
    l.reset();
    done->set_value();
  }).detach();
  if (f.wait_for(limit) != std::future_status::ready) {
    std::fprintf(stderr, "FATAL: closing the log took more than %lld s (hang)\n",
                 static_cast<long long>(limit.count()));
    std::_Exit(1);
  }
}

}  // namespace

TEST_CASE("closing the log while a write fault is on, or just after it cleared, does not hang") {
  for (auto kind : {fault_injector::kind::io_error, fault_injector::kind::no_space}) {
    for (bool clear_first : {false, true}) {
      CAPTURE(static_cast<int>(kind));
      CAPTURE(clear_first);
      temp_dir tmp;
      options opts;
      opts.faults = std::make_shared<fault_injector>();
      auto l = open_log(tmp.data(), opts);
      uint32_t ns = make_namespace(*l, "/");
      REQUIRE(append_one(*l, ns, "t", "kept").status == errc::ok);
      opts.faults->fail_writes(kind);
      CHECK(append_one(*l, ns, "t", "refused").status != errc::ok);
      if (clear_first) opts.faults->clear();
      close_within(std::move(l), std::chrono::seconds(20));
      opts.faults->clear();

      auto again = open_log(tmp.data());
      auto events = read_all(*again, ns, 1);
      REQUIRE(events.size() == 1);
      CHECK(events[0].event()->data()->str() == "kept");
    }
  }
}

TEST_CASE("a read-only secondary sees the primary's events and catches up on refresh") {
  temp_dir tmp;
  auto primary = open_log(tmp.data());
  uint32_t ns = make_namespace(*primary, "/");
  for (int i = 1; i <= 3; ++i) REQUIRE(append_one(*primary, ns, "a", std::to_string(i)).status == errc::ok);
  uint32_t a = *primary->find_topic(ns, "a");

  options ro;
  ro.read_only = true;
  auto secondary = open_log(tmp.data(), ro);
  CHECK(secondary->read_only());
  CHECK(secondary->epoch() == primary->epoch());
  CHECK(secondary->find_namespace("/") == ns);
  CHECK(secondary->head(ns) == 3);
  CHECK(read_all(*secondary, ns, a).size() == 3);

  for (int i = 4; i <= 5; ++i) REQUIRE(append_one(*primary, ns, "a", std::to_string(i)).status == errc::ok);
  REQUIRE(append_one(*primary, ns, "b", "new topic").status == errc::ok);
  primary->put_position(ns, "c", a, 4);
  session_record s;
  s.pid = "p";
  s.expires_ms = wall_ms() + 3600 * 1000;
  primary->put_session(s);
  REQUIRE(primary->flush() == errc::ok);

  // Not visible until refresh.
  CHECK(secondary->head(ns) == 3);
  CHECK(read_all(*secondary, ns, a).size() == 3);
  CHECK_FALSE(secondary->find_topic(ns, "b"));

  REQUIRE(secondary->refresh() == errc::ok);
  CHECK(secondary->head(ns) == 6);
  auto events = read_all(*secondary, ns, a);
  REQUIRE(events.size() == 5);
  CHECK(events[4].event()->data()->str() == "5");
  auto b = secondary->find_topic(ns, "b");
  REQUIRE(b);
  CHECK(read_all(*secondary, ns, *b).size() == 1);
  CHECK(*secondary->get_position(ns, "c", a) == 4);
  CHECK(secondary->get_session("p").ok());
  CHECK(primary->refresh() == errc::ok);  // a no-op on the primary
}

TEST_CASE("a read-only log refuses every write with read_only") {
  temp_dir tmp;
  {
    auto primary = open_log(tmp.data());
    REQUIRE(append_one(*primary, make_namespace(*primary, "/"), "a").status == errc::ok);
  }
  options ro;
  ro.read_only = true;
  auto l = open_log(tmp.data(), ro);
  uint32_t ns = *l->find_namespace("/");
  auto r = append_one(*l, ns, "a");
  CHECK(r.status == errc::read_only);
  CHECK(r.events.empty());
  CHECK(wait_write([&](write_callback cb) { l->put_session(session_record{}, std::move(cb)); }) == errc::read_only);
  CHECK(wait_write([&](write_callback cb) { l->delete_session("x", std::move(cb)); }) == errc::read_only);
  CHECK(wait_write([&](write_callback cb) { l->put_position(ns, "c", 1, 1, std::move(cb)); }) == errc::read_only);
  CHECK(wait_write([&](write_callback cb) { l->enforce_retention(ns, std::move(cb)); }) == errc::read_only);
  CHECK(l->flush() == errc::ok);
  auto created = l->namespace_id("/new");
  REQUIRE_FALSE(created.ok());
  CHECK(created.error() == errc::not_found);
  CHECK(*l->namespace_id("/") == ns);
  CHECK(l->head(ns) == 1);
}

TEST_CASE("opening read-only where there is no database is not_found") {
  temp_dir tmp;
  options ro;
  ro.read_only = true;
  quiet_logs();
  auto missing = ferry::storage::log::open(tmp.path() + "/missing", ro);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error() == errc::not_found);
  auto empty = ferry::storage::log::open(tmp.path(), ro);  // exists, but holds no database
  REQUIRE_FALSE(empty.ok());
  CHECK(empty.error() == errc::not_found);
  CHECK_FALSE(std::filesystem::exists(tmp.path() + "/missing"));  // nothing was created
}
