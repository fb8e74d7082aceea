#include "tools/ferryctl/commands.h"

#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "protocol/json.h"
#include "tools/ferryctl/args.h"
#include "tools/ferryctl/interrupt.h"
#include "tools/ferryctl/iso8601.h"

namespace ferry::ferryctl {
namespace {

namespace pjson = ferry::protocol::json;

std::string off_text(protocol::offset o) {
  return protocol::format_offset(o);
}

const topic_row& find_topic(const std::vector<topic_row>& topics, const source& src, const std::string& name) {
  for (const auto& t : topics)
    if (t.name == name) return t;
  throw failure(exit_code::not_found,
                fmt::format("topic {} not found in namespace {} ({})", name, src.namespace_name(), src.where()));
}

void check_epoch(protocol::offset o, uint32_t epoch, std::string_view what) {
  if (o.epoch != epoch) {
    throw failure(exit_code::usage,
                  fmt::format("{} {} belongs to another data directory (epoch {:08x}; this log's epoch is {:08x})",
                              what, off_text(o), o.epoch, epoch));
  }
}

broker_api& online_api(source& src, std::string_view command) {
  auto* api = dynamic_cast<broker_api*>(&src);
  if (!src.online() || !api) {
    throw failure(
        exit_code::usage,
        fmt::format("{} changes the broker's state and needs --url; offline mode (--data-dir) is read-only", command));
  }
  return *api;
}

// First seq (inclusive) of the topic's events stored at or after `ts_ms`.
//   offline: the checkpoint index gives a seq stored before ts_ms (storage
//            seq_before_time, 1 s granularity); older events after it are skipped.
//   online:  the HTTP API has no time lookup, so this binary-searches seqs with
//            limit=1 reads: O(log n) requests. The storage stamps events with
//            max(now, previous ts) per namespace, so ts is non-decreasing in seq
//            within a broker run and the search is exact.
uint64_t time_start(source& src, const topic_row& t, int64_t ts_ms) {
  uint64_t lo = std::max<uint64_t>(t.first.seq, src.seq_before_time(ts_ms) + 1);
  uint64_t hi = t.head.seq + 1;  // "after the last event"
  if (!src.online()) {
    for (uint64_t s = lo; s < hi;) {
      events_page page = src.read(t.name, s, 1000);
      if (page.events.empty()) break;
      for (const auto& e : page.events)
        if (e.ts_ms >= ts_ms) return e.offset.seq;
      s = page.next_seq;
    }
    return hi;
  }
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo) / 2;
    events_page page = src.read(t.name, mid, 1);
    if (page.events.empty() || page.events.front().offset.seq >= hi || page.events.front().ts_ms >= ts_ms) {
      hi = mid;
    } else {
      lo = page.events.front().offset.seq + 1;
    }
  }
  return lo;
}

std::string bool_text(bool b) {
  return b ? "true" : "false";
}

}  // namespace

int run_replay(source& src, const common_options& common, const replay_options& o) {
  std::string why;
  auto from = parse_from(o.from, why);
  if (!from) throw failure(exit_code::usage, why);
  std::optional<protocol::offset> to;
  if (!o.to.empty()) {
    to = parse_offset_arg(o.to, why);
    if (!to) throw failure(exit_code::usage, "bad --to: " + why);
  }
  if (o.topic.empty()) throw failure(exit_code::usage, "--topic is required");

  auto topics = src.topics();
  const topic_row t = find_topic(topics, src, o.topic);
  const uint32_t epoch = src.epoch();
  if (from->what == from_spec::kind::offset) check_epoch(from->off, epoch, "--from");
  if (to) check_epoch(*to, epoch, "--to");

  uint64_t start = 0;
  switch (from->what) {
    case from_spec::kind::earliest:
      start = t.first.seq;
      break;
    case from_spec::kind::latest:
      start = t.head.seq + 1;
      break;
    case from_spec::kind::offset:
      start = std::max<uint64_t>(from->off.seq, 1);
      break;
    case from_spec::kind::time:
      start = time_start(src, t, from->time_ms);
      break;
  }
  uint64_t end = to ? to->seq : std::numeric_limits<uint64_t>::max();
  if (!o.follow) end = std::min(end, t.head.seq);  // without --follow: what exists now

  bool bar_wanted =
      common.progress && !o.follow && start <= end && stderr_is_terminal() && ::isatty(STDOUT_FILENO) != 1;
  progress_bar bar(bar_wanted, start, end);
  writer w;
  uint64_t printed = 0, next = start;
  int64_t skip_before_ms = from->what == from_spec::kind::time ? from->time_ms : std::numeric_limits<int64_t>::min();
  std::string line;
  try {
    for (;;) {
      if (interrupt_requested()) throw interrupted{};
      if (next > end || (o.limit && printed >= o.limit)) break;
      size_t want = o.page_size;
      if (o.limit) want = static_cast<size_t>(std::min<uint64_t>(want, o.limit - printed));
      events_page page = src.read(o.topic, next, want);
      bool done = false;
      for (const auto& e : page.events) {
        if (e.offset.seq > end) {
          done = true;
          break;
        }
        // A time in the future: events stored before it may still arrive in --follow.
        if (e.ts_ms < skip_before_ms) continue;
        skip_before_ms = std::numeric_limits<int64_t>::min();
        line.clear();
        if (common.fmt == format::jsonl) {
          append_event_jsonl(line, e);
        } else {
          append_event_pretty(line, e);
        }
        w.line(line);
        ++printed;
        bar.update(e.offset.seq, printed);
        if (o.limit && printed >= o.limit) {
          done = true;
          break;
        }
      }
      next = std::max(next, page.next_seq);
      if (done) break;
      if (o.follow) w.flush();  // a reader of a pipe sees each page as it comes
      if (page.events.empty()) {
        if (!o.follow) break;
        if (!sleep_unless_interrupted(std::chrono::milliseconds(o.poll_ms))) throw interrupted{};
        src.refresh();
      }
    }
  } catch (const interrupted&) {
    bar.finish();
    w.flush();
    return o.follow ? 0 : 130;  // SIGINT is how --follow ends
  }
  bar.finish();
  w.flush();
  return 0;
}

int run_topics(source& src, const common_options& common) {
  auto topics = src.topics();
  writer w;
  if (common.fmt == format::jsonl) {
    for (const auto& t : topics) {
      std::string line = R"({"name":)";
      pjson::append_quoted(line, t.name);
      line += fmt::format(R"(,"head":"{}","first":"{}","count":{},"bytes":{},"created":{}}})", off_text(t.head),
                          off_text(t.first), t.count, t.bytes, t.created_ms);
      w.line(line);
    }
  } else {
    std::vector<std::vector<std::string>> rows;
    rows.reserve(topics.size());
    for (const auto& t : topics) {
      rows.push_back({t.name, std::to_string(t.count), std::to_string(t.bytes), off_text(t.head),
                      format_iso8601_ms(t.created_ms)});
    }
    print_table(w, {"TOPIC", "COUNT", "BYTES", "HEAD", "CREATED"}, rows);
  }
  w.flush();
  return 0;
}

namespace {

// Named consumers' positions without ferry's own bookkeeping ("$redrive" is the
// redrive cursor of each dead-letter topic, shown by `dlq list`).
std::vector<position_row> consumer_positions(source& src, const std::string& consumer) {
  auto rows = src.positions(consumer);
  std::erase_if(rows, [](const position_row& r) { return r.consumer.starts_with('$'); });
  if (!consumer.empty() && rows.empty()) {
    throw failure(exit_code::not_found, fmt::format("consumer {} has no stored positions in namespace {} ({})",
                                                    consumer, src.namespace_name(), src.where()));
  }
  return rows;
}

}  // namespace

int run_consumers(source& src, const common_options& common, const std::string& consumer) {
  auto rows = consumer_positions(src, consumer);
  struct summary {
    std::string name;
    std::vector<const position_row*> topics;
    uint64_t lag = 0;
    std::optional<bool> active;
  };
  std::vector<summary> consumers;
  for (const auto& r : rows) {
    auto it = std::find_if(consumers.begin(), consumers.end(), [&](const summary& s) { return s.name == r.consumer; });
    if (it == consumers.end()) it = consumers.insert(consumers.end(), summary{r.consumer, {}, 0, std::nullopt});
    it->topics.push_back(&r);
    it->lag += r.lag;
    if (r.active) it->active = it->active.value_or(false) || *r.active;
  }
  writer w;
  if (common.fmt == format::jsonl) {
    for (const auto& c : consumers) {
      std::string line = R"({"consumer":)";
      pjson::append_quoted(line, c.name);
      line += R"(,"topics":[)";
      for (size_t i = 0; i < c.topics.size(); ++i) {
        if (i) line.push_back(',');
        line += R"({"topic":)";
        pjson::append_quoted(line, c.topics[i]->topic);
        line += fmt::format(R"(,"position":"{}","lag":{}}})", off_text(c.topics[i]->position), c.topics[i]->lag);
      }
      line += fmt::format(R"(],"lag":{})", c.lag);
      if (c.active) line += R"(,"active":)" + bool_text(*c.active);
      line.push_back('}');
      w.line(line);
    }
  } else {
    std::vector<std::vector<std::string>> table;
    table.reserve(consumers.size());
    for (const auto& c : consumers) {
      table.push_back({c.name, std::to_string(c.topics.size()), std::to_string(c.lag),
                       c.active ? (*c.active ? "yes" : "no") : "-"});
    }
    print_table(w, {"CONSUMER", "TOPICS", "LAG", "ACTIVE"}, table);
  }
  w.flush();
  return 0;
}

int run_positions(source& src, const common_options& common, const std::string& consumer) {
  auto rows = consumer_positions(src, consumer);
  writer w;
  if (common.fmt == format::jsonl) {
    for (const auto& r : rows) {
      std::string line = R"({"consumer":)";
      pjson::append_quoted(line, r.consumer);
      line += R"(,"topic":)";
      pjson::append_quoted(line, r.topic);
      line += fmt::format(R"(,"position":"{}","head":"{}","lag":{},"updated":{})", off_text(r.position),
                          off_text(r.head), r.lag, r.updated_ms);
      if (r.active) line += R"(,"active":)" + bool_text(*r.active);
      line.push_back('}');
      w.line(line);
    }
  } else {
    std::vector<std::vector<std::string>> table;
    table.reserve(rows.size());
    for (const auto& r : rows) {
      table.push_back({r.consumer, r.topic, off_text(r.position), std::to_string(r.lag),
                       format_iso8601_ms(r.updated_ms), r.active ? (*r.active ? "yes" : "no") : "-"});
    }
    print_table(w, {"CONSUMER", "TOPIC", "POSITION", "LAG", "UPDATED", "ACTIVE"}, table);
  }
  w.flush();
  return 0;
}

int run_positions_set(source& src, const common_options& common, const std::string& consumer, const std::string& topic,
                      const std::string& to) {
  std::string why;
  if (!valid_position_target(to, why)) throw failure(exit_code::usage, why);
  if (consumer.empty() || topic.empty()) throw failure(exit_code::usage, "--consumer and --topic are required");
  broker_api& api = online_api(src, "positions set");
  if (auto o = protocol::parse_offset(to)) check_epoch(*o, src.epoch(), "--to");
  std::string position = api.set_position(consumer, topic, to);
  writer w;
  if (common.fmt == format::jsonl) {
    std::string line = R"({"consumer":)";
    pjson::append_quoted(line, consumer);
    line += R"(,"topic":)";
    pjson::append_quoted(line, topic);
    line += R"(,"position":)";
    pjson::append_quoted(line, position);
    line.push_back('}');
    w.line(line);
  } else {
    w.line(fmt::format("consumer {} on topic {}: position {} (deliveries resume after it)", consumer, topic, position));
  }
  w.flush();
  return 0;
}

int run_dlq_list(source& src, const common_options& common, const std::string& consumer) {
  if (!consumer.empty()) {
    std::string topic = "$dlq." + consumer;
    auto topics = src.topics();
    if (std::none_of(topics.begin(), topics.end(), [&](const topic_row& t) { return t.name == topic; })) {
      throw failure(exit_code::not_found, fmt::format("consumer {} has no dead-letter topic ({}) in namespace {} ({})",
                                                      consumer, topic, src.namespace_name(), src.where()));
    }
    replay_options o;
    o.topic = topic;
    o.from = "earliest";
    return run_replay(src, common, o);
  }
  auto rows = src.dlq();
  writer w;
  if (common.fmt == format::jsonl) {
    for (const auto& r : rows) {
      std::string line = R"({"topic":)";
      pjson::append_quoted(line, r.topic);
      line += R"(,"consumer":)";
      pjson::append_quoted(line, r.consumer);
      line += fmt::format(R"(,"count":{},"head":"{}","redriven_to":"{}"}})", r.count, off_text(r.head),
                          off_text(r.redriven_to));
      w.line(line);
    }
  } else {
    std::vector<std::vector<std::string>> table;
    table.reserve(rows.size());
    for (const auto& r : rows) {
      table.push_back({r.topic, r.consumer, std::to_string(r.count), off_text(r.head),
                       r.redriven_to.seq ? off_text(r.redriven_to) : "-"});
    }
    print_table(w, {"DLQ TOPIC", "CONSUMER", "COUNT", "HEAD", "REDRIVEN TO"}, table);
  }
  w.flush();
  return 0;
}

int run_dlq_redrive(source& src, const common_options& common, const std::string& consumer, uint64_t limit) {
  if (consumer.empty()) throw failure(exit_code::usage, "--consumer is required");
  broker_api& api = online_api(src, "dlq redrive");
  auto r = api.redrive(consumer, limit);
  writer w;
  if (common.fmt == format::jsonl) {
    std::string line = R"({"consumer":)";
    pjson::append_quoted(line, consumer);
    line += fmt::format(R"(,"redriven":{})", r.redriven);
    if (!r.position.empty()) {
      line += R"(,"position":)";
      pjson::append_quoted(line, r.position);
    }
    line.push_back('}');
    w.line(line);
  } else if (r.redriven == 0) {
    w.line(fmt::format("nothing to redrive for consumer {}", consumer));
  } else {
    w.line(fmt::format("redrove {} dead letters of consumer {} to their topics (dead-letter position {})", r.redriven,
                       consumer, r.position));
  }
  w.flush();
  return 0;
}

int run_publish(source& src, const common_options& common, const publish_options& o) {
  std::string why;
  std::optional<std::string> single;
  if (o.single) {
    single = publish_object_from_flags(o.topic, o.event, o.id, o.data, why);
    if (!single) throw failure(exit_code::usage, why);
  }
  if (o.batch_size < 1 || o.batch_size > 1000) throw failure(exit_code::usage, "--batch must be between 1 and 1000");
  broker_api& api = online_api(src, "publish");
  writer w;
  std::string batch;
  size_t in_batch = 0;
  auto send = [&] {
    if (in_batch == 0) return;
    batch.push_back(']');
    for (const auto& p : api.publish_batch(batch, in_batch)) {
      if (common.fmt == format::jsonl) {
        w.line(fmt::format(R"({{"offset":"{}","duplicate":{}}})", p.offset, bool_text(p.duplicate)));
      } else {
        w.line(p.duplicate ? p.offset + "  (duplicate: already stored)" : p.offset);
      }
    }
    w.flush();
    batch.clear();
    in_batch = 0;
  };
  auto add = [&](const std::string& object) {
    batch += in_batch == 0 ? "[" : ",";
    batch += object;
    ++in_batch;
    // Well under the broker's default max_payload (1 000 000 bytes).
    if (in_batch >= o.batch_size || batch.size() >= (512 << 10)) send();
  };
  if (single) {
    add(*single);
    send();
    return 0;
  }
  if (::isatty(STDIN_FILENO) == 1)
    fmt::print(stderr, "ferryctl: reading publish objects from stdin, one JSON object a line (Ctrl-D ends)\n");
  publish_defaults defaults{o.topic, o.event};
  std::string text;
  size_t line_no = 0;
  while (std::getline(std::cin, text)) {
    ++line_no;
    if (interrupt_requested()) throw interrupted{};
    auto object = publish_object_from_line(text, defaults, why);
    if (!object) {
      send();  // lines before the bad one are published
      throw failure(exit_code::usage, fmt::format("stdin line {}: {}", line_no, why));
    }
    if (!object->empty()) add(*object);
  }
  send();
  return 0;
}

int run_stats(source& src, const common_options& common) {
  std::string json = src.stats_json();
  writer w;
  if (common.fmt == format::jsonl) {
    w.line(json);
  } else {
    auto doc = nlohmann::ordered_json::parse(json, nullptr, false);
    w.line(doc.is_discarded() ? json : doc.dump(2));
  }
  w.flush();
  return 0;
}

}  // namespace ferry::ferryctl
