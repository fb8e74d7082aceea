// runner.h - the convenience runner: an io_context plus the one thread that runs it,
// for applications that do not have an event loop of their own.
//
// The library itself owns no threads. Every client object (sio::client, producer,
// consumer) runs on an asio::io_context that the host provides and runs; a `runner` is
// the shortest way to provide one:
//
//   ferry::client::runner r;                    // starts its thread
//   ferry::client::producer p(r, options);      // keeps r's io_context alive
//   p.publish({.topic = "t", .data = "1"}).get();
//
// Contract:
//  * The constructor starts exactly one thread that runs the io_context until stop().
//  * stop() stops the io_context (the handler running at that moment finishes, nothing
//    after it runs) and joins the thread, waiting at most `join_timeout`. Library
//    handlers never block, so the join is immediate unless an application callback is
//    blocking; after the timeout the thread is detached and finishes on its own (it
//    holds its own reference to the io_context, so nothing dangles). stop() returns
//    true if the thread was joined.
//  * Called on the runner's own thread (from inside a callback), stop() cannot join
//    itself: it stops the io_context, detaches the thread and returns false.
//  * The destructor calls stop() with the default timeout: it never blocks longer than
//    that, and never forever.
//  * Handlers that have not run when the io_context stops are dropped, not run: pending
//    callbacks are not invoked after stop(). For a graceful end, flush()/close() the
//    clients and wait for their futures before stopping the runner.
//  * Client objects built on the runner keep its io_context alive, so destroying the
//    runner before them is safe (their later calls simply have no thread to run on).
#pragma once

#include <chrono>
#include <memory>

#include "ferry/client/export.h"

namespace asio {
class io_context;
}

namespace ferry::client {

namespace detail {
struct runner_state;
}

class FERRY_CLIENT_API runner {
 public:
  // Default bound on how long stop() (and the destructor) waits for the thread.
  static constexpr std::chrono::milliseconds default_join_timeout{5000};

  runner();
  ~runner();
  runner(const runner&) = delete;
  runner& operator=(const runner&) = delete;

  // The io_context the thread runs. Valid for the runner's lifetime (longer, for client
  // objects built on it).
  [[nodiscard]] asio::io_context& io() noexcept;

  // Stops the io_context and joins the thread (see the contract above). Idempotent.
  bool stop(std::chrono::milliseconds join_timeout = default_join_timeout);

  // True until stop() is called.
  [[nodiscard]] bool running() const noexcept;

  // Shared ownership of the io_context, for objects that must keep it alive.
  [[nodiscard]] std::shared_ptr<void> keepalive() const noexcept;

 private:
  std::shared_ptr<detail::runner_state> _state;
};

}  // namespace ferry::client
