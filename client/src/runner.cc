#include "ferry/client/runner.h"

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

namespace ferry::client {
namespace detail {

// Shared by the runner, its thread and every client object built on it, so that the
// io_context outlives all of them whatever the destruction order.
struct runner_state {
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{io.get_executor()};
  std::thread thread;
  std::thread::id thread_id;
  std::mutex stop_mutex;  // serialises stop() calls
  std::mutex mutex;
  std::condition_variable finished_cv;
  bool finished = false;
  std::atomic<bool> running{true};
};

}  // namespace detail

runner::runner() : _state(std::make_shared<detail::runner_state>()) {
  // The thread holds its own reference: if it has to be detached, nothing dangles.
  _state->thread = std::thread([st = _state] {
    for (;;) {
      try {
        st->io.run();
        break;
      } catch (...) {  // NOLINT(bugprone-empty-catch): an application callback threw; keep running
        if (!st->running.load()) break;
      }
    }
    std::lock_guard lock(st->mutex);
    st->finished = true;
    st->finished_cv.notify_all();
  });
  _state->thread_id = _state->thread.get_id();
}

runner::~runner() {
  (void)stop();
}

asio::io_context& runner::io() noexcept {
  return _state->io;
}

bool runner::running() const noexcept {
  return _state->running.load();
}

std::shared_ptr<void> runner::keepalive() const noexcept {
  return _state;
}

bool runner::stop(std::chrono::milliseconds join_timeout) {
  auto& st = *_state;
  std::lock_guard stop_lock(st.stop_mutex);
  st.running.store(false);
  st.work.reset();
  st.io.stop();
  if (!st.thread.joinable()) return true;
  if (std::this_thread::get_id() == st.thread_id) {
    st.thread.detach();  // cannot join ourselves; the thread ends when this handler returns
    return false;
  }
  std::unique_lock lock(st.mutex);
  bool done = st.finished_cv.wait_for(lock, join_timeout, [&] { return st.finished; });
  lock.unlock();
  if (done) {
    st.thread.join();
    return true;
  }
  st.thread.detach();  // a callback is blocking; the thread finishes on its own later
  return false;
}

}  // namespace ferry::client
