// support.h - helpers shared by the storage unit tests: a temporary data directory per
// test, blocking wrappers around the asynchronous writes, and event builders.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "storage/log.h"
#include "storage/logging.h"

namespace ferry::storage::test {

// A fresh directory under /tmp, removed (with everything in it) when the test ends
// (kept when FERRY_TEST_KEEP_TMP is set).
class temp_dir {
 public:
  temp_dir() {
    std::string tmpl = "/tmp/ferry-storage-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    _path = tmpl;
  }
  ~temp_dir() {
    if (std::getenv("FERRY_TEST_KEEP_TMP")) return;  // debugging: look at the RocksDB LOG
    std::error_code ec;
    std::filesystem::remove_all(_path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  [[nodiscard]] const std::string& path() const noexcept { return _path; }
  // The log's data directory: a not-yet-existing child, so open() has to create it.
  [[nodiscard]] std::string data() const { return _path + "/data"; }

 private:
  std::string _path;
};

// Storage logs "created data directory" and friends at info; tests only want errors.
inline void quiet_logs() {
  ferry::log::set_level(ferry::log::level::error);
}

inline std::unique_ptr<log> open_log(const std::string& dir, options opts = {}) {
  quiet_logs();
  auto r = log::open(dir, std::move(opts));
  REQUIRE_MESSAGE(r.ok(), "open failed: ", to_string(r.error()));
  return std::move(r).value();
}

inline uint32_t make_namespace(log& l, std::string_view name) {
  auto r = l.namespace_id(name);
  REQUIRE(r.ok());
  return *r;
}

inline event_input make_event(std::string topic, std::string data = "{}", std::string id = {}) {
  event_input e;
  e.topic = std::move(topic);
  e.event = "message";
  e.id = std::move(id);
  e.data = std::move(data);
  return e;
}

// Appends and waits for the completion; the callback must run exactly once.
inline append_result append_sync(log& l, uint32_t ns, std::vector<event_input> events) {
  auto done = std::make_shared<std::promise<append_result>>();
  auto f = done->get_future();
  l.append(ns, std::move(events), [done](append_result& r, std::vector<event_input>&) { done->set_value(r); });
  return f.get();
}

inline append_result append_one(log& l, uint32_t ns, std::string topic, std::string data = "{}", std::string id = {}) {
  std::vector<event_input> v;
  v.push_back(make_event(std::move(topic), std::move(data), std::move(id)));
  return append_sync(l, ns, std::move(v));
}

// Runs an asynchronous write that reports an errc and waits for it.
template <class Start>
errc wait_write(Start&& start) {
  auto done = std::make_shared<std::promise<errc>>();
  auto f = done->get_future();
  start([done](errc e) { done->set_value(e); });
  return f.get();
}

inline std::vector<stored_event> read_all(const log& l, uint32_t ns, uint32_t topic, uint64_t after = 0) {
  std::vector<stored_event> out;
  errc e = l.read(ns, topic, after, SIZE_MAX, SIZE_MAX, out);
  REQUIRE(e == errc::ok);
  return out;
}

inline int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline void sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

}  // namespace ferry::storage::test

namespace doctest {
template <>
struct StringMaker<ferry::storage::errc> {
  static String convert(ferry::storage::errc e) {
    auto s = ferry::storage::to_string(e);
    return String(s.data(), static_cast<String::size_type>(s.size()));
  }
};
}  // namespace doctest
