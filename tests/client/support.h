// support.h - helpers for the client tests: child processes (the broker, the Node
// Socket.IO server, the test producer), temporary directories, a blocking HTTP GET on
// 127.0.0.1, and polling with a deadline. Everything binds/connects to 127.0.0.1 only.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>

namespace ferry::test {

using namespace std::chrono_literals;

// The value of an environment variable the meson test definition sets; empty if unset.
inline std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// A fresh directory under $TMPDIR, removed (recursively) on destruction.
class temp_dir {
 public:
  explicit temp_dir(const std::string& tag = "ferry-client-test") {
    auto base = std::filesystem::temp_directory_path();
    std::random_device rd;
    for (int i = 0; i < 100; ++i) {
      auto p = base / (tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
      if (std::filesystem::create_directory(p)) {
        _path = p;
        return;
      }
    }
    throw std::runtime_error("cannot create a temporary directory");
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(_path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return _path; }
  [[nodiscard]] std::string str() const { return _path.string(); }

 private:
  std::filesystem::path _path;
};

// Polls `pred` every 10 ms until it is true or `timeout` passes.
inline bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

// Values a callback reports on another thread (errors from on_error, say), collected for
// checks on the test thread.
template <class T>
class collected {
 public:
  std::function<void(const T&)> sink() {
    return [this](const T& v) {
      std::lock_guard l(_m);
      _values.push_back(v);
    };
  }
  bool wait_any(std::chrono::milliseconds timeout = 10s) {
    return wait_until([this] { return !all().empty(); }, timeout);
  }
  std::vector<T> all() {
    std::lock_guard l(_m);
    return _values;
  }

 private:
  std::mutex _m;
  std::vector<T> _values;
};

// A child process with its stdout on a pipe. Killed (SIGKILL) and reaped on destruction.
class child_process {
 public:
  child_process() = default;
  child_process(const std::string& program, const std::vector<std::string>& args) { start(program, args); }
  ~child_process() { kill(SIGKILL); }
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  void start(const std::string& program, const std::vector<std::string>& args) {
    if (program.empty()) throw std::runtime_error("no program to start (is the test environment set?)");
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    std::vector<std::string> argv_s{program};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    // fork + exec rather than posix_spawn, for PR_SET_PDEATHSIG: a test that crashes
    // takes its broker / Node server with it instead of leaving them running.
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) {
      ::close(fds[0]);
      ::close(fds[1]);
      throw std::runtime_error("fork failed");
    }
    if (pid == 0) {  // only async-signal-safe calls until exec
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      ::dup2(fds[1], 1);
      ::execv(program.c_str(), argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    _pid = pid;
    _out = fds[0];
    _buffer.clear();
    _exited = false;
  }

  // Reads stdout until a line matches `re` (returns it) or the timeout passes / the
  // process exits (nullopt). Lines read on the way are kept in output().
  std::optional<std::smatch> wait_for_line(const std::regex& re, std::chrono::milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      size_t nl;
      while ((nl = _buffer.find('\n', _scan)) != std::string::npos) {
        _lines.push_back(_buffer.substr(_scan, nl - _scan));
        _scan = nl + 1;
        std::smatch m;
        if (std::regex_search(_lines.back(), m, re)) {
          _last_match_line = _lines.back();
          std::smatch again;
          std::regex_search(_last_match_line, again, re);
          return again;
        }
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || _out < 0) return std::nullopt;
      pollfd p{_out, POLLIN, 0};
      int r = ::poll(&p, 1, static_cast<int>(left.count()));
      if (r <= 0) continue;
      char buf[4096];
      ssize_t n = ::read(_out, buf, sizeof buf);
      if (n <= 0) {
        ::close(_out);
        _out = -1;
        return std::nullopt;
      }
      _buffer.append(buf, static_cast<size_t>(n));
    }
  }

  [[nodiscard]] const std::vector<std::string>& lines() const { return _lines; }
  [[nodiscard]] pid_t pid() const { return _pid; }
  [[nodiscard]] bool running() const { return _pid > 0 && !_exited; }

  void signal(int sig) {
    if (_pid > 0 && !_exited) ::kill(_pid, sig);
  }

  // Sends `sig` and reaps the process; returns the wait status.
  int kill(int sig) {
    if (_pid <= 0) return -1;
    if (!_exited) ::kill(_pid, sig);
    return wait();
  }

  // Waits for the process to exit (up to `timeout`, then SIGKILL). Returns the status.
  int wait(std::chrono::milliseconds timeout = 10s) {
    if (_pid <= 0) return -1;
    if (!_exited) {
      auto deadline = std::chrono::steady_clock::now() + timeout;
      for (;;) {
        pid_t r = ::waitpid(_pid, &_status, WNOHANG);
        if (r == _pid) break;
        if (std::chrono::steady_clock::now() > deadline) {
          ::kill(_pid, SIGKILL);
          ::waitpid(_pid, &_status, 0);
          break;
        }
        std::this_thread::sleep_for(5ms);
      }
      _exited = true;
    }
    if (_out >= 0) {
      // Drain what is left for lines().
      char buf[4096];
      int fl = ::fcntl(_out, F_GETFL);
      ::fcntl(_out, F_SETFL, fl | O_NONBLOCK);
      ssize_t n;
      while ((n = ::read(_out, buf, sizeof buf)) > 0) _buffer.append(buf, static_cast<size_t>(n));
      size_t nl;
      while ((nl = _buffer.find('\n', _scan)) != std::string::npos) {
        _lines.push_back(_buffer.substr(_scan, nl - _scan));
        _scan = nl + 1;
      }
      ::close(_out);
      _out = -1;
    }
    return _status;
  }

 private:
  pid_t _pid = -1;
  int _out = -1;
  int _status = 0;
  bool _exited = false;
  std::string _buffer;
  size_t _scan = 0;
  std::vector<std::string> _lines;
  std::string _last_match_line;
};

// The real broker on 127.0.0.1 with a temporary data directory. start() picks a port
// (0 = kernel's choice); restart() reuses the data directory and the port.
class broker_process {
 public:
  explicit broker_process(std::string extra_config = "") : _config(std::move(extra_config)) {}

  void start(uint16_t port = 0) {
    std::string bin = env("FERRY_BROKER");
    if (bin.empty()) throw std::runtime_error("FERRY_BROKER is not set (run through meson test)");
    std::vector<std::string> args{"--listen",    "127.0.0.1:" + std::to_string(port),
                                  "--data-dir",  (_dir.path() / "data").string(),
                                  "--log-level", "warn"};
    if (!_config.empty()) {
      auto cfg = _dir.path() / "ferry.toml";
      FILE* f = std::fopen(cfg.c_str(), "w");
      std::fputs(_config.c_str(), f);
      std::fclose(f);
      args.push_back("--config");
      args.push_back(cfg.string());
    }
    _proc = std::make_unique<child_process>(bin, args);
    auto m = _proc->wait_for_line(std::regex(R"(ferry-broker listening on 127\.0\.0\.1:(\d+))"), 15s);
    if (!m) throw std::runtime_error("ferry-broker did not report its port");
    _port = static_cast<uint16_t>(std::stoi((*m)[1].str()));
  }
  void restart() { start(_port); }
  void kill9() {
    if (_proc) _proc->kill(SIGKILL);
  }
  void stop() {
    if (_proc) _proc->kill(SIGTERM);
  }
  void pause() {
    if (_proc) _proc->signal(SIGSTOP);
  }
  void resume() {
    if (_proc) _proc->signal(SIGCONT);
  }
  ~broker_process() {
    resume();
    if (_proc) _proc->kill(SIGKILL);
  }

  [[nodiscard]] uint16_t port() const { return _port; }
  [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(_port); }

 private:
  std::string _config;
  temp_dir _dir{"ferry-broker"};
  std::unique_ptr<child_process> _proc;
  uint16_t _port = 0;
};

// A blocking HTTP/1.1 GET on 127.0.0.1:port; returns the body ("" on failure) and the
// status code.
inline std::string http_get(uint16_t port, const std::string& target, int* status = nullptr) {
  try {
    asio::io_context io;
    asio::ip::tcp::socket s(io);
    s.connect({asio::ip::make_address("127.0.0.1"), port});
    std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    asio::write(s, asio::buffer(req));
    std::string resp;
    asio::error_code ec;
    char buf[8192];
    for (;;) {
      size_t n = s.read_some(asio::buffer(buf), ec);
      resp.append(buf, n);
      if (ec) break;
    }
    auto sp = resp.find(' ');
    if (status && sp != std::string::npos) *status = std::atoi(resp.c_str() + sp + 1);
    auto body = resp.find("\r\n\r\n");
    return body == std::string::npos ? std::string() : resp.substr(body + 4);
  } catch (const std::exception&) {
    if (status) *status = 0;
    return {};
  }
}

// A TCP port on 127.0.0.1 that nothing listens on (bound, then released).
inline uint16_t unused_port() {
  asio::io_context io;
  asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

}  // namespace ferry::test
