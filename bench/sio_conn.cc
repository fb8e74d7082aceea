#include "bench/sio_conn.h"

#include <cstring>
#include <random>

#include <asio/write.hpp>

#include "protocol/base64.h"
#include "protocol/json.h"

namespace ferry::bench {

namespace pjson = ferry::protocol::json;

conn::conn(asio::io_context& io, conn_options o) : _io(io), _o(std::move(o)), _sock(io) {
  std::random_device rd;
  _mask = rd();
  unsigned char k[16];
  for (auto& c : k) c = static_cast<unsigned char>(rd());
  _key = protocol::base64::encode(std::string_view(reinterpret_cast<char*>(k), 16));
  _in.resize(1 << 16);
}

conn::~conn() = default;

void conn::fail() {
  bool notify = _connected;
  _open = _connected = false;
  asio::error_code ec;
  _sock.close(ec);
  if (_done) {
    auto d = std::move(_done);
    _done = nullptr;
    d(false);
  } else if (notify && on_close) {
    auto c = on_close;
    c();
  }
}

void conn::drop() {
  _open = _connected = false;
  _done = nullptr;
  asio::error_code ec;
  _sock.close(ec);
}

void conn::start(std::function<void(bool)> done) {
  _done = std::move(done);
  _phase = phase::http;
  _in_len = 0;
  _wbuf.clear();
  _sid.clear();
  asio::error_code ec;
  asio::ip::tcp::endpoint ep(asio::ip::make_address(_o.host, ec), _o.port);
  if (ec) return fail();
  if (_sock.is_open()) _sock.close(ec);
  _sock.open(ep.protocol(), ec);
  if (!ec && !_o.local_ip.empty()) {
    _sock.set_option(asio::socket_base::reuse_address(true), ec);
    _sock.bind(asio::ip::tcp::endpoint(asio::ip::make_address(_o.local_ip), 0), ec);
  }
  if (ec) return fail();
  _sock.async_connect(ep, [self = shared_from_this()](const asio::error_code& e) {
    if (e) return self->fail();
    asio::error_code ignored;
    self->_sock.set_option(asio::ip::tcp::no_delay(true), ignored);
    self->_wbuf = "GET " + self->_o.path + "?EIO=4&transport=websocket HTTP/1.1\r\nHost: " + self->_o.host +
                  "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + self->_key +
                  "\r\nSec-WebSocket-Version: 13\r\n\r\n";
    self->flush();
    self->read_some();
  });
}

void conn::read_some() {
  if (_in.size() - _in_len < 16384) _in.resize(_in.size() * 2);
  _sock.async_read_some(asio::buffer(_in.data() + _in_len, _in.size() - _in_len),
                        [self = shared_from_this()](const asio::error_code& ec, size_t n) {
                          if (ec) return self->fail();
                          self->_in_len += n;
                          bool ok = self->_phase == phase::http ? self->parse_http() : true;
                          if (ok && self->_phase == phase::ws) ok = self->parse_frames();
                          if (!ok) return self->fail();
                          self->flush();
                          self->read_some();
                        });
}

bool conn::parse_http() {
  std::string_view data(_in.data(), _in_len);
  auto end = data.find("\r\n\r\n");
  if (end == std::string_view::npos) return _in_len < 65536;
  if (!data.starts_with("HTTP/1.1 101")) return false;
  size_t used = end + 4;
  std::memmove(_in.data(), _in.data() + used, _in_len - used);
  _in_len -= used;
  _phase = phase::ws;
  _open = true;
  return true;
}

bool conn::parse_frames() {
  size_t pos = 0;
  auto* b = reinterpret_cast<unsigned char*>(_in.data());
  while (_in_len - pos >= 2) {
    bool fin = b[pos] & 0x80;
    uint8_t opcode = b[pos] & 0x0F;
    uint64_t len = b[pos + 1] & 0x7F;
    size_t hdr = 2;
    if (len == 126) {
      if (_in_len - pos < 4) break;
      len = (uint64_t{b[pos + 2]} << 8) | b[pos + 3];
      hdr = 4;
    } else if (len == 127) {
      if (_in_len - pos < 10) break;
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | b[pos + 2 + i];
      hdr = 10;
    }
    if (_in_len - pos - hdr < len) break;
    std::string_view payload(_in.data() + pos + hdr, len);
    pos += hdr + len;
    ++frames_in;
    if (opcode == 0x8) return false;  // close
    if (opcode == 0x9) {              // ping
      write_frame(0xA, payload);
      continue;
    }
    if (opcode == 0xA) continue;
    if (opcode == 0x0 || !fin) {  // fragmented message
      _fragment.append(payload);
      if (!fin) continue;
      std::string whole = std::move(_fragment);
      _fragment.clear();
      on_text(whole);
    } else if (opcode == 0x1) {
      on_text(payload);
    }
    // binary frames (attachments) are not used by the load generator
    if (!_sock.is_open()) return true;
  }
  if (pos > 0) {
    std::memmove(_in.data(), _in.data() + pos, _in_len - pos);
    _in_len -= pos;
  }
  return true;
}

void conn::on_text(std::string_view text) {
  if (text.empty()) return;
  switch (text[0]) {
    case '0': {  // Engine.IO open: connect the namespace
      std::string p = "0";
      if (_o.nsp != "/") p += _o.nsp + ",";
      p += _o.auth;
      send_packet(p);
      return;
    }
    case '2':  // ping
      write_frame(0x1, "3");
      return;
    case '4':
      break;
    default:
      return;
  }
  std::string_view p = text.substr(1);
  if (p.empty()) return;
  char type = p[0];
  p.remove_prefix(1);
  if (!p.empty() && p[0] == '/') {
    auto comma = p.find(',');
    p = comma == std::string_view::npos ? std::string_view() : p.substr(comma + 1);
  }
  switch (type) {
    case '0': {  // CONNECT ack {"sid":..,"pid":..}
      _connect_payload = std::string(p);
      auto v = pjson::parse(p);
      pjson::value m;
      if (v && v->is_object()) {
        if (pjson::find_member(*v, "sid", m) && m.is_string()) _sid = pjson::unescape(m);
        if (pjson::find_member(*v, "pid", m) && m.is_string()) _pid = pjson::unescape(m);
      }
      _connected = true;
      if (_done) {
        auto d = std::move(_done);
        _done = nullptr;
        d(true);
      }
      return;
    }
    case '2':
      if (on_event) on_event(p);
      return;
    case '3': {
      uint64_t id = 0;
      size_t i = 0;
      while (i < p.size() && p[i] >= '0' && p[i] <= '9') id = id * 10 + static_cast<uint64_t>(p[i++] - '0');
      if (on_ack) on_ack(id, p.substr(i));
      return;
    }
    case '4':  // CONNECT_ERROR
    case '1':  // DISCONNECT
      fail();
      return;
    default:
      return;
  }
}

void conn::send_packet(std::string_view sio_text) {
  // Engine.IO message prefix + Socket.IO packet, in one masked text frame.
  size_t len = sio_text.size() + 1;
  unsigned char hdr[14];
  size_t h = 0;
  hdr[h++] = 0x81;
  if (len < 126) {
    hdr[h++] = static_cast<unsigned char>(0x80 | len);
  } else if (len < 65536) {
    hdr[h++] = 0x80 | 126;
    hdr[h++] = static_cast<unsigned char>(len >> 8);
    hdr[h++] = static_cast<unsigned char>(len);
  } else {
    hdr[h++] = 0x80 | 127;
    for (int i = 7; i >= 0; --i) hdr[h++] = static_cast<unsigned char>(static_cast<uint64_t>(len) >> (i * 8));
  }
  std::memcpy(hdr + h, &_mask, 4);
  h += 4;
  size_t start = _wbuf.size();
  _wbuf.append(reinterpret_cast<char*>(hdr), h);
  _wbuf.push_back('4');
  _wbuf.append(sio_text);
  auto* m = reinterpret_cast<const unsigned char*>(&_mask);
  auto* d = reinterpret_cast<unsigned char*>(_wbuf.data() + start + h);
  for (size_t i = 0; i < len; ++i) d[i] ^= m[i & 3];
  ++frames_out;
  if (!_writing) flush();
}

void conn::write_frame(uint8_t opcode, std::string_view payload) {
  size_t len = payload.size();
  unsigned char hdr[8] = {static_cast<unsigned char>(0x80 | opcode), static_cast<unsigned char>(0x80 | len)};
  std::memcpy(hdr + 2, &_mask, 4);
  size_t start = _wbuf.size();
  _wbuf.append(reinterpret_cast<char*>(hdr), 6);
  _wbuf.append(payload);
  auto* m = reinterpret_cast<const unsigned char*>(&_mask);
  auto* d = reinterpret_cast<unsigned char*>(_wbuf.data() + start + 6);
  for (size_t i = 0; i < len; ++i) d[i] ^= m[i & 3];
}

void conn::flush() {
  if (_writing || _wbuf.empty() || !_sock.is_open()) return;
  _writing = true;
  std::swap(_wbuf, _wflight);
  _wbuf.clear();
  asio::async_write(_sock, asio::buffer(_wflight), [self = shared_from_this()](const asio::error_code& ec, size_t) {
    self->_writing = false;
    self->_wflight.clear();
    if (ec) return self->fail();
    self->flush();
  });
}

// ---------------------------------------------------------------------------------

void histogram::record(std::chrono::nanoseconds d) noexcept {
  uint64_t us = static_cast<uint64_t>(std::max<int64_t>(1, d.count() / 1000));
  int exp = 63 - __builtin_clzll(us);  // floor(log2)
  int idx;
  if (exp < 6) {
    idx = static_cast<int>(us);  // exact below 64 us
  } else {
    int shift = exp - 6;
    idx = (exp - 5) * sub + static_cast<int>((us >> shift) - sub);
  }
  if (idx >= buckets) idx = buckets - 1;
  ++_b[idx];
  ++_count;
}

double histogram::percentile_ms(double p) const noexcept {
  if (_count == 0) return 0;
  uint64_t target = static_cast<uint64_t>(static_cast<double>(_count) * p / 100.0);
  if (target >= _count) target = _count - 1;
  uint64_t seen = 0;
  for (int i = 0; i < buckets; ++i) {
    seen += _b[i];
    if (seen > target) {
      double us;
      if (i < sub) {
        us = i;
      } else {
        int exp = i / sub + 5;
        int shift = exp - 6;
        us = static_cast<double>((static_cast<uint64_t>(i % sub) + sub) << shift);
      }
      return us / 1000.0;
    }
  }
  return 0;
}

void histogram::merge(const histogram& o) noexcept {
  for (int i = 0; i < buckets; ++i) _b[i] += o._b[i];
  _count += o._count;
}

void histogram::clear() noexcept {
  std::memset(_b, 0, sizeof _b);
  _count = 0;
}

}  // namespace ferry::bench
