// Unit tests: the producer spool - write/read round trip, done records, compaction,
// segment rolling and deletion, torn tails (ignored), CRC failures (reported), the lock.
#include <doctest/doctest.h>

#include <fstream>
#include <iterator>

#include "client/src/spool.h"
#include "support.h"

using namespace ferry::client;
using namespace ferry::client::detail;
using ferry::test::temp_dir;
namespace fs = std::filesystem;

namespace {

std::vector<fs::path> segments(const fs::path& dir, const std::string& suffix = ".log") {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string n = e.path().filename().string();
    if (n.rfind("spool-", 0) == 0 && n.size() >= suffix.size() &&
        n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0)
      out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const fs::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << data;
}

std::unique_ptr<spool> open_ok(const spool_options& o, std::vector<spooled_event>& live, spool_report& rep) {
  auto s = spool::open(o, live, rep);
  REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.err().what()));
  return std::move(*s);
}

}  // namespace

TEST_SUITE("unit") {
  TEST_CASE("spool records are length-prefixed with a zlib CRC-32") {
    CHECK(spool_crc("123456789") == 0xCBF43926u);  // the CRC-32 check value
    std::string r = spool::encode_put(7, "id", "{}");
    REQUIRE(r.size() == 8 + 1 + 8 + 4 + 2 + 2);
    CHECK(static_cast<unsigned char>(r[0]) == r.size() - 8);
    CHECK(r[8] == 1);
  }

  TEST_CASE("spool recovers unacknowledged events in order after a restart") {
    temp_dir dir;
    spool_options o{dir.str(), false, 1 << 20, false};
    std::vector<spooled_event> live;
    spool_report rep;
    {
      auto s = open_ok(o, live, rep);
      CHECK(live.empty());
      CHECK(s->next_seq() == 1);
      for (uint64_t i = 1; i <= 5; ++i)
        REQUIRE(s->append_put(i, "id-" + std::to_string(i), "item" + std::to_string(i)).ok());
      REQUIRE(s->append_done({2, 4}).ok());
      CHECK(s->live_count() == 3);
    }
    auto s = open_ok(o, live, rep);
    REQUIRE(live.size() == 3);
    CHECK(live[0].seq == 1);
    CHECK(live[0].id == "id-1");
    CHECK(live[0].item == "item1");
    CHECK(live[1].seq == 3);
    CHECK(live[2].seq == 5);
    CHECK(s->next_seq() == 6);
    CHECK(rep.live == 3);
    CHECK(rep.corrupt_records == 0);
    CHECK(rep.torn_bytes == 0);
  }

  TEST_CASE("spool open compacts: only live events survive, in one fresh segment") {
    temp_dir dir;
    spool_options o{dir.str(), false, 1 << 20, false};
    std::vector<spooled_event> live;
    spool_report rep;
    {
      auto s = open_ok(o, live, rep);
      for (uint64_t i = 1; i <= 100; ++i) REQUIRE(s->append_put(i, "id", std::string(100, 'x')).ok());
      std::vector<uint64_t> done;
      for (uint64_t i = 1; i <= 99; ++i) done.push_back(i);
      REQUIRE(s->append_done(done).ok());
    }
    auto before = fs::file_size(segments(dir.path()).back());
    auto s = open_ok(o, live, rep);
    REQUIRE(live.size() == 1);
    CHECK(live[0].seq == 100);
    auto segs = segments(dir.path());
    REQUIRE(segs.size() == 1);
    CHECK(fs::file_size(segs[0]) < before / 10);
  }

  TEST_CASE("spool rolls segments and deletes the oldest once all its events are done") {
    temp_dir dir;
    spool_options o{dir.str(), false, 1000, false};
    std::vector<spooled_event> live;
    spool_report rep;
    auto s = open_ok(o, live, rep);
    for (uint64_t i = 1; i <= 30; ++i) REQUIRE(s->append_put(i, "id", std::string(200, 'x')).ok());
    CHECK(s->segment_count() >= 5);
    // Done out of order: the newer segments stay until the oldest is done (its done
    // records must not be deleted before the puts they cancel).
    std::vector<uint64_t> late;
    for (uint64_t i = 10; i <= 30; ++i) late.push_back(i);
    REQUIRE(s->append_done(late).ok());
    size_t mid = s->segment_count();
    CHECK(mid >= 3);
    REQUIRE(s->append_done({1, 2, 3, 4, 5, 6, 7, 8, 9}).ok());
    CHECK(s->segment_count() == 1);
    CHECK(s->live_count() == 0);
    CHECK(segments(dir.path()).size() == 1);
    s.reset();
    auto again = open_ok(o, live, rep);
    CHECK(live.empty());
  }

  TEST_CASE("spool ignores a torn last record (crash mid-write)") {
    temp_dir dir;
    spool_options o{dir.str(), false, 1 << 20, false};
    std::vector<spooled_event> live;
    spool_report rep;
    {
      auto s = open_ok(o, live, rep);
      REQUIRE(s->append_put(1, "a", "item-a").ok());
      REQUIRE(s->append_put(2, "b", "item-b").ok());
    }
    auto seg = segments(dir.path()).back();
    std::string data = read_file(seg);
    std::string cut = data.substr(0, data.size() - 3);  // the second record loses its tail
    write_file(seg, cut);
    auto s = open_ok(o, live, rep);
    REQUIRE(live.size() == 1);
    CHECK(live[0].id == "a");
    CHECK(rep.torn_bytes > 0);
    CHECK(rep.corrupt_records == 0);
    CHECK_FALSE(rep.problems.empty());

    // A header cut short is torn too.
    s.reset();
    seg = segments(dir.path()).back();
    data = read_file(seg);
    write_file(seg, data + std::string("\x05\x00", 2));
    auto s2 = open_ok(o, live, rep);
    CHECK(live.size() == 1);
    CHECK(rep.torn_bytes == 2);
  }

  TEST_CASE("spool reports a record with a bad CRC in the middle of a segment") {
    temp_dir dir;
    spool_options o{dir.str(), false, 1 << 20, false};
    std::vector<spooled_event> live;
    spool_report rep;
    {
      auto s = open_ok(o, live, rep);
      for (uint64_t i = 1; i <= 3; ++i) REQUIRE(s->append_put(i, "id" + std::to_string(i), "payload").ok());
    }
    auto seg = segments(dir.path()).back();
    std::string data = read_file(seg);
    size_t first = spool::encode_put(1, "id1", "payload").size();
    data[first + 12] ^= 0x40;  // a bit flip inside the second record's payload
    write_file(seg, data);

    auto strict = spool::open(o, live, rep);
    REQUIRE_FALSE(strict.ok());
    CHECK(strict.code() == errc::spool_corrupt);
    CHECK(strict.err().message.find("CRC") != std::string::npos);
    CHECK(rep.corrupt_records == 1);

    o.skip_corrupt = true;
    auto lenient = open_ok(o, live, rep);
    CHECK(rep.corrupt_records == 1);
    REQUIRE(live.size() == 2);
    CHECK(live[0].id == "id1");
    CHECK(live[1].id == "id3");
    CHECK(segments(dir.path(), ".corrupt").size() == 1);  // kept for inspection
  }

  TEST_CASE("spool directory is locked against a second producer") {
    temp_dir dir;
    spool_options o{dir.str(), false, 1 << 20, false};
    std::vector<spooled_event> live;
    spool_report rep;
    auto first = open_ok(o, live, rep);
    auto second = spool::open(o, live, rep);
    REQUIRE_FALSE(second.ok());
    CHECK(second.code() == errc::spool_error);
    CHECK(second.err().message.find("in use") != std::string::npos);
    first.reset();
    CHECK(spool::open(o, live, rep).ok());
  }

  TEST_CASE("spool open fails clearly for an unusable directory") {
    temp_dir dir;
    auto file = dir.path() / "plain-file";
    write_file(file, "x");
    std::vector<spooled_event> live;
    spool_report rep;
    auto r = spool::open({(file / "sub").string(), false, 1 << 20, false}, live, rep);
    REQUIRE_FALSE(r.ok());
    CHECK(r.code() == errc::spool_error);
  }

}  // TEST_SUITE
