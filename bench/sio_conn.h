// sio_conn.h - a lean Socket.IO v5 client connection for load generation.
//
// Engine.IO v4 over WebSocket only, with its own minimal RFC 6455 client framing on Asio:
// frames are appended to one buffer and written with one syscall per batch, incoming
// frames are parsed in place. It can drive any Socket.IO v4 server (Ferry or the Node
// reference). Bench code: one io_context thread, no thread-safety.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

namespace ferry::bench {

struct conn_options {
  std::string host = "127.0.0.1";
  uint16_t port = 7070;
  std::string path = "/socket.io/";
  std::string nsp = "/";
  std::string auth = "{}";     // CONNECT payload (JSON object)
  std::string local_ip;        // bind to this source address (many connections need several)
};

class conn : public std::enable_shared_from_this<conn> {
 public:
  conn(asio::io_context& io, conn_options o);
  ~conn();

  // Connects, upgrades, opens Engine.IO and connects the namespace; `done(true)` once the
  // CONNECT ack arrived (sid()/pid() are then set), `done(false)` on any failure.
  void start(std::function<void(bool)> done);
  // Sends one Socket.IO packet (text without the Engine.IO "4" prefix), e.g. 42["x",1].
  void send_packet(std::string_view sio_text);
  // Closes the TCP connection abruptly (no close frame): a dropped network.
  void drop();
  [[nodiscard]] bool open() const noexcept { return _open; }
  [[nodiscard]] const std::string& sid() const noexcept { return _sid; }
  [[nodiscard]] const std::string& pid() const noexcept { return _pid; }
  [[nodiscard]] const std::string& connect_payload() const noexcept { return _connect_payload; }
  void set_auth(std::string auth) { _o.auth = std::move(auth); }
  uint64_t next_ack_id() noexcept { return _next_ack++; }

  // Socket.IO ACK for `id`: `args` is the JSON array text.
  std::function<void(uint64_t id, std::string_view args)> on_ack;
  // Socket.IO EVENT: `packet` is the text after the type digit and namespace (may start with an ack id).
  std::function<void(std::string_view packet)> on_event;
  std::function<void()> on_close;

  uint64_t frames_in = 0, frames_out = 0;

 private:
  void fail();
  void read_some();
  bool parse_http();
  bool parse_frames();
  void on_text(std::string_view text);
  void write_frame(uint8_t opcode, std::string_view payload);
  void flush();

  asio::io_context& _io;
  conn_options _o;
  asio::ip::tcp::socket _sock;
  std::function<void(bool)> _done;
  enum class phase : uint8_t { http, ws } _phase = phase::http;
  bool _open = false;
  bool _connected = false;
  bool _writing = false;
  std::vector<char> _in;  // received bytes not yet parsed start at 0
  size_t _in_len = 0;
  std::string _wbuf, _wflight;
  std::string _fragment;
  uint32_t _mask;
  uint64_t _next_ack = 0;
  std::string _sid, _pid, _connect_payload;
  std::string _key;
};

// Log-linear latency histogram (1 us .. ~1 h, ~2% resolution).
class histogram {
 public:
  void record(std::chrono::nanoseconds d) noexcept;
  [[nodiscard]] double percentile_ms(double p) const noexcept;
  [[nodiscard]] uint64_t count() const noexcept { return _count; }
  void merge(const histogram& o) noexcept;
  void clear() noexcept;

 private:
  static constexpr int sub = 64;
  static constexpr int buckets = 40 * sub;
  uint64_t _b[buckets] = {};
  uint64_t _count = 0;
};

}  // namespace ferry::bench
