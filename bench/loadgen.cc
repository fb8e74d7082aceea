// loadgen - drives any Socket.IO v4 server speaking Ferry's subscribe/publish events
// (Ferry itself, or bench/baseline/server.mjs on the Node reference server) and prints one
// JSON line per result. It reports its own CPU next to the server's so it can be shown
// not to be the bottleneck.
//
//   loadgen ingest  --clients C --inflight W --duration S [--payload B]      (P1)
//   loadgen rtt     --duration S                                             (P4)
//   loadgen fanout  --subscribers S --rate R|0 --duration S [--payload B]    (P3)
//   loadgen idle    --connections N [--local-ips K]                          (P5)
//   loadgen replay  --events N                                               (P6)
//   loadgen storm   --clients N --events M                                   (P8)
//   loadgen soak    --rate R --duration S [--interval S] [--max-inflight N]  (P7)
// Common: --url http://HOST:PORT, --server-pid PID (CPU and RSS of the server).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "bench/proc_stats.h"
#include "bench/sio_conn.h"

using namespace ferry::bench;
using clk = std::chrono::steady_clock;

namespace {

struct common {
  std::string host = "127.0.0.1";
  uint16_t port = 7070;
  int server_pid = 0;
  double duration = 10;
  size_t payload = 100;
  std::string topic = "bench";
  std::string publish_event = "publish";  // ingest/rtt: the acked event's name
};

std::string padding(size_t n) { return std::string(n, 'x'); }

// Connects `n` sockets (at most `parallel` handshakes at once), then calls done(conns).
void connect_many(asio::io_context& io, const common& c, size_t n, size_t parallel, const std::vector<std::string>& ips,
                  std::function<void(std::shared_ptr<conn>&)> setup,
                  std::function<void(std::vector<std::shared_ptr<conn>>&)> done) {
  struct state {
    std::vector<std::shared_ptr<conn>> conns;
    size_t next = 0, finished = 0, failed = 0;
  };
  auto st = std::make_shared<state>();
  st->conns.resize(n);
  auto launch = std::make_shared<std::function<void()>>();
  *launch = [&io, &c, n, st, ips, setup, done, launch]() {
    if (st->next >= n) return;
    size_t i = st->next++;
    conn_options o;
    o.host = c.host;
    o.port = c.port;
    if (!ips.empty()) o.local_ip = ips[i % ips.size()];
    auto k = std::make_shared<conn>(io, o);
    st->conns[i] = k;
    if (setup) setup(k);
    k->start([&io, st, n, done, launch](bool ok) {
      ++st->finished;
      if (!ok) ++st->failed;
      if (st->finished == n) {
        if (st->failed) fmt::print(stderr, "{} of {} connections failed\n", st->failed, n);
        done(st->conns);
      } else {
        (*launch)();
      }
    });
  };
  for (size_t i = 0; i < std::min(parallel, n); ++i) (*launch)();
}

// The last string argument of an event packet (the offset), or empty.
std::string_view last_string_arg(std::string_view packet) {
  if (packet.size() < 3 || packet.back() != ']') return {};
  size_t end = packet.size() - 1;
  if (packet[end - 1] != '"') return {};
  size_t start = packet.rfind('"', end - 2);
  if (start == std::string_view::npos || packet[start - 1] != ',') return {};
  return packet.substr(start + 1, end - 2 - start);
}

// Reads the integer after "t": in a delivery (the publisher's send time, ns).
int64_t embedded_time(std::string_view packet) {
  auto p = packet.find("\"t\":");
  if (p == std::string_view::npos) return -1;
  int64_t v = 0;
  for (size_t i = p + 4; i < packet.size() && packet[i] >= '0' && packet[i] <= '9'; ++i) v = v * 10 + (packet[i] - '0');
  return v;
}

int64_t now_ns(clk::time_point base) { return std::chrono::duration_cast<std::chrono::nanoseconds>(clk::now() - base).count(); }

// ---------------------------------------------------------------------------------

int run_ingest(const common& c, size_t clients, size_t inflight, bool rtt_mode) {
  asio::io_context io(1);
  std::string pad = padding(c.payload);
  histogram h;
  uint64_t acked = 0, errors = 0;
  bool measuring = false, stopping = false;
  std::vector<std::vector<clk::time_point>> sent(clients, std::vector<clk::time_point>(inflight * 2 + 16));
  std::vector<uint64_t> seq(clients, 0);
  std::unique_ptr<cpu_meter> meter;
  clk::time_point t_start;
  std::vector<std::shared_ptr<conn>> all;
  auto send_one = [&](size_t i) {
    auto& k = all[i];
    uint64_t id = k->next_ack_id();
    sent[i][id % sent[i].size()] = clk::now();
    k->send_packet(fmt::format(R"(2{}["{}",{{"topic":"{}","event":"e","data":"{}","id":"c{}-{}"}}])", id,
                               c.publish_event, c.topic, pad, i, seq[i]++));
  };
  connect_many(io, c, clients, 64, {}, [](std::shared_ptr<conn>&) {}, [&](std::vector<std::shared_ptr<conn>>& conns) {
    all = conns;
    for (size_t i = 0; i < all.size(); ++i) {
      all[i]->on_ack = [&, i](uint64_t id, std::string_view args) {
        if (measuring) {
          h.record(clk::now() - sent[i][id % sent[i].size()]);
          if (args.find("\"ok\":true") != std::string_view::npos) ++acked;
          else ++errors;
        }
        if (!stopping) send_one(i);
      };
      for (size_t w = 0; w < inflight; ++w) send_one(i);
    }
  });
  asio::steady_timer warm(io), end(io);
  warm.expires_after(std::chrono::milliseconds(rtt_mode ? 500 : 1500));
  warm.async_wait([&](const asio::error_code&) {
    measuring = true;
    meter = std::make_unique<cpu_meter>(c.server_pid);
    t_start = clk::now();
    end.expires_after(std::chrono::milliseconds(static_cast<int64_t>(c.duration * 1000)));
    end.async_wait([&](const asio::error_code&) {
      measuring = false;
      stopping = true;
      double secs = std::chrono::duration<double>(clk::now() - t_start).count();
      fmt::print(R"({{"scenario":"{}","clients":{},"inflight":{},"payload":{},"acked_per_s":{:.0f},"errors":{},"p50_ms":{:.3f},"p99_ms":{:.3f},"p999_ms":{:.3f},{}}})"
                 "\n",
                 rtt_mode ? "rtt" : "ingest", clients, inflight, c.payload, static_cast<double>(acked) / secs, errors,
                 h.percentile_ms(50), h.percentile_ms(99), h.percentile_ms(99.9), meter->json());
      std::fflush(stdout);
      for (auto& k : all) k->drop();
      io.stop();
    });
  });
  io.run();
  return acked > 0 ? 0 : 1;
}

int run_fanout(const common& c, size_t subscribers, double rate, size_t inflight) {
  asio::io_context io(1);
  auto base = clk::now();
  std::string pad = padding(c.payload);
  histogram h;
  uint64_t delivered = 0, published = 0;
  bool measuring = false, stopping = false;
  std::shared_ptr<conn> pub;
  std::vector<std::shared_ptr<conn>> subs;
  std::unique_ptr<cpu_meter> meter;
  clk::time_point t_start;
  uint64_t seq = 0;
  auto publish = [&] {
    pub->send_packet(fmt::format(R"(2{}["publish",{{"topic":"{}","event":"e","data":{{"t":{},"p":"{}"}}}}])",
                                 pub->next_ack_id(), c.topic, now_ns(base), pad));
    ++seq;
  };
  asio::steady_timer tick(io), warm(io), end(io);
  std::function<void()> pace;
  double credit = 0;
  auto last = clk::now();
  pace = [&] {
    if (stopping) return;
    auto now = clk::now();
    credit += std::chrono::duration<double>(now - last).count() * rate;
    last = now;
    while (credit >= 1) {
      publish();
      credit -= 1;
    }
    tick.expires_after(std::chrono::milliseconds(1));
    tick.async_wait([&](const asio::error_code& ec) {
      if (!ec) pace();
    });
  };
  auto begin_publishing = [&] {
    conn_options o;
    o.host = c.host;
    o.port = c.port;
    pub = std::make_shared<conn>(io, o);
    pub->start([&](bool ok) {
      if (!ok) {
        fmt::print(stderr, "publisher failed to connect\n");
        io.stop();
        return;
      }
      pub->on_ack = [&](uint64_t, std::string_view) {
        if (measuring) ++published;
        if (rate <= 0 && !stopping) publish();
      };
      if (rate > 0) pace();
      else
        for (size_t i = 0; i < inflight; ++i) publish();
    });
  };
  size_t subscribed = 0;
  connect_many(io, c, subscribers, 64, {}, [](std::shared_ptr<conn>&) {}, [&](std::vector<std::shared_ptr<conn>>& conns) {
    subs = conns;
    for (auto& k : subs) {
      k->on_event = [&](std::string_view p) {
        if (!measuring) return;
        int64_t t = embedded_time(p);
        if (t < 0) return;
        ++delivered;
        h.record(std::chrono::nanoseconds(now_ns(base) - t));
      };
      k->on_ack = [&](uint64_t, std::string_view) {
        if (++subscribed == subs.size()) begin_publishing();
      };
      k->send_packet(fmt::format(R"(2{}["subscribe",{{"topic":"{}"}}])", k->next_ack_id(), c.topic));
    }
  });
  warm.expires_after(std::chrono::milliseconds(2000));
  warm.async_wait([&](const asio::error_code&) {
    measuring = true;
    meter = std::make_unique<cpu_meter>(c.server_pid);
    t_start = clk::now();
    end.expires_after(std::chrono::milliseconds(static_cast<int64_t>(c.duration * 1000)));
    end.async_wait([&](const asio::error_code&) {
      measuring = false;
      stopping = true;
      double secs = std::chrono::duration<double>(clk::now() - t_start).count();
      fmt::print(R"({{"scenario":"fanout","subscribers":{},"rate":{},"published_per_s":{:.0f},"deliveries_per_s":{:.0f},"p50_ms":{:.3f},"p99_ms":{:.3f},{}}})"
                 "\n",
                 subscribers, rate, static_cast<double>(published) / secs, static_cast<double>(delivered) / secs,
                 h.percentile_ms(50), h.percentile_ms(99), meter->json());
      std::fflush(stdout);
      if (pub) pub->drop();
      for (auto& k : subs) k->drop();
      io.stop();
    });
  });
  io.run();
  return delivered > 0 ? 0 : 1;
}

int run_idle(const common& c, size_t n, size_t local_ips, double hold) {
  asio::io_context io(1);
  std::vector<std::string> ips;
  for (size_t i = 0; i < std::max<size_t>(1, local_ips); ++i) ips.push_back(fmt::format("127.0.{}.{}", 1 + i / 250, 1 + i % 250));
  long before = rss_kib(c.server_pid);
  std::vector<std::shared_ptr<conn>> conns;
  asio::steady_timer t(io);
  auto t0 = clk::now();
  connect_many(io, c, n, 256, ips, [](std::shared_ptr<conn>&) {}, [&](std::vector<std::shared_ptr<conn>>& all) {
    conns = all;
    size_t open = 0;
    for (auto& k : conns) open += k->open() ? 1 : 0;
    double secs = std::chrono::duration<double>(clk::now() - t0).count();
    t.expires_after(std::chrono::milliseconds(static_cast<int64_t>(hold * 1000)));
    t.async_wait([&, open, secs](const asio::error_code&) {
      long after = rss_kib(c.server_pid);
      fmt::print(R"({{"scenario":"idle","connections":{},"open":{},"connect_s":{:.2f},"rss_before_kib":{},"rss_after_kib":{},"kib_per_connection":{:.2f}}})"
                 "\n",
                 n, open, secs, before, after, static_cast<double>(after - before) / static_cast<double>(std::max<size_t>(1, open)));
      std::fflush(stdout);
      for (auto& k : conns) k->drop();
      io.stop();
    });
  });
  io.run();
  return 0;
}

// Publishes `count` events to `topic` in batches of `batch` over one connection.
void publish_bulk(asio::io_context& io, const common& c, std::string topic, size_t count, size_t batch,
                  std::function<void()> done) {
  conn_options o;
  o.host = c.host;
  o.port = c.port;
  auto k = std::make_shared<conn>(io, o);
  auto sent = std::make_shared<size_t>(0);
  auto acked = std::make_shared<size_t>(0);
  std::string pad = padding(c.payload);
  auto send_batch = [k, sent, count, batch, topic, pad]() {
    if (*sent >= count) return;
    size_t n = std::min(batch, count - *sent);
    std::string p = fmt::format("2{}[\"publish\",[", k->next_ack_id());
    for (size_t i = 0; i < n; ++i) {
      if (i) p.push_back(',');
      p += fmt::format(R"({{"topic":"{}","event":"e","data":{{"n":{},"p":"{}"}}}})", topic, *sent + i, pad);
    }
    p += "]]";
    *sent += n;
    k->send_packet(p);
  };
  k->start([k, send_batch, acked, count, batch, done](bool ok) {
    if (!ok) {
      fmt::print(stderr, "bulk publisher failed to connect\n");
      done();
      return;
    }
    k->on_ack = [k, send_batch, acked, count, batch, done](uint64_t, std::string_view) {
      *acked += batch;
      if (*acked >= count) {
        k->drop();
        done();
      } else {
        send_batch();
      }
    };
    for (int i = 0; i < 8; ++i) send_batch();
  });
}

int run_replay(const common& c, size_t events) {
  asio::io_context io(1);
  auto consumer = std::make_shared<conn>(io, conn_options{c.host, c.port});
  std::string offset;
  size_t received = 0;
  bool counting = false;
  clk::time_point t0;
  std::unique_ptr<cpu_meter> meter;
  std::string topic = c.topic + "-replay";
  consumer->on_event = [&](std::string_view p) {
    auto off = last_string_arg(p);
    if (!off.empty()) offset = std::string(off);
    if (counting && p.find("\"n\":") != std::string_view::npos && ++received == events) {
      double secs = std::chrono::duration<double>(clk::now() - t0).count();
      fmt::print(R"({{"scenario":"replay","events":{},"seconds":{:.3f},"events_per_s":{:.0f},{}}})" "\n", events, secs,
                 static_cast<double>(events) / secs, meter->json());
      std::fflush(stdout);
      consumer->drop();
      io.stop();
    }
  };
  consumer->start([&](bool ok) {
    if (!ok) return io.stop();
    consumer->on_ack = [&](uint64_t, std::string_view) {
      // Subscribed: get one live event so the client has an offset, then go away.
      publish_bulk(io, c, topic, 1, 1, [&] {
        asio::post(io, [&] {
          consumer->drop();
          publish_bulk(io, c, topic, events, 1000, [&] {
            consumer->set_auth(fmt::format(R"({{"pid":"{}","offset":"{}"}})", consumer->pid(), offset));
            counting = true;
            meter = std::make_unique<cpu_meter>(c.server_pid);
            t0 = clk::now();
            consumer->start([&](bool ok2) {
              if (!ok2) {
                fmt::print(stderr, "replay reconnect failed\n");
                io.stop();
              }
            });
          });
        });
      });
    };
    consumer->send_packet(fmt::format(R"(2{}["subscribe",{{"topic":"{}"}}])", consumer->next_ack_id(), topic));
  });
  io.run();
  return received == events ? 0 : 1;
}

int run_storm(const common& c, size_t clients, size_t events, size_t local_ips) {
  asio::io_context io(1);
  std::vector<std::string> ips;
  for (size_t i = 0; i < std::max<size_t>(1, local_ips); ++i) ips.push_back(fmt::format("127.0.{}.{}", 1 + i / 250, 1 + i % 250));
  std::string topic = c.topic + "-storm";
  struct client_state {
    std::string offset;
    size_t got = 0;
    bool recovered = false;
  };
  std::vector<client_state> st(clients);
  std::vector<std::shared_ptr<conn>> conns;
  bool storm = false;
  size_t done_clients = 0, recovered = 0;
  clk::time_point t0;
  std::unique_ptr<cpu_meter> meter;
  asio::steady_timer guard(io);
  auto finish = [&](bool timeout) {
    size_t lost = 0;
    for (auto& s : st) lost += s.got >= events ? 0 : events - s.got;
    double secs = std::chrono::duration<double>(clk::now() - t0).count();
    fmt::print(R"({{"scenario":"storm","clients":{},"events":{},"seconds":{:.3f},"recovered":{},"all_done":{},"lost":{},"timeout":{},{}}})" "\n",
               clients, events, secs, recovered, done_clients, lost, timeout ? "true" : "false", meter ? meter->json() : R"("loadgen_cpu":0,"server_cpu":0)");
    std::fflush(stdout);
    for (auto& k : conns) k->drop();
    io.stop();
  };
  size_t subscribed = 0;
  connect_many(io, c, clients, 256, ips, [](std::shared_ptr<conn>&) {}, [&](std::vector<std::shared_ptr<conn>>& all) {
    conns = all;
    for (size_t i = 0; i < conns.size(); ++i) {
      conns[i]->on_event = [&, i](std::string_view p) {
        auto off = last_string_arg(p);
        if (!off.empty()) st[i].offset = std::string(off);
        if (storm && p.find("\"n\":") != std::string_view::npos) {
          if (++st[i].got == events && st[i].recovered) {
            if (++done_clients == clients) finish(false);
          }
        }
      };
      conns[i]->on_ack = [&](uint64_t, std::string_view) {
        if (++subscribed < clients) return;
        // Everyone subscribed: one event so every client holds an offset.
        publish_bulk(io, c, topic, 1, 1, [&] {
          guard.expires_after(std::chrono::milliseconds(500));
          guard.async_wait([&](const asio::error_code&) {
            for (auto& k : conns) k->drop();
            publish_bulk(io, c, topic, events, 1000, [&] {
              storm = true;
              meter = std::make_unique<cpu_meter>(c.server_pid);
              t0 = clk::now();
              for (size_t j = 0; j < conns.size(); ++j) {
                conns[j]->set_auth(fmt::format(R"({{"pid":"{}","offset":"{}"}})", conns[j]->pid(), st[j].offset));
                std::string old_sid = conns[j]->sid();
                conns[j]->start([&, j, old_sid](bool ok) {
                  if (!ok) return;
                  st[j].recovered = conns[j]->sid() == old_sid;
                  if (st[j].recovered) ++recovered;
                  if (st[j].got >= events && st[j].recovered && ++done_clients == clients) finish(false);
                });
              }
              guard.expires_after(std::chrono::seconds(120));
              guard.async_wait([&](const asio::error_code& ec) {
                if (!ec) finish(true);
              });
            });
          });
        });
      };
      conns[i]->send_packet(fmt::format(R"(2{}["subscribe",{{"topic":"{}"}}])", conns[i]->next_ack_id(), topic));
    }
  });
  io.run();
  return 0;
}

int run_soak(const common& c, double rate, double interval, uint64_t max_inflight) {
  asio::io_context io(1);
  std::string pad = padding(c.payload);
  auto k = std::make_shared<conn>(io, conn_options{c.host, c.port});
  std::vector<clk::time_point> sent(1 << 20);
  histogram h;
  uint64_t acked = 0, seq = 0, total_acked = 0, behind = 0;
  asio::steady_timer tick(io), report(io), end(io);
  double credit = 0;
  auto last = clk::now();
  auto t0 = clk::now();
  std::function<void()> pace = [&] {
    auto now = clk::now();
    credit += std::chrono::duration<double>(now - last).count() * rate;
    last = now;
    while (credit >= 1) {
      credit -= 1;
      // A producer keeps a bounded outbox: past max_inflight unacked publishes the event
      // is counted as not sent (the server is behind) instead of queued without bound
      // in the load generator, where it would also delay the client's pongs.
      if (seq - total_acked >= max_inflight) {
        ++behind;
        continue;
      }
      uint64_t id = k->next_ack_id();
      sent[id % sent.size()] = clk::now();
      k->send_packet(fmt::format(R"(2{}["publish",{{"topic":"{}","event":"e","data":"{}","id":"s-{}"}}])", id, c.topic, pad, seq++));
    }
    tick.expires_after(std::chrono::milliseconds(1));
    tick.async_wait([&](const asio::error_code& ec) {
      if (!ec) pace();
    });
  };
  std::function<void()> every = [&] {
    report.expires_after(std::chrono::milliseconds(static_cast<int64_t>(interval * 1000)));
    report.async_wait([&](const asio::error_code& ec) {
      if (ec) return;
      fmt::print(R"({{"scenario":"soak","t_s":{:.0f},"acked_per_s":{:.0f},"p99_ms":{:.3f},"rss_kib":{},"behind":{}}})" "\n",
                 std::chrono::duration<double>(clk::now() - t0).count(), static_cast<double>(acked) / interval,
                 h.percentile_ms(99), rss_kib(c.server_pid), behind);
      std::fflush(stdout);
      acked = 0;
      behind = 0;
      h.clear();
      every();
    });
  };
  k->start([&](bool ok) {
    if (!ok) return io.stop();
    k->on_ack = [&](uint64_t id, std::string_view) {
      h.record(clk::now() - sent[id % sent.size()]);
      ++acked;
      ++total_acked;
    };
    pace();
    every();
  });
  end.expires_after(std::chrono::milliseconds(static_cast<int64_t>(c.duration * 1000)));
  end.async_wait([&](const asio::error_code&) {
    k->drop();
    io.stop();
  });
  io.run();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"loadgen: Socket.IO v4 load generator for Ferry and the Node reference baseline"};
  app.require_subcommand(1);
  common c;
  std::string url = "http://127.0.0.1:7070";
  app.add_option("--url", url, "server URL")->capture_default_str();
  app.add_option("--server-pid", c.server_pid, "server process id (CPU and RSS)");
  app.add_option("--duration", c.duration, "seconds to measure")->capture_default_str();
  app.add_option("--payload", c.payload, "payload bytes")->capture_default_str();
  app.add_option("--topic", c.topic, "topic")->capture_default_str();
  app.add_option("--publish-event", c.publish_event,
                 "event acked by ingest/rtt (e.g. message-with-ack against tools/sio-echo: the no-storage floor)")
      ->capture_default_str();
  size_t clients = 4, inflight = 64, subscribers = 100, connections = 1000, local_ips = 1, events = 100000;
  double rate = 0, interval = 10, hold = 3;
  auto* ingest = app.add_subcommand("ingest", "P1: C clients x W in-flight publishes with acks");
  ingest->add_option("--clients", clients)->capture_default_str();
  ingest->add_option("--inflight", inflight)->capture_default_str();
  app.add_subcommand("rtt", "P4: one publish in flight, round-trip latency");
  auto* fanout = app.add_subcommand("fanout", "P3: S subscribers on one topic, publisher at --rate (0 = max)");
  fanout->add_option("--subscribers", subscribers)->capture_default_str();
  fanout->add_option("--rate", rate)->capture_default_str();
  fanout->add_option("--inflight", inflight)->capture_default_str();
  auto* idle = app.add_subcommand("idle", "P5: N idle connections, server RSS per connection");
  idle->add_option("--connections", connections)->capture_default_str();
  idle->add_option("--local-ips", local_ips, "source addresses 127.0.x.y to spread ports over")->capture_default_str();
  idle->add_option("--hold", hold, "seconds to hold before measuring")->capture_default_str();
  auto* replay = app.add_subcommand("replay", "P6: a consumer reconnecting behind a backlog");
  replay->add_option("--events", events)->capture_default_str();
  auto* storm = app.add_subcommand("storm", "P8: clients drop and recover at once");
  storm->add_option("--clients", clients)->capture_default_str();
  storm->add_option("--events", events)->capture_default_str();
  storm->add_option("--local-ips", local_ips)->capture_default_str();
  auto* soak = app.add_subcommand("soak", "P7: publish at --rate for --duration, report every --interval");
  soak->add_option("--rate", rate)->capture_default_str();
  soak->add_option("--interval", interval)->capture_default_str();
  uint64_t max_inflight = 10000;
  soak->add_option("--max-inflight", max_inflight, "unacked publishes before events are counted as behind")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::string hp = url.substr(url.find("://") == std::string::npos ? 0 : url.find("://") + 3);
  auto colon = hp.rfind(':');
  c.host = hp.substr(0, colon);
  c.port = static_cast<uint16_t>(std::stoi(hp.substr(colon + 1)));
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }

  if (app.got_subcommand("ingest")) return run_ingest(c, clients, inflight, false);
  if (app.got_subcommand("rtt")) return run_ingest(c, 1, 1, true);
  if (app.got_subcommand("fanout")) return run_fanout(c, subscribers, rate, inflight);
  if (app.got_subcommand("idle")) return run_idle(c, connections, local_ips, hold);
  if (app.got_subcommand("replay")) return run_replay(c, events);
  if (app.got_subcommand("storm")) return run_storm(c, clients, events, local_ips);
  if (app.got_subcommand("soak")) return run_soak(c, rate, interval, max_inflight);
  return 1;
}
